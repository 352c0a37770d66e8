package report

import (
	"encoding/json"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
)

// The layouts of the page's data, written once: each table lists an
// array's fields in the order they are written, by the name the script
// finds their index by (the index's "layout", read by report.js's
// layoutOf). A field is added, moved or removed here alone; the script
// reads it by name, and TestScriptUsesLayout fails when the script names
// a field no table has.

// field is one element of an array of the page's data.
type field[T any] struct {
	name string
	// delta: a time written in µs after the previous delta field that
	// was not null (the first after the attempt's start), which keeps
	// the numbers short.
	delta bool
	write func(e *encoder, x T)
}

// writeArray writes x as the JSON array of its fields.
func writeArray[T any](e *encoder, fields []field[T], x T) {
	e.list(len(fields), func(i int) { fields[i].write(e, x) })
}

// at is a record and the time its start counts from (the first
// attempt's).
type at struct {
	r  *record
	t0 time.Time
}

// The fields an attempt has both in the index and in its details.
var (
	timeField          = field[at]{name: "time", write: func(e *encoder, x at) { e.micros(x.r.start, x.t0) }}
	codeField          = field[at]{name: "code", write: func(e *encoder, x at) { e.str(string(x.r.code)) }}
	severityField      = field[at]{name: "severity", write: func(e *encoder, x at) { e.str(string(x.r.severity)) }}
	hopField           = field[at]{name: "hop", write: func(e *encoder, x at) { e.str(string(x.r.hop)) }}
	clientField        = field[at]{name: "client", write: func(e *encoder, x at) { e.quote(x.r.client) }}
	pathField          = field[at]{name: "path", write: func(e *encoder, x at) { e.str(x.r.path) }}
	statusBackendField = field[at]{name: "statusBackend", write: func(e *encoder, x at) { e.int(int64(x.r.statusBackend)) }}
	statusClientField  = field[at]{name: "statusClient", write: func(e *encoder, x at) { e.int(int64(x.r.statusClient)) }}
)

// indexColumns are the index's columns: what the list and the timeline
// need of every attempt at once.
var indexColumns = []field[at]{timeField,
	{name: "duration", write: func(e *encoder, x at) { e.int(x.r.end.Sub(x.r.start).Microseconds()) }},
	codeField, severityField, hopField, clientField, pathField, statusBackendField, statusClientField}

// recordFields are one attempt's details.
var recordFields = []field[at]{timeField, codeField, severityField, hopField, clientField, pathField,
	{name: "proxy", write: func(e *encoder, x at) { e.str(x.r.proxy) }},
	{name: "product", write: func(e *encoder, x at) { e.str(x.r.product) }},
	{name: "backend", write: func(e *encoder, x at) { e.str(x.r.backend) }},
	statusBackendField, statusClientField,
	{name: "pairing", write: func(e *encoder, x at) { e.str(x.r.pairing) }},
	{name: "findings", write: func(e *encoder, x at) { e.strs(x.r.findings) }},
	{name: "evidence", write: func(e *encoder, x at) { e.strs(x.r.evidence) }},
	{name: "errorLog", write: func(e *encoder, x at) { e.str(x.r.errorLog) }},
	{name: "fix", write: func(e *encoder, x at) { e.str(x.r.fix) }},
	{name: "end", write: func(e *encoder, x at) { e.micros(x.r.end, x.r.start) }},
	{name: "legs", write: func(e *encoder, x at) {
		e.list(len(x.r.legs), func(i int) { writeArray(e, legFields, legOf{&x.r.legs[i], x.r}) })
	}},
	{name: "session", write: func(e *encoder, x at) {
		if x.r.session == nil {
			e.raw("null")
			return
		}
		writeArray(e, sessionFields, x.r.session)
	}},
	{name: "connects", write: func(e *encoder, x at) {
		e.list(len(x.r.connects), func(i int) { writeArray(e, connectFields, connectOf{x.r, i}) })
	}},
	// The client's Sec-WebSocket-Key and the Accept answered to it, which
	// header blocks refer to as -1 and -2.
	{name: "key", write: func(e *encoder, x at) { e.quote(x.r.key) }},
	{name: "accept", write: func(e *encoder, x at) { e.quote(x.r.accept) }},
}

// legOf is a leg of its record.
type legOf struct {
	l *leg
	r *record
}

// legFields are a leg's: its client ("" when it is the attempt's), the
// request and status lines, the header blocks (indices into "blocks"),
// its times and which of its header blocks the snap length cut.
var legFields = []field[legOf]{
	{name: "client", write: func(e *encoder, x legOf) {
		if x.l.client == x.r.client {
			e.raw(`""`)
		} else {
			e.quote(x.l.client)
		}
	}},
	{name: "server", write: func(e *encoder, x legOf) { e.str(x.l.server) }},
	{name: "request", write: func(e *encoder, x legOf) { e.str(x.l.reqLine) }},
	{name: "status", write: func(e *encoder, x legOf) { e.str(x.l.statusLine) }},
	{name: "requestHeaders", write: func(e *encoder, x legOf) { e.block(x.l.reqHeaders, x.r.key, x.r.accept) }},
	{name: "responseHeaders", write: func(e *encoder, x legOf) { e.block(x.l.respHeaders, x.r.key, x.r.accept) }},
	{name: "times", write: func(e *encoder, x legOf) { writeArray(e, legTimeFields, &legClock{times: &x.l.times, base: x.r.start}) }},
	{name: "cut", write: func(e *encoder, x legOf) { e.int(b2i(x.l.reqCut) | b2i(x.l.respCut)<<1) }},
}

// legClock is a leg's times and the base of the next delta.
type legClock struct {
	times *analyze.LegTimes
	base  time.Time
}

// delta writes t after the base, which it then becomes.
func (c *legClock) delta(e *encoder, t time.Time) {
	e.micros(t, c.base)
	if !t.IsZero() {
		c.base = t
	}
}

// deltaField is a time field of a leg.
func deltaField(name string, of func(*analyze.LegTimes) time.Time) field[*legClock] {
	return field[*legClock]{name: name, delta: true, write: func(e *encoder, c *legClock) { c.delta(e, of(c.times)) }}
}

// legTimeFields are a leg's times: flags (1 SYN, 2 SYN-ACK, 4 open at the
// end), then the times of its events, close codes and how each side
// ended.
var legTimeFields = []field[*legClock]{
	{name: "flags", write: func(e *encoder, c *legClock) {
		e.int(b2i(c.times.SYN) | b2i(c.times.SYNACK)<<1 | b2i(c.times.OpenAtEnd)<<2)
	}},
	deltaField("open", func(t *analyze.LegTimes) time.Time { return t.Open }),
	deltaField("request", func(t *analyze.LegTimes) time.Time { return t.Request }),
	deltaField("response", func(t *analyze.LegTimes) time.Time { return t.Response }),
	deltaField("firstFrameC2S", func(t *analyze.LegTimes) time.Time { return t.FirstFrameC2S }),
	deltaField("firstFrameS2C", func(t *analyze.LegTimes) time.Time { return t.FirstFrameS2C }),
	deltaField("closeFrameC2S", func(t *analyze.LegTimes) time.Time { return t.CloseFrameC2S }),
	deltaField("closeFrameS2C", func(t *analyze.LegTimes) time.Time { return t.CloseFrameS2C }),
	{name: "closeCodeC2S", write: func(e *encoder, c *legClock) { e.int(int64(c.times.CloseCodeC2S)) }},
	{name: "closeCodeS2C", write: func(e *encoder, c *legClock) { e.int(int64(c.times.CloseCodeS2C)) }},
	deltaField("clientEnd", func(t *analyze.LegTimes) time.Time { return t.ClientEnd }),
	{name: "clientEndKind", write: func(e *encoder, c *legClock) { e.str(c.times.ClientEndKind) }},
	deltaField("serverEnd", func(t *analyze.LegTimes) time.Time { return t.ServerEnd }),
	{name: "serverEndKind", write: func(e *encoder, c *legClock) { e.str(c.times.ServerEndKind) }},
	deltaField("last", func(t *analyze.LegTimes) time.Time { return t.Last }),
}

// sessionFields are what happened after the 101.
var sessionFields = []field[*analyze.Session]{
	{name: "duration", write: func(e *encoder, s *analyze.Session) { e.int(s.Duration.Microseconds()) }},
	{name: "framesC2S", write: func(e *encoder, s *analyze.Session) { e.int(int64(s.FramesC2S)) }},
	{name: "framesS2C", write: func(e *encoder, s *analyze.Session) { e.int(int64(s.FramesS2C)) }},
	{name: "bytesC2S", write: func(e *encoder, s *analyze.Session) { e.int(int64(s.BytesC2S)) }},
	{name: "bytesS2C", write: func(e *encoder, s *analyze.Session) { e.int(int64(s.BytesS2C)) }},
	{name: "longestSilence", write: func(e *encoder, s *analyze.Session) { e.int(s.LongestSilence.Microseconds()) }},
	{name: "pings", write: func(e *encoder, s *analyze.Session) { e.int(int64(s.Pings)) }},
	{name: "closedBy", write: func(e *encoder, s *analyze.Session) { e.str(s.ClosedBy) }},
	{name: "closeCode", write: func(e *encoder, s *analyze.Session) { e.int(int64(s.CloseCode)) }},
	{name: "closeReason", write: func(e *encoder, s *analyze.Session) { e.quote(s.CloseReason) }},
	{name: "closeKind", write: func(e *encoder, s *analyze.Session) { e.str(s.CloseKind) }},
	{name: "open", write: func(e *encoder, s *analyze.Session) { e.flag(s.Open) }},
}

// connectOf is the i-th connect attempt of a record.
type connectOf struct {
	r *record
	i int
}

// connectFields are one of the proxy's connect attempts to the backend.
var connectFields = []field[connectOf]{
	{name: "client", write: func(e *encoder, x connectOf) { e.quote(addr(x.r.connects[x.i].Client)) }},
	{name: "server", write: func(e *encoder, x connectOf) { e.str(x.r.connServer[x.i]) }},
	{name: "start", write: func(e *encoder, x connectOf) { e.micros(x.r.connects[x.i].Start, x.r.start) }},
	{name: "last", write: func(e *encoder, x connectOf) { e.micros(x.r.connects[x.i].Last, x.r.start) }},
	{name: "synack", write: func(e *encoder, x connectOf) { e.flag(x.r.connects[x.i].SYNACK) }},
	{name: "end", write: func(e *encoder, x connectOf) { e.str(x.r.connects[x.i].End) }},
}

// codeFields are a code's entry in the catalogue ("codes").
var codeFields = []field[analyze.Code]{
	{name: "hop", write: func(e *encoder, c analyze.Code) { hop, _ := analyze.Describe(c); e.quote(string(hop)) }},
	{name: "severity", write: func(e *encoder, c analyze.Code) { _, sev := analyze.Describe(c); e.quote(string(sev)) }},
	{name: "summary", write: func(e *encoder, c analyze.Code) { e.quote(analyze.Summary(c)) }},
	{name: "color", write: func(e *encoder, c analyze.Code) { e.quote(colorOf(c)) }},
}

// layout is the names of every array's fields, as the index carries them.
type layout struct {
	Code      []string `json:"code"`
	Index     []string `json:"index"`
	Record    []string `json:"record"`
	Leg       []string `json:"leg"`
	LegTimes  []string `json:"legTimes"`
	LegDeltas []string `json:"legDeltas"` // the delta-coded ones of legTimes
	Session   []string `json:"session"`
	Connect   []string `json:"connect"`
}

func names[T any](fields []field[T], deltasOnly bool) []string {
	var out []string
	for _, f := range fields {
		if !deltasOnly || f.delta {
			out = append(out, f.name)
		}
	}
	return out
}

var theLayout = layout{Code: names(codeFields, false), Index: names(indexColumns, false), Record: names(recordFields, false), Leg: names(legFields, false),
	LegTimes: names(legTimeFields, false), LegDeltas: names(legTimeFields, true), Session: names(sessionFields, false), Connect: names(connectFields, false)}

// layoutJSON is theLayout as the index carries it.
var layoutJSON = func() []byte {
	b, err := json.Marshal(theLayout)
	if err != nil {
		panic(err)
	}
	return b
}()
