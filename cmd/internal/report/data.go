package report

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/visible"
)

// The data the page's script reads, as compact JSON. Repeated strings
// (header lines, evidence, paths) live once in a table "strings" and
// attempts refer to them by index; times are microseconds, attempts'
// relative to "t0", events' relative to their attempt. An attempt, a leg,
// its times, a session and a connect attempt are arrays, to keep 100 000
// of them small; layout.go names their fields, and the index carries
// those names ("layout"), from which the script takes its indices.

// gzipAbove is the JSON size past which the data is gzipped and base64'd
// (the page inflates it with the browser's DecompressionStream).
const gzipAbove = 1 << 20

type encoder struct {
	buf   []byte
	index map[string]int
	table []string
	// Header blocks are shared too ("blocks"): a line carrying the
	// attempt's own Sec-WebSocket-Key or -Accept is written -1 or -2, so
	// blocks that differ only in those are one.
	blockIndex map[string]int
	blocks     [][]int
	ints       []int
	key        []byte
}

func newEncoder(size int) *encoder {
	return &encoder{index: map[string]int{"": 0}, table: []string{""}, blockIndex: map[string]int{}, buf: make([]byte, 0, size)}
}

// block writes the index of a header block in "blocks".
func (e *encoder) block(lines []string, key, accept string) {
	e.ints = e.ints[:0]
	for _, l := range lines {
		switch {
		case key != "" && len(l) == len(keyLine)+len(key) && l[:len(keyLine)] == keyLine && l[len(keyLine):] == key:
			e.ints = append(e.ints, -1)
		case accept != "" && len(l) == len(acceptLine)+len(accept) && l[:len(acceptLine)] == acceptLine && l[len(acceptLine):] == accept:
			e.ints = append(e.ints, -2)
		default:
			e.ints = append(e.ints, e.intern(l))
		}
	}
	e.key = e.key[:0]
	for _, i := range e.ints {
		e.key = strconv.AppendInt(e.key, int64(i), 10)
		e.key = append(e.key, ',')
	}
	i, ok := e.blockIndex[string(e.key)]
	if !ok {
		i = len(e.blocks)
		e.blockIndex[string(e.key)] = i
		e.blocks = append(e.blocks, append([]int(nil), e.ints...))
	}
	e.int(int64(i))
}

const keyLine, acceptLine = "Sec-WebSocket-Key: ", "Sec-WebSocket-Accept: "

// intern returns the index of x in the string table, adding it.
func (e *encoder) intern(x string) int {
	i, ok := e.index[x]
	if !ok {
		i = len(e.table)
		e.index[x] = i
		e.table = append(e.table, x)
	}
	return i
}

// str writes x as its index in the string table.
func (e *encoder) str(x string) { e.int(int64(e.intern(x))) }

// strs writes a list of strings as their indices.
func (e *encoder) strs(xs []string) { e.list(len(xs), func(i int) { e.str(xs[i]) }) }

// list writes a JSON array of n items.
func (e *encoder) list(n int, item func(i int)) {
	e.raw("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			e.comma()
		}
		item(i)
	}
	e.raw("]")
}

func (e *encoder) int(x int64)  { e.buf = strconv.AppendInt(e.buf, x, 10) }
func (e *encoder) comma()       { e.buf = append(e.buf, ',') }
func (e *encoder) raw(x string) { e.buf = append(e.buf, x...) }
func (e *encoder) flag(b bool)  { e.int(b2i(b)) }

// micros writes t-base in microseconds, or null for a zero t.
func (e *encoder) micros(t, base time.Time) {
	if t.IsZero() {
		e.raw("null")
		return
	}
	e.int(t.Sub(base).Microseconds())
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

// quote writes a string of the page: what others wrote (paths, header
// lines, reasons, bodies quoted in evidence) shows its control and bidi
// characters as visible escapes, as in the text output.
func (e *encoder) quote(s string) { e.buf = appendJSON(e.buf, visible.Lines(s)) }

func (e *encoder) quotes(xs []string) { e.list(len(xs), func(i int) { e.quote(xs[i]) }) }

// index encodes what the page needs at once (the summary's filters, the
// timeline, the list's rows): one column per field (indexColumns), so
// 100 000 attempts parse in milliseconds, then the string table of the
// columns, the code catalogue and the layout of the details.
func (s *snapshot) index(t0 time.Time) []byte {
	e := newEncoder(1024 + 64*len(s.recs))
	e.raw(`{"version":1,"t0":`)
	if t0.IsZero() {
		e.raw("0")
	} else {
		e.int(t0.UnixMicro())
	}
	e.raw(`,"count":`)
	e.int(int64(len(s.recs)))
	for _, col := range indexColumns {
		e.raw(`,"` + col.name + `":`)
		e.list(len(s.recs), func(i int) { col.write(e, at{s.recs[i], t0}) })
	}
	e.raw(`,"strings":`)
	e.quotes(e.table)
	e.raw(`,"codes":`)
	e.codes()
	e.raw(`,"layout":`)
	e.buf = append(e.buf, layoutJSON...)
	e.raw("}")
	return e.buf
}

// codes writes the catalogue: code → [hop, severity, summary, colour].
func (e *encoder) codes() {
	e.raw("{")
	for i, c := range analyze.Codes {
		if i > 0 {
			e.comma()
		}
		e.quote(string(c))
		e.raw(":")
		writeArray(e, codeFields, c)
	}
	e.raw("}")
}

// details encodes every attempt in full (recordFields): a first line
// {"strings": …, "blocks": header blocks, "chunk": n}, then lines of n
// attempts each (JSON arrays), so the page parses only the lines of the
// attempts it shows (a JSON string never holds a raw newline).
func (s *snapshot) details(t0 time.Time) []byte {
	e := newEncoder(1024 + 400*len(s.recs))
	for i, r := range s.recs {
		switch {
		case i%detailChunk == 0 && i > 0:
			e.raw("]\n[")
		case i == 0:
			e.raw("[")
		default:
			e.comma()
		}
		writeArray(e, recordFields, at{r, t0})
	}
	if len(s.recs) > 0 {
		e.raw("]")
	}
	recs := e.buf
	e.buf = make([]byte, 0, 64*len(e.table)+len(recs)+64)
	e.raw(`{"strings":`)
	e.quotes(e.table)
	e.raw(`,"blocks":`)
	e.list(len(e.blocks), func(i int) { e.list(len(e.blocks[i]), func(j int) { e.int(int64(e.blocks[i][j])) }) })
	e.raw(`,"chunk":`)
	e.int(detailChunk)
	e.raw("}\n")
	return append(e.buf, recs...)
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
		return s.recs[0].start
	}
	return time.Time{}
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
