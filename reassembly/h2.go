package reassembly

import (
	"bytes"
	"strconv"
	"time"

	"github.com/wsdiag/wsdiag/proto/h2"
	"github.com/wsdiag/wsdiag/proto/wsframe"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// maxH2Streams bounds the streams of one HTTP/2 connection whose request
// is remembered; the oldest is forgotten first.
const maxH2Streams = 32

// h2conn is the glue between a stream and its HTTP/2 parser: it turns
// HEADERS into Request and Response events and feeds the DATA of
// WebSocket streams (RFC 8441) to a frame parser.
type h2conn struct {
	s       *stream
	p       *h2.Conn
	client  flow.Dir // the direction the client sends in
	connect bool
	sawSet  bool
	streams []h2stream
	ws      *wsframe.Session // the first WebSocket stream's frames
	wsID    uint32
}

type h2stream struct {
	id   uint32
	req  *Request
	resp *Response // an answer collecting its body prefix
	body []byte
	ws   bool // extended CONNECT for websocket
}

var h2Preface = []byte("PRI * HTTP/2.0")

// startH2 decides, on a direction's first bytes, whether the connection
// speaks HTTP/2: ALPN h2 on a TLS connection, or the client preface.
func (s *stream) startH2(d flow.Dir, data []byte) bool {
	preface := bytes.HasPrefix(data, h2Preface)
	if !preface && (s.tls == nil || s.tls.Info().ALPN != "h2") && !s.plainH2() {
		return false
	}
	c := &h2conn{s: s, client: d}
	if !preface {
		// The server may speak first (its SETTINGS) once TLS is done.
		c.client = d.Reverse()
	}
	s.setClient(c.client)
	s.engage()
	c.p = h2.New(c, true)
	s.h2 = c
	return true
}

// role is who sends in direction d.
func (c *h2conn) role(d flow.Dir) flow.Role {
	if d == c.client {
		return flow.Client
	}
	return flow.Server
}

// dir is the direction r sends in.
func (c *h2conn) dir(r flow.Role) flow.Dir {
	if r == flow.Client {
		return c.client
	}
	return c.client.Reverse()
}

func (c *h2conn) feed(d flow.Dir, b []byte, t time.Time) { c.p.Feed(c.role(d), b, t) }

func (c *h2conn) gap(d flow.Dir, n int) {
	c.p.Gap(c.role(d), n)
	if c.ws != nil {
		c.ws.Gap(d, n)
	}
}

func (c *h2conn) find(id uint32) *h2stream {
	for i := range c.streams {
		if c.streams[i].id == id {
			return &c.streams[i]
		}
	}
	return nil
}

func (c *h2conn) Settings(from flow.Role, st h2.Settings, _ time.Time) {
	if from == flow.Server {
		c.sawSet = true
		if st.HasEnableConnectProtocol {
			c.connect = st.EnableConnectProtocol
		}
	}
}

func pseudo(fields []h2.Field, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
		if len(f.Name) == 0 || f.Name[0] != ':' {
			break // pseudo-header fields come first
		}
	}
	return ""
}

func headersOf(fields []h2.Field) Headers {
	h := make(Headers, len(fields))
	for i, f := range fields {
		h[i] = Header{Name: f.Name, Value: f.Value}
	}
	return h
}

func (c *h2conn) Headers(from flow.Role, id uint32, fields []h2.Field, end bool, t time.Time) {
	s := c.s
	if from == flow.Client {
		if c.find(id) != nil {
			return // trailers
		}
		method, proto := pseudo(fields, ":method"), pseudo(fields, ":protocol")
		target := pseudo(fields, ":path")
		if method == "CONNECT" && proto == "" {
			target = pseudo(fields, ":authority")
		}
		req := &Request{Conn: s.conn(), Index: int(s.nreq), Method: method, Target: target, Version: "HTTP/2",
			Headers: headersOf(fields), Start: t, End: t,
			H2: &H2Stream{ID: id, Protocol: proto, ServerSettings: c.sawSet, ConnectProtocol: c.connect}}
		s.nreq++
		if len(c.streams) >= maxH2Streams {
			copy(c.streams, c.streams[1:])
			c.streams = c.streams[:len(c.streams)-1]
		}
		c.streams = append(c.streams, h2stream{id: id, req: req, ws: method == "CONNECT" && proto == "websocket"})
		s.asm.sink.Request(req)
		return
	}
	st := c.find(id)
	status, err := strconv.Atoi(pseudo(fields, ":status"))
	if err != nil || status < 200 || st == nil || st.req == nil {
		return // 1xx, a push, trailers, or a stream we forgot
	}
	resp := &Response{Conn: s.conn(), Index: int(s.nresp), Version: "HTTP/2", Status: status,
		Headers: headersOf(fields), Start: t, End: t, Request: st.req}
	s.nresp++
	st.req = nil
	if st.ws && status < 300 {
		s.asm.sink.Response(resp)
		if c.ws == nil {
			s.upgraded, s.upgradeTime = true, t
			c.ws, c.wsID = &wsframe.Session{}, id
			c.ws.Init(c.client, wsframe.DeflateNegotiated(resp.Headers.Values("sec-websocket-extensions")))
		}
		return
	}
	if end {
		s.asm.sink.Response(resp)
		return
	}
	st.resp = resp
}

func (c *h2conn) Data(from flow.Role, id uint32, data []byte, end bool, t time.Time) {
	if c.ws != nil && id == c.wsID {
		if len(data) > 0 {
			c.ws.Feed(c.dir(from), data, t)
		}
		return
	}
	if from != flow.Server {
		return
	}
	st := c.find(id)
	if st == nil || st.resp == nil {
		return
	}
	if room := c.s.asm.opt.BodyPrefix - len(st.body); room > 0 {
		st.body = append(st.body, data[:min(room, len(data))]...)
	}
	if end || len(st.body) >= c.s.asm.opt.BodyPrefix {
		c.emit(st)
	}
}

func (c *h2conn) emit(st *h2stream) {
	r := st.resp
	st.resp = nil
	if len(st.body) > 0 {
		r.Body = string(st.body)
		st.body = nil
	}
	c.s.asm.sink.Response(r)
}

func (c *h2conn) RSTStream(from flow.Role, id uint32, code uint32, t time.Time) {
	st := c.find(id)
	if st == nil {
		return
	}
	if st.resp != nil {
		c.emit(st)
		return
	}
	if st.req == nil {
		return
	}
	by := SideClient
	if from == flow.Server {
		by = SideServer
	}
	s := c.s
	resp := &Response{Conn: s.conn(), Index: int(s.nresp), Version: "HTTP/2", Reason: "RST_STREAM " + h2ErrName(code),
		Start: t, End: t, Request: st.req, Reset: true, ResetCode: code, ResetBy: by}
	s.nresp++
	st.req = nil
	s.asm.sink.Response(resp)
}

func (c *h2conn) GoAway(flow.Role, uint32, uint32, time.Time) {}

func (c *h2conn) Stopped(flow.Role, string) {}

// finish delivers answers still collecting their body.
func (c *h2conn) finish() {
	for i := range c.streams {
		if c.streams[i].resp != nil {
			c.emit(&c.streams[i])
		}
	}
}

// h2ErrName names RFC 9113's error codes.
func h2ErrName(code uint32) string {
	names := [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
		"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
		"ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}
	if int(code) < len(names) {
		return names[code]
	}
	return "0x" + strconv.FormatUint(uint64(code), 16)
}
