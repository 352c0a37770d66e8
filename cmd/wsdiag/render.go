package main

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsdiag/wsdiag/analyze"
	rs "github.com/wsdiag/wsdiag/reassembly"
)

// renderer writes verdicts and the closing summary.
type renderer interface {
	verdict(v *analyze.Verdict)
	summary(s summary)
}

type summary struct {
	stats        analyze.Stats
	packets, tcp uint64
	conns        uint64
	evictedFlows uint64
	kernelDrops  *uint64 // live capture only
	warnings     []string
}

func newRenderer(format string, w io.Writer, verbosity int, showSecrets, color bool) renderer {
	if format == "json" {
		return &jsonRenderer{log: zerolog.New(w), headers: verbosity >= 2, showSecrets: showSecrets}
	}
	return &textRenderer{w: w, verbose: verbosity >= 1, headers: verbosity >= 2, showSecrets: showSecrets, color: color}
}

// headerLines renders a header block, secrets redacted unless show.
func headerLines(h rs.Headers, show bool) []string {
	out := make([]string, len(h))
	for i, f := range h {
		out[i] = f.Name + ": " + analyze.Redacted(f.Name, f.Value, show)
	}
	return out
}

// textRenderer prints a table: one line per attempt, details under it
// with -v.
type textRenderer struct {
	w           io.Writer
	verbose     bool
	headers     bool // -vv: every header of every leg
	showSecrets bool
	color       bool
	header      bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
	ansiCyan   = "\x1b[36m"
)

func (t *textRenderer) paint(s, color string) string {
	if !t.color {
		return s
	}
	return color + s + ansiReset
}

func sevColor(s analyze.Severity) string {
	switch s {
	case analyze.SevError:
		return ansiRed
	case analyze.SevWarn:
		return ansiYellow
	case analyze.SevOK:
		return ansiGreen
	}
	return ansiCyan
}

func status(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func (t *textRenderer) verdict(v *analyze.Verdict) {
	if !t.header {
		t.header = true
		fmt.Fprintf(t.w, "%-12s  %-21s  %-20s  %-24s  %-8s  %s\n", "TIME", "CLIENT", "PATH", "CODE", "HOP", "BACKEND→CLIENT")
	}
	path := v.Path
	if len(path) > 20 {
		path = path[:19] + "…"
	}
	code := fmt.Sprintf("%-24s", v.Code)
	fmt.Fprintf(t.w, "%-12s  %-21s  %-20s  %s  %-8s  %s→%s\n", v.Time.UTC().Format("15:04:05.000"), addrText(v.Client), path,
		t.paint(code, sevColor(v.Severity)), v.Hop, status(v.StatusBackend), status(v.StatusClient))
	if !t.verbose {
		return
	}
	ind := "    "
	var meta []string
	meta = append(meta, "severity "+string(v.Severity))
	if len(v.Findings) > 1 {
		fs := make([]string, len(v.Findings))
		for i, f := range v.Findings {
			fs[i] = string(f)
		}
		meta = append(meta, "findings "+strings.Join(fs, ", "))
	}
	if v.Proxy.IsValid() {
		p := "proxy " + v.Proxy.String()
		if v.ProxyProduct != "" {
			p += " (" + v.ProxyProduct + ")"
		}
		meta = append(meta, p)
	}
	if v.Backend.IsValid() {
		meta = append(meta, "backend "+v.Backend.String())
	}
	meta = append(meta, "pairing "+string(v.PairConfidence))
	fmt.Fprintln(t.w, ind+t.paint(strings.Join(meta, " · "), ansiDim))
	for _, e := range v.Evidence {
		fmt.Fprintln(t.w, ind+"  "+e)
	}
	if s := v.Session; s != nil {
		fmt.Fprintln(t.w, ind+"session: "+sessionText(s))
	}
	if t.headers {
		for _, l := range v.Legs {
			fmt.Fprintf(t.w, "%sleg %s → %s\n", ind, l.Client, l.Server)
			fmt.Fprintln(t.w, ind+"  > "+l.RequestLine)
			for _, h := range headerLines(l.RequestHeaders, t.showSecrets) {
				fmt.Fprintln(t.w, ind+"  > "+h)
			}
			if l.StatusLine != "" {
				fmt.Fprintln(t.w, ind+"  < "+l.StatusLine)
				for _, h := range headerLines(l.ResponseHeaders, t.showSecrets) {
					fmt.Fprintln(t.w, ind+"  < "+h)
				}
			}
		}
	}
	if v.ErrorLog != "" {
		fmt.Fprintln(t.w, ind+"error log: "+v.ErrorLog)
	}
	if v.Fix != "" {
		lines := strings.Split(v.Fix, "\n")
		fmt.Fprintln(t.w, ind+t.paint("fix: ", ansiGreen)+lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintln(t.w, ind+"     "+l)
		}
	}
	fmt.Fprintln(t.w)
}

func sessionText(s *analyze.Session) string {
	frames := fmt.Sprintf("%s (%d bytes) client→server, %s (%d bytes) server→client, longest silence %s",
		plural(s.FramesC2S, "frame"), s.BytesC2S, plural(s.FramesS2C, "frame"), s.BytesS2C, s.LongestSilence.Round(time.Millisecond))
	if s.Open {
		return fmt.Sprintf("open at the end of the capture after %s; %s", s.Duration.Round(time.Millisecond), frames)
	}
	how := "closed by the " + s.ClosedBy
	if s.CloseCode != 0 {
		how += fmt.Sprintf(" with close %d", s.CloseCode)
		if s.CloseReason != "" {
			how += fmt.Sprintf(" %q", s.CloseReason)
		}
	} else {
		how += " without a close frame"
	}
	return fmt.Sprintf("%s; %s, then %s", s.Duration.Round(time.Millisecond), frames, how+" ("+s.CloseKind+")")
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func byCodeLine(m map[analyze.Code]uint64) string {
	type kv struct {
		c analyze.Code
		n uint64
	}
	var kvs []kv
	for c, n := range m {
		kvs = append(kvs, kv{c, n})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].n != kvs[j].n {
			return kvs[i].n > kvs[j].n
		}
		return kvs[i].c < kvs[j].c
	})
	parts := make([]string, len(kvs))
	for i, x := range kvs {
		parts[i] = fmt.Sprintf("%d %s", x.n, x.c)
	}
	return strings.Join(parts, ", ")
}

func (t *textRenderer) summary(s summary) {
	if s.stats.Attempts == 0 {
		return
	}
	if !t.verbose {
		fmt.Fprintln(t.w)
	}
	fmt.Fprintf(t.w, "%d WebSocket attempts: %s\n", s.stats.Attempts, byCodeLine(s.stats.ByCode))
	if s.stats.Attempts > s.stats.ByCode[analyze.OK] && !t.verbose {
		fmt.Fprintln(t.w, "run with -v for the evidence and the fix")
	}
}

// jsonRenderer writes one JSON object per line; field names are stable.
type jsonRenderer struct {
	log         zerolog.Logger
	headers     bool
	showSecrets bool
}

func addrOrNull(e *zerolog.Event, key string, s string, ok bool) *zerolog.Event {
	if !ok {
		return e.Interface(key, nil)
	}
	return e.Str(key, s)
}

func intOrNull(e *zerolog.Event, key string, n int) *zerolog.Event {
	if n == 0 {
		return e.Interface(key, nil)
	}
	return e.Int(key, n)
}

func (j *jsonRenderer) verdict(v *analyze.Verdict) {
	typ := "verdict"
	if !v.Attempt() {
		typ = "exchange"
	}
	e := j.log.Log().Str("type", typ).Str("ts", v.Time.UTC().Format(time.RFC3339Nano)).
		Str("code", string(v.Code)).Str("severity", string(v.Severity)).Str("hop", string(v.Hop))
	fs := make([]string, len(v.Findings))
	for i, f := range v.Findings {
		fs[i] = string(f)
	}
	e = e.Strs("findings", fs)
	e = addrOrNull(e, "client", v.Client.String(), v.Client.IsValid())
	e = addrOrNull(e, "proxy", v.Proxy.String(), v.Proxy.IsValid())
	e = addrOrNull(e, "backend", v.Backend.String(), v.Backend.IsValid())
	e = e.Str("path", v.Path)
	e = intOrNull(e, "status_backend", v.StatusBackend)
	e = intOrNull(e, "status_client", v.StatusClient)
	e = e.Str("pair_confidence", string(v.PairConfidence))
	if v.Evidence == nil {
		v.Evidence = []string{}
	}
	e = e.Strs("evidence", v.Evidence)
	e = e.Str("fix", v.Fix)
	if v.ErrorLog != "" {
		e = e.Str("error_log", v.ErrorLog)
	}
	if v.ProxyProduct != "" {
		e = e.Str("proxy_product", v.ProxyProduct)
	}
	legs := zerolog.Arr()
	for _, l := range v.Legs {
		d := zerolog.Dict().Str("client", l.Client.String()).Str("server", l.Server.String()).Str("request", l.RequestLine)
		if l.StatusLine != "" {
			d = d.Str("response", l.StatusLine)
		}
		if j.headers {
			d = d.Strs("request_headers", headerLines(l.RequestHeaders, j.showSecrets))
			if l.StatusLine != "" {
				d = d.Strs("response_headers", headerLines(l.ResponseHeaders, j.showSecrets))
			}
		}
		legs = legs.Dict(d)
	}
	e = e.Array("legs", legs)
	if s := v.Session; s != nil {
		d := zerolog.Dict().Float64("duration_s", round3(s.Duration.Seconds())).
			Uint64("frames_c2s", s.FramesC2S).Uint64("frames_s2c", s.FramesS2C).
			Uint64("bytes_c2s", s.BytesC2S).Uint64("bytes_s2c", s.BytesS2C).
			Float64("longest_silence_s", round3(s.LongestSilence.Seconds())).Uint32("pings", s.Pings).Bool("open", s.Open)
		if s.ClosedBy != "" {
			d = d.Str("closed_by", s.ClosedBy)
		} else {
			d = d.Interface("closed_by", nil)
		}
		if s.CloseCode != 0 {
			d = d.Uint16("close_code", s.CloseCode)
		} else {
			d = d.Interface("close_code", nil)
		}
		d = d.Str("close_reason", s.CloseReason)
		e = e.Dict("session", d)
	}
	e.Send()
}

func (j *jsonRenderer) summary(s summary) {
	by := zerolog.Dict()
	codes := make([]string, 0, len(s.stats.ByCode))
	for c := range s.stats.ByCode {
		codes = append(codes, string(c))
	}
	sort.Strings(codes)
	for _, c := range codes {
		by = by.Uint64(c, s.stats.ByCode[analyze.Code(c)])
	}
	sev := zerolog.Dict()
	for _, x := range []analyze.Severity{analyze.SevOK, analyze.SevInfo, analyze.SevWarn, analyze.SevError} {
		sev = sev.Uint64(string(x), s.stats.BySev[x])
	}
	w := s.warnings
	if w == nil {
		w = []string{}
	}
	e := j.log.Log().Str("type", "summary").Uint64("attempts", s.stats.Attempts).Dict("by_code", by).Dict("by_severity", sev).
		Uint64("packets", s.packets).Uint64("tcp_packets", s.tcp).Uint64("connections", s.conns).
		Uint64("http_exchanges", s.stats.Exchanges).Uint64("evicted", s.stats.Evicted).Uint64("evicted_flows", s.evictedFlows).Strs("warnings", w)
	if s.kernelDrops != nil {
		e = e.Uint64("kernel_drops", *s.kernelDrops)
	}
	e.Send()
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// addrText shows an address, or "-" when the capture does not tell it.
func addrText(a netip.AddrPort) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
