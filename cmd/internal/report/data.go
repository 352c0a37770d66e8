package report

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wsdiag/wsdiag/analyze"
)

// The data the page's script reads, as compact JSON. Repeated strings
// (header lines, evidence, paths) live once in a table "S" and attempts
// refer to them by index; times are microseconds, attempts' relative to
// "t0", events' relative to their attempt. The layout of one attempt (an
// array, to keep 100 000 of them small) is documented in report.js, at
// decode().

// gzipAbove is the JSON size past which the data is gzipped and base64'd
// (the page inflates it with the browser's DecompressionStream).
const gzipAbove = 1 << 20

type encoder struct {
	b     []byte
	index map[string]int
	table []string
}

func (e *encoder) s(x string) {
	i, ok := e.index[x]
	if !ok {
		i = len(e.table)
		e.index[x] = i
		e.table = append(e.table, x)
	}
	e.b = strconv.AppendInt(e.b, int64(i), 10)
}

func (e *encoder) strs(xs []string) {
	e.b = append(e.b, '[')
	for i, x := range xs {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.s(x)
	}
	e.b = append(e.b, ']')
}

func (e *encoder) n(x int64)    { e.b = strconv.AppendInt(e.b, x, 10) }
func (e *encoder) c()           { e.b = append(e.b, ',') }
func (e *encoder) raw(x string) { e.b = append(e.b, x...) }

// us writes t-base in microseconds, or null for a zero t.
func (e *encoder) us(t, base time.Time) {
	if t.IsZero() {
		e.raw("null")
		return
	}
	e.n(t.Sub(base).Microseconds())
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// appendJSON quotes s as a JSON string safe inside a <script> element:
// '<', '>' and '&' escaped, invalid UTF-8 replaced.
func appendJSON(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hex[r&15])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func (e *encoder) q(s string) { e.b = appendJSON(e.b, s) }

func (e *encoder) qs(xs []string) {
	e.b = append(e.b, '[')
	for i, x := range xs {
		if i > 0 {
			e.c()
		}
		e.q(x)
	}
	e.b = append(e.b, ']')
}

// data encodes the snapshot's attempts. The result is JSON, or (large
// reports) a JSON object {"gz": base64 of the gzipped JSON}.
func (s *snapshot) data() []byte {
	e := &encoder{index: map[string]int{"": 0}, table: []string{""}, b: make([]byte, 0, 1024+600*len(s.recs))}
	var t0 time.Time
	if len(s.recs) > 0 {
		t0 = s.recs[0].t
	}
	e.raw(`{"v":1,"t0":`)
	if t0.IsZero() {
		e.raw("0")
	} else {
		e.n(t0.UnixMicro())
	}
	e.raw(`,"A":[`)
	for i, r := range s.recs {
		if i > 0 {
			e.c()
		}
		e.record(r, t0)
	}
	e.raw(`],"S":`)
	e.qs(e.table)
	e.raw(`,"codes":{`)
	for i, c := range analyze.Codes {
		if i > 0 {
			e.c()
		}
		hop, sev := analyze.Describe(c)
		e.q(string(c))
		e.raw(":[")
		e.q(string(hop))
		e.c()
		e.q(string(sev))
		e.c()
		e.q(analyze.Summary(c))
		e.c()
		e.q(colorOf(c))
		e.raw("]")
	}
	e.raw("}}")
	if len(e.b) <= gzipAbove {
		return e.b
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(e.b)
	zw.Close()
	out := make([]byte, 0, 16+base64.StdEncoding.EncodedLen(z.Len()))
	out = append(out, `{"gz":"`...)
	out = base64.StdEncoding.AppendEncode(out, z.Bytes())
	return append(out, `"}`...)
}

// record writes one attempt (see decode() in report.js for the layout).
func (e *encoder) record(r *record, t0 time.Time) {
	e.raw("[")
	e.us(r.t, t0)
	e.c()
	e.s(string(r.code))
	e.c()
	e.s(string(r.sev))
	e.c()
	e.s(string(r.hop))
	e.c()
	e.q(r.client)
	e.c()
	e.s(r.path)
	e.c()
	e.s(r.proxy)
	e.c()
	e.s(r.product)
	e.c()
	e.s(r.backend)
	e.c()
	e.n(int64(r.sb))
	e.c()
	e.n(int64(r.sc))
	e.c()
	e.s(r.conf)
	e.c()
	e.strs(r.findings)
	e.c()
	e.strs(r.evidence)
	e.c()
	e.s(r.errorLog)
	e.c()
	e.s(r.fix)
	e.c()
	e.us(r.end, r.t)
	e.raw(",[")
	for i, l := range r.legs {
		if i > 0 {
			e.c()
		}
		e.leg(&l, r.t)
	}
	e.raw("],")
	if ss := r.session; ss != nil {
		e.raw("[")
		e.n(ss.Duration.Microseconds())
		for _, x := range []uint64{ss.FramesC2S, ss.FramesS2C, ss.BytesC2S, ss.BytesS2C} {
			e.c()
			e.n(int64(x))
		}
		e.c()
		e.n(ss.LongestSilence.Microseconds())
		e.c()
		e.n(int64(ss.Pings))
		e.c()
		e.s(ss.ClosedBy)
		e.c()
		e.n(int64(ss.CloseCode))
		e.c()
		e.q(ss.CloseReason)
		e.c()
		e.s(ss.CloseKind)
		e.c()
		e.n(b2i(ss.Open))
		e.raw("]")
	} else {
		e.raw("null")
	}
	e.raw(",[")
	for i, c := range r.connects {
		if i > 0 {
			e.c()
		}
		e.raw("[")
		e.q(addr(c.Client))
		e.c()
		e.s(r.connServer[i])
		e.c()
		e.us(c.Start, r.t)
		e.c()
		e.us(c.Last, r.t)
		e.c()
		e.n(b2i(c.SYNACK))
		e.c()
		e.s(c.End)
		e.raw("]")
	}
	e.raw("]]")
}

func (e *encoder) leg(l *leg, base time.Time) {
	e.raw("[")
	e.q(l.client)
	e.c()
	e.s(l.server)
	e.c()
	e.s(l.reqLine)
	e.c()
	e.s(l.statusLine)
	e.c()
	e.strs(l.reqHeaders)
	e.c()
	e.strs(l.respHeaders)
	t := &l.times
	e.raw(",[")
	e.n(b2i(t.SYN) | b2i(t.SYNACK)<<1 | b2i(t.OpenAtEnd)<<2)
	for _, x := range []time.Time{t.Open, t.Request, t.Response, t.FirstFrameC2S, t.FirstFrameS2C, t.CloseFrameC2S, t.CloseFrameS2C} {
		e.c()
		e.us(x, base)
	}
	e.c()
	e.n(int64(t.CloseCodeC2S))
	e.c()
	e.n(int64(t.CloseCodeS2C))
	e.c()
	e.us(t.ClientEnd, base)
	e.c()
	e.s(t.ClientEndKind)
	e.c()
	e.us(t.ServerEnd, base)
	e.c()
	e.s(t.ServerEndKind)
	e.c()
	e.us(t.Last, base)
	e.raw("]]")
}

// colorOf gives each code a fixed colour: green for ok, reds and oranges
// for the handshake's errors, ambers for warnings, blues and greys for
// notes, so the same code looks the same in every report.
func colorOf(c analyze.Code) string {
	if col, ok := palette[c]; ok {
		return col
	}
	return "#7f7f7f"
}

var palette = map[analyze.Code]string{
	analyze.OK:                    "#2e9e44",
	analyze.ClientNotWebSocket:    "#8c564b",
	analyze.UpgradeHeaderDropped:  "#d62728",
	analyze.ConnectionNotUpgrade:  "#e4572e",
	analyze.UpstreamHTTP10:        "#f0a202",
	analyze.WSHeaderAltered:       "#c2185b",
	analyze.HostRewritten:         "#5c7cfa",
	analyze.PathRewritten:         "#4dabf7",
	analyze.UpstreamConnectFailed: "#7b1fa2",
	analyze.UpstreamTimeout:       "#9c27b0",
	analyze.UpstreamClosedEarly:   "#ad1457",
	analyze.BackendRejected:       "#b71c1c",
	analyze.BackendNotWebSocket:   "#ff6f61",
	analyze.BadAccept:             "#6d4c41",
	analyze.ProxyRejected:         "#e91e63",
	analyze.Redirected:            "#ff8a65",
	analyze.ResponseAltered:       "#a1887f",
	analyze.IdleTimeout:           "#f6c026",
	analyze.MessageTooBig:         "#ff5722",
	analyze.ClosedByBackend:       "#c9a227",
	analyze.ClosedByClient:        "#b8a04a",
	analyze.AbnormalClose:         "#e08e0b",
	analyze.FrameProtocolError:    "#880e4f",
	analyze.FramesNotRelayed:      "#d81b60",
	analyze.TLSHandshakeFailed:    "#4a148c",
	analyze.EncryptedLeg:          "#607d8b",
	analyze.Unpaired:              "#9e9e9e",
	analyze.PlainHTTP:             "#bdbdbd",
}
