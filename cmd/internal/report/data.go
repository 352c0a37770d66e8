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
	// Header blocks are shared too ("B"): a line carrying the attempt's
	// own Sec-WebSocket-Key or -Accept is written -1 or -2, so blocks that
	// differ only in those are one.
	blockIndex map[string]int
	blocks     [][]int
	ints       []int
	sb         []byte
}

// block writes the index of a header block in "B".
func (e *encoder) block(lines []string, key, accept string) {
	e.ints = e.ints[:0]
	for _, l := range lines {
		switch {
		case key != "" && len(l) == len(keyLine)+len(key) && l[:len(keyLine)] == keyLine && l[len(keyLine):] == key:
			e.ints = append(e.ints, -1)
		case accept != "" && len(l) == len(acceptLine)+len(accept) && l[:len(acceptLine)] == acceptLine && l[len(acceptLine):] == accept:
			e.ints = append(e.ints, -2)
		default:
			i, ok := e.index[l]
			if !ok {
				i = len(e.table)
				e.index[l] = i
				e.table = append(e.table, l)
			}
			e.ints = append(e.ints, i)
		}
	}
	e.sb = e.sb[:0]
	for _, i := range e.ints {
		e.sb = strconv.AppendInt(e.sb, int64(i), 10)
		e.sb = append(e.sb, ',')
	}
	i, ok := e.blockIndex[string(e.sb)]
	if !ok {
		i = len(e.blocks)
		e.blockIndex[string(e.sb)] = i
		e.blocks = append(e.blocks, append([]int(nil), e.ints...))
	}
	e.n(int64(i))
}

const keyLine, acceptLine = "Sec-WebSocket-Key: ", "Sec-WebSocket-Accept: "

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

// index encodes what the page needs at once (the summary's filters, the
// timeline, the list's rows): one column per field, so 100 000 attempts
// parse in milliseconds. "S" is its own string table.
func (s *snapshot) index(t0 time.Time) []byte {
	e := &encoder{index: map[string]int{"": 0}, table: []string{""}, b: make([]byte, 0, 1024+64*len(s.recs))}
	e.raw(`{"v":1,"t0":`)
	if t0.IsZero() {
		e.raw("0")
	} else {
		e.n(t0.UnixMicro())
	}
	e.raw(`,"n":`)
	e.n(int64(len(s.recs)))
	col := func(name string, f func(r *record)) {
		e.raw(`,"` + name + `":[`)
		for i, r := range s.recs {
			if i > 0 {
				e.c()
			}
			f(r)
		}
		e.raw("]")
	}
	col("T", func(r *record) { e.us(r.t, t0) })
	col("E", func(r *record) { e.n(r.end.Sub(r.t).Microseconds()) })
	col("C", func(r *record) { e.s(string(r.code)) })
	col("V", func(r *record) { e.s(string(r.sev)) })
	col("H", func(r *record) { e.s(string(r.hop)) })
	col("K", func(r *record) { e.q(r.client) })
	col("P", func(r *record) { e.s(r.path) })
	col("SB", func(r *record) { e.n(int64(r.sb)) })
	col("SC", func(r *record) { e.n(int64(r.sc)) })
	e.raw(`,"S":`)
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
	return e.b
}

// details encodes every attempt in full (see report.js for the layout):
// a first line {"S": strings, "B": header blocks, "chunk": n}, then lines
// of n attempts each (JSON arrays), so the page parses only the lines of
// the attempts it shows (a JSON string never holds a raw newline).
func (s *snapshot) details(t0 time.Time) []byte {
	e := &encoder{index: map[string]int{"": 0}, table: []string{""}, blockIndex: map[string]int{}, b: make([]byte, 0, 1024+400*len(s.recs))}
	for i, r := range s.recs {
		switch {
		case i%detailChunk == 0 && i > 0:
			e.raw("]\n[")
		case i == 0:
			e.raw("[")
		default:
			e.c()
		}
		e.record(r, t0)
	}
	if len(s.recs) > 0 {
		e.raw("]")
	}
	recs := e.b
	e.b = make([]byte, 0, 64*len(e.table)+len(recs)+64)
	e.raw(`{"S":`)
	e.qs(e.table)
	e.raw(`,"B":[`)
	for i, b := range e.blocks {
		if i > 0 {
			e.c()
		}
		e.raw("[")
		for j, x := range b {
			if j > 0 {
				e.c()
			}
			e.n(int64(x))
		}
		e.raw("]")
	}
	e.raw(`],"chunk":`)
	e.n(detailChunk)
	e.raw("}\n")
	return append(e.b, recs...)
}

// detailChunk is how many attempts a line of details holds.
const detailChunk = 500

// packLines returns details as they are, or, when large, as a line "gz"
// followed by each line gzipped and base64'd: the page inflates only the
// lines of the attempts it shows.
func packLines(b []byte) []byte {
	if len(b) <= gzipAbove {
		return b
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	out := make([]byte, 0, len(b)/3)
	out = append(out, "gz"...)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		z.Reset()
		zw.Reset(&z)
		zw.Write(line)
		zw.Close()
		out = append(out, '\n')
		out = base64.StdEncoding.AppendEncode(out, z.Bytes())
	}
	return out
}

// pack returns data as it is, or, when large, as {"gz": base64 of the
// gzipped data}.
func pack(b []byte) []byte {
	if len(b) <= gzipAbove {
		return b
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	zw.Write(b)
	zw.Close()
	out := make([]byte, 0, 16+base64.StdEncoding.EncodedLen(z.Len()))
	out = append(out, `{"gz":"`...)
	out = base64.StdEncoding.AppendEncode(out, z.Bytes())
	return append(out, `"}`...)
}

func (s *snapshot) t0() time.Time {
	if len(s.recs) > 0 {
		return s.recs[0].t
	}
	return time.Time{}
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
		e.leg(&l, r)
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
	e.raw("],")
	e.q(r.key)
	e.c()
	e.q(r.accept)
	e.raw("]")
}

// leg writes a leg; its client is "" when it is the attempt's, and its
// times are each after the previous one given (the first after the
// attempt's start), which keeps the numbers short.
func (e *encoder) leg(l *leg, r *record) {
	e.raw("[")
	if l.client == r.client {
		e.raw(`""`)
	} else {
		e.q(l.client)
	}
	e.c()
	e.s(l.server)
	e.c()
	e.s(l.reqLine)
	e.c()
	e.s(l.statusLine)
	e.c()
	e.block(l.reqHeaders, r.key, r.accept)
	e.c()
	e.block(l.respHeaders, r.key, r.accept)
	t := &l.times
	base := r.t
	delta := func(x time.Time) {
		e.us(x, base)
		if !x.IsZero() {
			base = x
		}
	}
	e.raw(",[")
	e.n(b2i(t.SYN) | b2i(t.SYNACK)<<1 | b2i(t.OpenAtEnd)<<2)
	for _, x := range []time.Time{t.Open, t.Request, t.Response, t.FirstFrameC2S, t.FirstFrameS2C, t.CloseFrameC2S, t.CloseFrameS2C} {
		e.c()
		delta(x)
	}
	e.c()
	e.n(int64(t.CloseCodeC2S))
	e.c()
	e.n(int64(t.CloseCodeS2C))
	e.c()
	delta(t.ClientEnd)
	e.c()
	e.s(t.ClientEndKind)
	e.c()
	delta(t.ServerEnd)
	e.c()
	e.s(t.ServerEndKind)
	e.c()
	delta(t.Last)
	e.raw("],")
	e.n(b2i(l.reqCut) | b2i(l.respCut)<<1)
	e.raw("]")
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
