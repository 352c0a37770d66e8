package analyze

import (
	"net/netip"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Confidence says how sure a pairing of legs is.
type Confidence string

const (
	ConfExact  Confidence = "exact"  // same Sec-WebSocket-Key
	ConfHigh   Confidence = "high"   // fallback, strong agreement
	ConfMedium Confidence = "medium" // fallback, some agreement
	ConfLow    Confidence = "low"    // fallback, time order only
	ConfNone   Confidence = "none"   // one leg only
)

// Leg is one hop's exchange as the verdict saw it.
type Leg struct {
	Client, Server netip.AddrPort
	// Proto is the leg's HTTP: "http/1.1", "http/1.0" or "h2" (RFC 8441).
	Proto       string
	RequestLine string
	StatusLine  string // empty: no response
	Status      int
	// The header blocks as on the wire; renderers redact secrets.
	RequestHeaders, ResponseHeaders reassembly.Headers
	// RequestCut and ResponseCut: the header block was cut (the capture's
	// snap length, or --max-header-bytes); the headers hold what came first.
	RequestCut, ResponseCut bool
	// Times are when the leg's events were seen, for the report's ladder.
	Times LegTimes
}

// LegTimes are when a leg's events were seen; a zero time: not seen.
type LegTimes struct {
	// Open is the connection's first packet: its SYN when SYN is set (a
	// reused keep-alive connection opened before the request). Zero when
	// the connection had not ended when the verdict was made (live).
	Open        time.Time
	SYN, SYNACK bool
	// Request and Response: the first byte of each header block.
	Request, Response time.Time
	// First frame and first close frame per direction (C2S: from this
	// leg's client); CloseCode 1005: a close frame without a code.
	FirstFrameC2S, FirstFrameS2C time.Time
	CloseFrameC2S, CloseFrameS2C time.Time
	CloseCodeC2S, CloseCodeS2C   uint16
	// Each side's first FIN or RST ("FIN", "RST"; "" none).
	ClientEnd, ServerEnd         time.Time
	ClientEndKind, ServerEndKind string
	// Last is the connection's last packet; OpenAtEnd: the capture ended
	// with the connection open.
	Last      time.Time
	OpenAtEnd bool
}

// Connect is a connection attempt that carried no data: a proxy's SYN to
// a backend that refused it (RST) or never answered.
type Connect struct {
	Client, Server netip.AddrPort
	Start, Last    time.Time
	SYNACK         bool
	// End is how the server ended it ("RST", "FIN"; "" no answer).
	End string
}

// Redacted returns the value to show for header name: secrets (cookies,
// credentials) become "[redacted]" unless show is set.
func Redacted(name, value string, show bool) string {
	if !show && isSecret(name) {
		return "[redacted]"
	}
	return value
}

// Session holds figures of an upgraded connection, as the client's leg
// saw it.
type Session struct {
	Duration             time.Duration
	FramesC2S, FramesS2C uint64
	BytesC2S, BytesS2C   uint64 // frame payload (TCP payload when frames were not parsed)
	LongestSilence       time.Duration
	Pings                uint32
	// ClosedBy is who ended it first: "client", "backend", "proxy" or
	// "server" (no proxy seen); "" while open. CloseCode and CloseReason
	// come from the first close frame (0: none was sent).
	ClosedBy    string
	CloseCode   uint16
	CloseReason string
	CloseKind   string // FIN or RST: how the TCP connection ended
	Open        bool   // still open at the end of the capture
}

// Verdict is the judgement of one WebSocket attempt.
type Verdict struct {
	Time     time.Time
	Code     Code
	Severity Severity
	Hop      Hop
	Findings []Code
	Client   netip.AddrPort
	Proxy    netip.AddrPort // the proxy of the hop blamed, or the first proxy
	Backend  netip.AddrPort
	// ProxyProduct is what the proxy's responses tell of it ("nginx/1.22.1").
	ProxyProduct string
	Path         string
	// StatusBackend and StatusClient are 0 when there was no response.
	StatusBackend, StatusClient int
	PairConfidence              Confidence
	Evidence                    []string
	// ErrorLog is the line the proxy logs for this code (nginx's
	// wording), ErrorLogLines the lines of its error log that match the
	// attempt (--error-log).
	ErrorLog      string
	ErrorLogLines []string
	// End is the last moment of the attempt on the wire: its answers or,
	// once upgraded, the end of the session.
	End time.Time
	// Config is the proxy's configuration block that served the
	// attempt, when a configuration was given.
	Config  *ConfigBlock
	Fix     string
	Legs    []Leg
	Session *Session
	// Connects are the failed connect attempts behind a proxy's error.
	Connects []Connect
}

// NginxWouldLog is the line nginx writes for the verdict's code (ErrorLog,
// nginx's wording), unless the proxy is known to be another product: a
// view shows it as what to look for, never as a line read from a log.
func (v *Verdict) NginxWouldLog() string {
	if p := strings.ToLower(v.ProxyProduct); p != "" && !strings.HasPrefix(p, "nginx") {
		return ""
	}
	return v.ErrorLog
}

// OK reports whether the verdict needs no action.
func (v *Verdict) OK() bool { return v.Code == OK || v.Code == PlainHTTP }

// Attempt reports whether the verdict judges a WebSocket attempt (and not
// a plain exchange shown with --all).
func (v *Verdict) Attempt() bool { return v.Code != PlainHTTP }
