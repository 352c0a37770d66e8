package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/visible"
)

// The JSON lines of --format json. README calls these field names stable:
// they are spelled here only, in the order they are written; the tests
// decode into the same types.

// VerdictLine is one attempt's verdict ("type":"verdict"), or a plain
// exchange's with --all ("type":"exchange").
type VerdictLine struct {
	Type           string   `json:"type"`
	TS             string   `json:"ts"`
	Code           string   `json:"code"`
	Severity       string   `json:"severity"`
	Hop            string   `json:"hop"`
	Findings       []string `json:"findings"`
	Client         *string  `json:"client"`
	Proxy          *string  `json:"proxy"`
	Backend        *string  `json:"backend"`
	Path           string   `json:"path"`
	StatusBackend  *int     `json:"status_backend"`
	StatusClient   *int     `json:"status_client"`
	PairConfidence string   `json:"pair_confidence"`
	Evidence       []string `json:"evidence"`
	Fix            string   `json:"fix"`
	// ErrorLogExpected is the line the code makes nginx log; ErrorLog
	// the proxy's own lines of the attempt (--error-log); Config the
	// block that served it (--nginx-config, --proxy-config).
	ErrorLogExpected string       `json:"error_log_expected,omitempty"`
	ErrorLog         []string     `json:"error_log,omitempty"`
	Config           *ConfigLine  `json:"config,omitempty"`
	ProxyProduct     string       `json:"proxy_product,omitempty"`
	Legs             []LegLine    `json:"legs"`
	Session          *SessionLine `json:"session,omitempty"`
}

// LegLine is one HTTP leg of an attempt; the headers only with -vv.
type LegLine struct {
	Client          string   `json:"client"`
	Server          string   `json:"server"`
	Request         string   `json:"request"`
	Response        string   `json:"response,omitempty"`
	RequestHeaders  []string `json:"request_headers,omitzero"`
	ResponseHeaders []string `json:"response_headers,omitzero"`
	Proto           string   `json:"proto,omitempty"` // "http/1.1", "http/1.0", "h2"
}

// SessionLine is what happened after a 101.
type SessionLine struct {
	DurationS       float64 `json:"duration_s"`
	FramesC2S       uint64  `json:"frames_c2s"`
	FramesS2C       uint64  `json:"frames_s2c"`
	BytesC2S        uint64  `json:"bytes_c2s"`
	BytesS2C        uint64  `json:"bytes_s2c"`
	LongestSilenceS float64 `json:"longest_silence_s"`
	Pings           uint32  `json:"pings"`
	Open            bool    `json:"open"`
	ClosedBy        *string `json:"closed_by"`
	CloseCode       *uint16 `json:"close_code"`
	CloseReason     string  `json:"close_reason"`
}

// SummaryLine closes the output ("type":"summary"). It is the run's one
// summary value: the runner and the sources fill it, every view shows it,
// so a new figure is one field here, set where it is known. A count with a
// note tag ("noun|the rest of the sentence") is also a line of the text
// summary and a figure of the HTML report when it is not zero (notes).
type SummaryLine struct {
	Type          string            `json:"type"`
	Attempts      uint64            `json:"attempts"`
	ByCode        map[string]uint64 `json:"by_code"`
	BySeverity    BySeverity        `json:"by_severity"`
	Packets       uint64            `json:"packets"`
	TCPPackets    uint64            `json:"tcp_packets"`
	Connections   uint64            `json:"connections"`
	HTTPExchanges uint64            `json:"http_exchanges"`
	Evicted       uint64            `json:"evicted"`
	EvictedFlows  uint64            `json:"evicted_flows"`
	Warnings      []string          `json:"warnings"`
	// NoHandshake: attempts that are sessions begun before the capture
	// (handshake_not_captured); only when there are some.
	NoHandshake uint64  `json:"no_handshake,omitempty" note:"session|began before the capture (handshake_not_captured), judged from their frames"`
	KernelDrops *uint64 `json:"kernel_drops,omitempty"` // live only
	// EvictedBytes and MemEvicted (objects by subsystem): state given up
	// for --max-memory; absent when none was.
	EvictedBytes uint64            `json:"evicted_bytes,omitempty"`
	MemEvicted   map[string]uint64 `json:"mem_evicted,omitempty"`
	// TLSSelfAnswered and TLSNoUpstream: TLS client connections that
	// carried a request and an answer nothing read (no keys, no
	// plaintext) and led to no upstream request: to a proxy whose other
	// clients' requests went upstream (it answered them itself), or with
	// no upstream request in the capture at all. What they said needs the
	// clients' key log, or live --tls-plaintext on the proxy host.
	TLSSelfAnswered uint64 `json:"tls_self_answered,omitempty" note:"TLS client connection|unread (no keys) had no upstream request: the proxy answered itself; the clients' key log (--keylog FILE) or, on the proxy host, live --tls-plaintext would show what it said"`
	TLSNoUpstream   uint64 `json:"tls_no_upstream,omitempty" note:"TLS client connection|unread (no keys) carried a request and an answer, and no upstream request in the capture: --keylog FILE, or live --tls-plaintext on the proxy host, would show what was said"`
	// TLSPlaintext: what live --tls-plaintext read (a sentence of the
	// summary, always); PlainH2 its HTTP/2 connections it could not read.
	TLSPlaintext *PlaintextSummary `json:"tls_plaintext,omitempty"`
	PlainH2      uint64            `json:"-" note:"HTTP/2 connection|open before --tls-plaintext attached: unread (HPACK needs the connection from its start)"`
}

// PlaintextSummary is what live --tls-plaintext's probes did.
type PlaintextSummary struct {
	Processes int `json:"processes"` // traced at the end
	// Connections were captured; Skipped left out by sampling.
	Connections uint64 `json:"connections"`
	Skipped     uint64 `json:"skipped"`
	// RingDrops are records lost for a full ring, LostBytes the
	// plaintext the connections missed for it.
	RingDrops uint64 `json:"ring_drops"`
	LostBytes uint64 `json:"lost_bytes"`
	// MidStream: connections open before the attach, read from their
	// middle; H2MidStream: of them, HTTP/2 ones (unreadable).
	MidStream   uint64 `json:"mid_stream"`
	H2MidStream uint64 `json:"h2_mid_stream"`
	// Pauses: the probes were off (PausedS seconds in all), as even
	// sampling nothing could not keep them under the budget.
	Pauses  uint64  `json:"pauses"`
	PausedS float64 `json:"paused_s"`
	// CostPct is the estimated cost to the proxies over the last second,
	// PeakPct its highest, in percent of one CPU; CallUs a captured
	// call's cost, measured at the start.
	CostPct float64 `json:"cost_pct"`
	PeakPct float64 `json:"peak_pct"`
	CallUs  float64 `json:"call_us"`
}

// notes are the summary's counts that have a note tag and are not zero,
// as sentences, in the order of the fields.
func (s *SummaryLine) notes() []string {
	var out []string
	v, t := reflect.ValueOf(s).Elem(), reflect.TypeFor[SummaryLine]()
	for i := 0; i < t.NumField(); i++ {
		noun, rest, ok := strings.Cut(t.Field(i).Tag.Get("note"), "|")
		if f := v.Field(i); ok && f.Kind() == reflect.Uint64 && f.Uint() > 0 {
			out = append(out, plural(f.Uint(), noun)+" "+rest)
		}
	}
	if p := s.TLSPlaintext; p != nil {
		out = append(out, p.sentence())
	}
	return out
}

// sentence says what the probes read, what sampling left out and what
// the ring lost, even when nothing was: with --tls-plaintext that is news.
func (p *PlaintextSummary) sentence() string {
	s := fmt.Sprintf("--tls-plaintext: %s captured in %s, %d left out by sampling, %s lost for a full ring",
		plural(p.Connections, "TLS connection"), processes(p.Processes), p.Skipped, plural(p.RingDrops, "plaintext record"))
	if p.MidStream > 0 {
		s += fmt.Sprintf(", %d read from the middle (open before the attach)", p.MidStream)
	}
	s += fmt.Sprintf("; the probes' estimated cost %.1f %% of a CPU (peak %.1f %%, %.0f µs a captured call)", p.CostPct, p.PeakPct, p.CallUs)
	if p.Pauses > 0 {
		s += fmt.Sprintf(", off %.0f s in %d pauses", p.PausedS, p.Pauses)
	}
	return s
}

// newSummaryLine returns an empty summary, its lists empty rather than
// null.
func newSummaryLine() *SummaryLine {
	return &SummaryLine{Type: "summary", ByCode: map[string]uint64{}, Warnings: []string{}}
}

// BySeverity counts attempts per severity, in this order.
type BySeverity struct {
	OK    uint64 `json:"ok"`
	Info  uint64 `json:"info"`
	Warn  uint64 `json:"warn"`
	Error uint64 `json:"error"`
}

// lineBuf is writeLine's scratch space, reused from line to line.
type lineBuf struct {
	enc  bytes.Buffer
	safe []byte
}

// writeLine encodes one JSON line: no HTML escaping (evidence quotes
// header lines with <, > and &), and the DEL, C1 and bidi controls that
// JSON lets through raw written as \u escapes (visible.JSON): the same
// value, safe on a terminal.
func writeLine(w io.Writer, lb *lineBuf, v any) error {
	lb.enc.Reset()
	enc := json.NewEncoder(&lb.enc)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	lb.safe = visible.JSON(lb.safe[:0], lb.enc.Bytes())
	_, err := w.Write(lb.safe)
	return err
}

// verdictLine fills a VerdictLine; headers (-vv) quote every header.
func verdictLine(v *analyze.Verdict, headers, showSecrets bool) *VerdictLine {
	return new(lineScratch).fill(v, headers, showSecrets)
}

// lineScratch is what a verdict line points into. The JSON renderer keeps
// one and fills it anew for each verdict (the line is written before the
// next is filled), so that a line allocates only its new strings.
type lineScratch struct {
	line                        VerdictLine
	client, proxy, backend      string
	statusBackend, statusClient int
	findings                    []string
	legs                        []LegLine
	session                     SessionLine
	closedBy                    string
	closeCode                   uint16
}

// fill makes sc's line the verdict's; headers (-vv) quote every header.
func (sc *lineScratch) fill(v *analyze.Verdict, headers, showSecrets bool) *VerdictLine {
	// the same addresses recur (the client's in the verdict and its leg,
	// the proxy's): each is formatted once
	var memo addrMemo
	l := &sc.line
	*l = VerdictLine{Type: "verdict", TS: v.Time.UTC().Format(time.RFC3339Nano), Code: string(v.Code),
		Severity: string(v.Severity), Hop: string(v.Hop), Path: v.Path, PairConfidence: string(v.PairConfidence),
		Evidence: v.Evidence, Fix: v.Fix, ErrorLogExpected: v.ErrorLog, ErrorLog: v.ErrorLogLines, Config: configLine(v.Config),
		ProxyProduct: v.ProxyProduct}
	if !v.Attempt() {
		l.Type = "exchange"
	}
	addr := func(dst *string, a netip.AddrPort) *string {
		if !a.IsValid() {
			return nil
		}
		*dst = memo.str(a)
		return dst
	}
	l.Client, l.Proxy, l.Backend = addr(&sc.client, v.Client), addr(&sc.proxy, v.Proxy), addr(&sc.backend, v.Backend)
	status := func(dst *int, n int) *int {
		if n == 0 {
			return nil
		}
		*dst = n
		return dst
	}
	l.StatusBackend, l.StatusClient = status(&sc.statusBackend, v.StatusBackend), status(&sc.statusClient, v.StatusClient)
	sc.findings = sc.findings[:0]
	for _, f := range v.Findings {
		sc.findings = append(sc.findings, string(f))
	}
	l.Findings = sc.findings
	if l.Findings == nil {
		l.Findings = []string{}
	}
	if l.Evidence == nil {
		l.Evidence = []string{}
	}
	sc.legs = sc.legs[:0]
	for _, g := range v.Legs {
		x := LegLine{Client: memo.str(g.Client), Server: memo.str(g.Server), Request: g.RequestLine, Response: g.StatusLine, Proto: g.Proto}
		if headers {
			x.RequestHeaders = headerLines(g.RequestHeaders, showSecrets)
			if g.StatusLine != "" {
				x.ResponseHeaders = headerLines(g.ResponseHeaders, showSecrets)
			}
		}
		sc.legs = append(sc.legs, x)
	}
	l.Legs = sc.legs
	if l.Legs == nil {
		l.Legs = []LegLine{}
	}
	if s := v.Session; s != nil {
		sc.session = SessionLine{DurationS: round3(s.Duration.Seconds()), FramesC2S: s.FramesC2S, FramesS2C: s.FramesS2C,
			BytesC2S: s.BytesC2S, BytesS2C: s.BytesS2C, LongestSilenceS: round3(s.LongestSilence.Seconds()),
			Pings: s.Pings, Open: s.Open, CloseReason: s.CloseReason}
		if s.ClosedBy != "" {
			sc.closedBy = s.ClosedBy
			sc.session.ClosedBy = &sc.closedBy
		}
		if s.CloseCode != 0 {
			sc.closeCode = s.CloseCode
			sc.session.CloseCode = &sc.closeCode
		}
		l.Session = &sc.session
	}
	return l
}

// addrMemo formats addresses, each once.
type addrMemo struct {
	n    int
	addr [8]netip.AddrPort
	s    [8]string
}

func (m *addrMemo) str(a netip.AddrPort) string {
	for i := 0; i < m.n; i++ {
		if m.addr[i] == a {
			return m.s[i]
		}
	}
	s := a.String()
	if m.n < len(m.addr) {
		m.addr[m.n], m.s[m.n] = a, s
		m.n++
	}
	return s
}

// EventLine is a finding about many attempts at once ("type":"event"):
// a mass close, written when the burst is over; the verdicts of its
// tunnels name it in their evidence.
type EventLine struct {
	Type     string   `json:"type"`
	TS       string   `json:"ts"`
	Code     string   `json:"code"`
	Count    int      `json:"count"`
	WindowS  float64  `json:"window_s"`
	Server   string   `json:"server"`
	ClosedBy string   `json:"closed_by"`
	Cause    string   `json:"cause"`
	Evidence []string `json:"evidence"`
	Fix      string   `json:"fix"`
}

func eventLine(e *analyze.Event) *EventLine {
	return &EventLine{Type: "event", TS: e.Time.UTC().Format(time.RFC3339Nano), Code: string(e.Code), Count: e.Count,
		WindowS: e.Window.Seconds(), Server: e.Server.String(), ClosedBy: e.ClosedBy, Cause: e.Cause, Evidence: e.Evidence, Fix: e.Fix}
}

func processes(n int) string {
	if n == 1 {
		return "1 process"
	}
	return fmt.Sprintf("%d processes", n)
}
