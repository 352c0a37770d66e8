package reassembly_test

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/reassembly"
)

// ---- a sink that records events ----

type recSink struct {
	reqs  []*reassembly.Request
	resps []*reassembly.Response
	ends  []*reassembly.ConnEnd
	// ev is every event in order, printed without times (so that a split
	// stream can be compared with an unsplit one).
	ev []string
}

func (s *recSink) Request(r *reassembly.Request) {
	s.reqs = append(s.reqs, r)
	s.ev = append(s.ev, fmtReq(r))
}

func (s *recSink) Response(r *reassembly.Response) {
	s.resps = append(s.resps, r)
	s.ev = append(s.ev, fmtResp(r))
}

func (s *recSink) ConnEnd(e *reassembly.ConnEnd) {
	s.ends = append(s.ends, e)
	s.ev = append(s.ev, fmtEnd(e))
}

func fmtHeaders(h reassembly.Headers) string {
	var b strings.Builder
	for i, f := range h {
		if i > 0 {
			b.WriteString("|")
		}
		b.WriteString(f.Name + ": " + f.Value)
	}
	return b.String()
}

func fmtReq(r *reassembly.Request) string {
	return fmt.Sprintf("REQ c%d %s>%s #%d %q %q %q trunc=%v [%s]", r.ID, r.Client, r.Server, r.Index, r.Method, r.Target, r.Version, r.Truncated, fmtHeaders(r.Headers))
}

func fmtResp(r *reassembly.Response) string {
	req := "-"
	if r.Request != nil {
		req = fmt.Sprintf("%s %s #%d", r.Request.Method, r.Request.Target, r.Request.Index)
	}
	return fmt.Sprintf("RESP c%d %s>%s #%d %q %d %q trunc=%v req=(%s) [%s] body=%q", r.ID, r.Client, r.Server, r.Index, r.Version, r.Status, r.Reason, r.Truncated, req, fmtHeaders(r.Headers), r.Body)
}

func fmtEnd(e *reassembly.ConnEnd) string {
	return fmt.Sprintf("END c%d %s>%s syn=%v synack=%v cclose=%s sclose=%s %s http=%v tls=%v upgraded=%v c2s=%d s2c=%d gaps=%d/%d req=%d resp=%d",
		e.ID, e.Client, e.Server, e.SYN, e.SYNACK, e.ClientClose.Kind, e.ServerClose.Kind, e.Reason, e.HTTP, e.TLS, e.Upgraded,
		e.BytesC2S, e.BytesS2C, e.Gaps, e.GapBytes, e.Requests, e.Responses)
}

// ---- a TCP connection built by hand ----

var t0 = time.Date(2026, 11, 21, 13, 34, 41, 0, time.UTC)

type tconn struct {
	asm          *reassembly.Assembler
	cip, sip     net.IP
	cport, sport uint16
	cseq, sseq   uint32 // next sequence number each side sends
	now          time.Time
}

func newConn(asm *reassembly.Assembler) *tconn {
	return &tconn{asm: asm, cip: net.IPv4(10, 0, 0, 1).To4(), sip: net.IPv4(10, 0, 0, 2).To4(),
		cport: 40000, sport: 8080, cseq: 1000, sseq: 500000, now: t0}
}

// seg sends one segment with explicit sequence number; it does not move
// the connection's own sequence numbers.
func (c *tconn) seg(fromClient bool, seq uint32, flags string, payload []byte) {
	c.now = c.now.Add(time.Millisecond)
	tcp := &layers.TCP{Window: 65535, Seq: seq}
	src, dst := c.cip, c.sip
	tcp.SrcPort, tcp.DstPort = layers.TCPPort(c.cport), layers.TCPPort(c.sport)
	tcp.Ack = c.sseq
	if !fromClient {
		src, dst = dst, src
		tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
		tcp.Ack = c.cseq
	}
	for _, f := range flags {
		switch f {
		case 'S':
			tcp.SYN = true
		case 'A':
			tcp.ACK = true
		case 'F':
			tcp.FIN = true
		case 'R':
			tcp.RST = true
		case 'P':
			tcp.PSH = true
		}
	}
	if strings.IndexByte(flags, 'A') < 0 && !tcp.SYN && !tcp.RST {
		tcp.ACK = true // every segment after the SYN carries ACK
	}
	tcp.Payload = payload
	tcp.SetInternalPortsForTesting()
	net := gopacket.NewFlow(layers.EndpointIPv4, src, dst)
	ci := gopacket.CaptureInfo{Timestamp: c.now, CaptureLength: 54 + len(payload), Length: 54 + len(payload)}
	c.asm.Packet(net, tcp, ci, 0)
}

// send sends payload from one side at its next sequence number and moves
// that number on (SYN and FIN count one).
func (c *tconn) send(fromClient bool, flags string, payload []byte) {
	seq := &c.sseq
	if fromClient {
		seq = &c.cseq
	}
	c.seg(fromClient, *seq, flags, payload)
	*seq += uint32(len(payload))
	if strings.ContainsAny(flags, "SF") {
		*seq++
	}
}

func (c *tconn) client(p string) { c.send(true, "PA", []byte(p)) }
func (c *tconn) server(p string) { c.send(false, "PA", []byte(p)) }

func (c *tconn) handshake() {
	c.send(true, "S", nil)
	c.send(false, "SA", nil)
	c.send(true, "A", nil)
}

// close: the client sends FIN, the server answers FIN, the client ACKs.
func (c *tconn) close() {
	c.send(true, "FA", nil)
	c.send(false, "FA", nil)
	c.send(true, "A", nil)
}

// wait moves capture time on without a packet.
func (c *tconn) wait(d time.Duration) { c.now = c.now.Add(d) }

func newAsm() (*reassembly.Assembler, *recSink) {
	s := &recSink{}
	return reassembly.New(s, reassembly.DefaultOptions), s
}

// ---- messages from the real captures ----

const (
	wsRequest = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wsdiag-testclient/1 (n=1)\r\nConnection: Upgrade\r\n" +
		"Origin: http://127.0.0.1:8080\r\nSec-WebSocket-Key: EEJPHnvDttGGYMBiYE7LpA==\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n\r\n"
	ws101 = "HTTP/1.1 101 Switching Protocols\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 13:34:41 GMT\r\nConnection: upgrade\r\n" +
		"Upgrade: websocket\r\nSec-WebSocket-Accept: TwdqhEEtGWGOXkaSwWVPBHKgJ1I=\r\n\r\n"
	resp400 = "HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 13:33:55 GMT\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: 12\r\nConnection: keep-alive\r\nSec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n\r\nBad Request\n"
	upstreamReq10 = "GET /ws HTTP/1.0\r\nHost: 127.0.0.1:9001\r\nConnection: close\r\nUser-Agent: wsdiag-testclient/1 (n=1)\r\n" +
		"Origin: http://127.0.0.1:8080\r\nSec-WebSocket-Key: Y0ZmRYs/hTSukrOXHDNBVA==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	resp502 = "HTTP/1.1 502 Bad Gateway\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 13:34:11 GMT\r\nContent-Type: text/html\r\n" +
		"Content-Length: 157\r\nConnection: keep-alive\r\n\r\n<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
		"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
)

// ---- helpers ----

// exchange runs one connection: handshake, the client's segments, the
// server's segments, close; and returns the events.
func exchange(t *testing.T, cSegs, sSegs []string) []string {
	t.Helper()
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	for _, s := range cSegs {
		c.client(s)
	}
	for _, s := range sSegs {
		c.server(s)
	}
	c.close()
	asm.Close()
	return sink.ev
}

func sameEvents(t *testing.T, desc string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d\ngot:\n  %s\nwant:\n  %s", desc, len(got), len(want), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d\n got: %s\nwant: %s", desc, i, got[i], want[i])
		}
	}
}

// splitAt returns s cut at the given offsets (ascending).
func splitAt(s string, cuts ...int) []string {
	var out []string
	prev := 0
	for _, c := range cuts {
		out = append(out, s[prev:c])
		prev = c
	}
	return append(out, s[prev:])
}

func bytesOneByOne(s string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}

// ---- tests ----

func TestUnsplitExchange(t *testing.T) {
	ev := exchange(t, []string{wsRequest}, []string{ws101})
	want := []string{
		`REQ c1 10.0.0.1:40000>10.0.0.2:8080 #0 "GET" "/ws" "HTTP/1.1" trunc=false [Host: 127.0.0.1:8080|User-Agent: wsdiag-testclient/1 (n=1)|Connection: Upgrade|Origin: http://127.0.0.1:8080|Sec-WebSocket-Key: EEJPHnvDttGGYMBiYE7LpA==|Sec-WebSocket-Version: 13|Upgrade: websocket]`,
		`RESP c1 10.0.0.1:40000>10.0.0.2:8080 #0 "HTTP/1.1" 101 "Switching Protocols" trunc=false req=(GET /ws #0) [Server: nginx/1.22.1|Date: Sat, 21 Nov 2026 13:34:41 GMT|Connection: upgrade|Upgrade: websocket|Sec-WebSocket-Accept: TwdqhEEtGWGOXkaSwWVPBHKgJ1I=] body=""`,
		fmt.Sprintf(`END c1 10.0.0.1:40000>10.0.0.2:8080 syn=true synack=true cclose=FIN sclose=FIN closed http=true tls=false upgraded=true c2s=%d s2c=%d gaps=0/0 req=1 resp=1`, len(wsRequest), len(ws101)),
	}
	sameEvents(t, "unsplit", ev, want)

	ev = exchange(t, []string{upstreamReq10}, []string{resp400})
	if len(ev) != 3 || !strings.Contains(ev[1], `body="Bad Request\n"`) || !strings.Contains(ev[0], `"HTTP/1.0"`) {
		t.Fatalf("400 exchange:\n%s", strings.Join(ev, "\n"))
	}
}

// TestSplitEveryOffset: a request and a response cut at every byte offset
// give the same events as unsplit.
func TestSplitEveryOffset(t *testing.T) {
	for _, tc := range []struct{ req, resp string }{
		{wsRequest, ws101},
		{upstreamReq10, resp400},
		{wsRequest, resp502},
	} {
		want := exchange(t, []string{tc.req}, []string{tc.resp})
		for i := 0; i <= len(tc.req); i++ {
			sameEvents(t, fmt.Sprintf("request cut at %d", i), exchange(t, splitAt(tc.req, i), []string{tc.resp}), want)
		}
		for i := 0; i <= len(tc.resp); i++ {
			sameEvents(t, fmt.Sprintf("response cut at %d", i), exchange(t, []string{tc.req}, splitAt(tc.resp, i)), want)
		}
		sameEvents(t, "one byte per segment", exchange(t, bytesOneByOne(tc.req), bytesOneByOne(tc.resp)), want)
	}
}

// Pipelined keep-alive requests with Content-Length and chunked bodies.
const (
	pipeReqs = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world" +
		"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
	pipeResps = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst" +
		"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\nA\r\nond-chunk!\r\n0\r\n\r\n" +
		"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
)

func TestPipelined(t *testing.T) {
	want := exchange(t, []string{pipeReqs}, []string{pipeResps})
	var reqs, resps []string
	for _, e := range want {
		switch {
		case strings.HasPrefix(e, "REQ"):
			reqs = append(reqs, e)
		case strings.HasPrefix(e, "RESP"):
			resps = append(resps, e)
		}
	}
	if len(reqs) != 3 || len(resps) != 3 {
		t.Fatalf("want 3 requests and 3 responses:\n%s", strings.Join(want, "\n"))
	}
	for i, w := range []string{`"POST" "/a"`, `"POST" "/b"`, `"GET" "/c"`} {
		if !strings.Contains(reqs[i], w) || !strings.Contains(reqs[i], fmt.Sprintf("#%d", i)) {
			t.Errorf("request %d: %s", i, reqs[i])
		}
	}
	for i, w := range []string{`200 "OK" trunc=false req=(POST /a #0)`, `201 "Created" trunc=false req=(POST /b #1)`, `404 "Not Found" trunc=false req=(GET /c #2)`} {
		if !strings.Contains(resps[i], w) {
			t.Errorf("response %d: %s, want %s", i, resps[i], w)
		}
	}
	for i, b := range []string{`body="first"`, `body="second-chunk!"`, `body="nope"`} {
		if !strings.Contains(resps[i], b) {
			t.Errorf("response %d: %s, want %s (the body prefix, chunk framing removed)", i, resps[i], b)
		}
	}
	// Every split, chunk boundaries included, gives the same events.
	for i := 0; i <= len(pipeReqs); i++ {
		sameEvents(t, fmt.Sprintf("requests cut at %d", i), exchange(t, splitAt(pipeReqs, i), []string{pipeResps}), want)
	}
	for i := 0; i <= len(pipeResps); i++ {
		sameEvents(t, fmt.Sprintf("responses cut at %d", i), exchange(t, []string{pipeReqs}, splitAt(pipeResps, i)), want)
	}
	sameEvents(t, "one byte per segment", exchange(t, bytesOneByOne(pipeReqs), bytesOneByOne(pipeResps)), want)
	// Interleaved: request, response, request, response...
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	rq := splitAt(pipeReqs, strings.Index(pipeReqs, "POST /b"), strings.Index(pipeReqs, "GET /c"))
	rp := splitAt(pipeResps, strings.Index(pipeResps, "HTTP/1.1 201"), strings.Index(pipeResps, "HTTP/1.1 404"))
	for i := range rq {
		c.client(rq[i])
		c.server(rp[i])
	}
	c.close()
	asm.Close()
	// Events come in capture order (request, response, request, ...): the
	// requests and the responses each match the pipelined run.
	byKind := func(ev []string) (q, p []string) {
		for _, e := range ev {
			if strings.HasPrefix(e, "RESP") {
				p = append(p, e)
			} else {
				q = append(q, e)
			}
		}
		return
	}
	gq, gp := byKind(sink.ev)
	wq, wp := byKind(want)
	sameEvents(t, "interleaved requests and end", gq, wq)
	sameEvents(t, "interleaved responses", gp, wp)
}

func TestNoBodyResponses(t *testing.T) {
	reqs := "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /nc HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /nm HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"e\"\r\n\r\n" +
		"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
	resps := "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + // HEAD: no body despite the length
		"HTTP/1.1 204 No Content\r\nContent-Length: 77\r\n\r\n" +
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"e\"\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	ev := exchange(t, []string{reqs}, []string{resps})
	var rs []string
	for _, e := range ev {
		if strings.HasPrefix(e, "RESP") {
			rs = append(rs, e)
		}
	}
	if len(rs) != 4 {
		t.Fatalf("%d responses, want 4:\n%s", len(rs), strings.Join(ev, "\n"))
	}
	for i, w := range []string{`200 "OK" trunc=false req=(HEAD /h #0)`, `204 "No Content" trunc=false req=(GET /nc #1)`, `304 "Not Modified" trunc=false req=(GET /nm #2)`, `200 "OK" trunc=false req=(GET /after #3)`} {
		if !strings.Contains(rs[i], w) {
			t.Errorf("response %d: %s\nwant %s", i, rs[i], w)
		}
	}
	if !strings.HasSuffix(rs[3], `body="ok"`) {
		t.Errorf("last response: %s, want body \"ok\"", rs[3])
	}
	for i := 0; i <= len(resps); i += 7 {
		sameEvents(t, fmt.Sprintf("responses cut at %d", i), exchange(t, []string{reqs}, splitAt(resps, i)), ev)
	}
}

// A 101 followed in the same segment by WebSocket frames whose payload
// looks like HTTP: the frames must not be parsed as HTTP.
func TestUpgradeThenFramesSameSegment(t *testing.T) {
	frame := func(p string) string { return "\x81" + string(rune(len(p))) + p }
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	c.client(wsRequest)
	c.server(ws101 + frame("HTTP/1.1 200 OK\r\n\r\n") + frame("hello"))
	// masked client frame whose unmasked bytes look like a request
	c.client("\x81\x9a\x00\x00\x00\x00GET /evil HTTP/1.1\r\n\r\n")
	c.client("GET /evil2 HTTP/1.1\r\nHost: x\r\n\r\n")
	c.server("HTTP/1.1 400 Bad Request\r\n\r\n")
	c.close()
	asm.Close()
	if len(sink.reqs) != 1 || len(sink.resps) != 1 || len(sink.ends) != 1 {
		t.Fatalf("want 1 request, 1 response (101) and 1 end:\n%s", strings.Join(sink.ev, "\n"))
	}
	if sink.resps[0].Status != 101 || !sink.ends[0].Upgraded {
		t.Fatalf("not upgraded:\n%s", strings.Join(sink.ev, "\n"))
	}
	if sink.ends[0].UpgradeTime.IsZero() {
		t.Errorf("UpgradeTime not set")
	}
}

// A capture that starts mid-connection: no SYN, the first segment is a
// request (and in another test, the first is the response's ACK).
func TestNoSYN(t *testing.T) {
	asm, sink := newAsm()
	c := newConn(asm)
	c.client(wsRequest)
	c.server(resp400)
	c.client("GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
	c.server(resp502)
	c.close()
	asm.Close()
	if len(sink.reqs) != 2 || len(sink.resps) != 2 || len(sink.ends) != 1 {
		t.Fatalf("want 2 requests, 2 responses, 1 end:\n%s", strings.Join(sink.ev, "\n"))
	}
	e := sink.ends[0]
	if e.SYN || e.Client.Port() != 40000 || e.Server.Port() != 8080 || !e.HTTP {
		t.Errorf("end: %s", fmtEnd(e))
	}
	if sink.resps[1].Request == nil || sink.resps[1].Request.Target != "/again" {
		t.Errorf("second response not paired: %s", fmtResp(sink.resps[1]))
	}

	// The first packet seen is from the server (an ACK), then a response,
	// then the next request: the client is still the side that sends
	// requests.
	asm, sink = newAsm()
	c = newConn(asm)
	c.send(false, "A", nil)
	c.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c.client("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	c.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c.close()
	asm.Close()
	if len(sink.reqs) != 1 || len(sink.resps) != 2 {
		t.Fatalf("want 1 request, 2 responses:\n%s", strings.Join(sink.ev, "\n"))
	}
	if sink.reqs[0].Client.Port() != 40000 || sink.ends[0].Client.Port() != 40000 {
		t.Errorf("client side wrong:\n%s", strings.Join(sink.ev, "\n"))
	}
}

func TestRetransmission(t *testing.T) {
	want := exchange(t, []string{wsRequest}, []string{resp400})
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	seq := c.cseq
	c.client(wsRequest)
	c.seg(true, seq, "PA", []byte(wsRequest)) // same bytes again
	c.seg(true, seq+10, "PA", []byte(wsRequest[10:50]))
	sseq := c.sseq
	c.server(resp400)
	c.seg(false, sseq, "PA", []byte(resp400))
	c.close()
	asm.Close()
	sameEvents(t, "retransmitted", sink.ev, want)
}

// Overlapping retransmissions that carry different bytes (a confused or
// hostile sender; an IDS evasion classic). Which bytes win:
//   - Bytes already handed to the parsers are never replaced: a segment
//     counts only for what it carries past them. The fast path trims such
//     overlaps itself, gopacket's reassembly trims them the same way, and
//     the two must agree, since a connection moves from one to the other
//     at its first hole.
//   - Bytes queued behind a hole exist only in gopacket (the fast path
//     queues nothing: a hole hands the connection over). There the latest
//     segment replaces what it overlaps (gopacket's checkOverlap); the
//     stream is then whatever the last writer of each byte sent.
func TestOverlapDifferentBytes(t *testing.T) {
	a := "GET /aaaa HTTP/1.1\r\nHost: x\r\n\r\n"
	b := "GET /bbbb HTTP/1.1\r\nHost: y\r\nX: 1\r\n\r\n"
	// a is delivered, then b is sent over it, whole and from byte 4. On
	// the slow path a arrives in two pieces out of order first, which
	// hands the connection to gopacket before b comes.
	run := func(slow bool) ([]string, reassembly.Stats) {
		asm, sink := newAsm()
		c := newConn(asm)
		c.handshake()
		seq := c.cseq
		if slow {
			c.seg(true, seq+10, "PA", []byte(a[10:]))
			c.seg(true, seq, "PA", []byte(a[:10]))
		} else {
			c.client(a)
		}
		c.seg(true, seq, "PA", []byte(b))
		c.seg(true, seq+4, "PA", []byte(b[4:]))
		c.cseq = seq + uint32(len(b))
		c.server("HTTP/1.1 204 No Content\r\n\r\n")
		c.close()
		st := asm.Stats()
		asm.Close()
		return sink.ev, st
	}
	fast, fst := run(false)
	slow, sst := run(true)
	if fst.Handovers != 0 || sst.Handovers != 1 {
		t.Fatalf("handovers: fast path %d, slow path %d; want 0 and 1", fst.Handovers, sst.Handovers)
	}
	// The stream is a, then what b carries past a's 31 bytes (" 1\r\n\r\n",
	// a header block of its own); the response answers a's request.
	want := []string{
		`REQ c1 10.0.0.1:40000>10.0.0.2:8080 #0 "GET" "/aaaa" "HTTP/1.1" trunc=false [Host: x]`,
		`REQ c1 10.0.0.1:40000>10.0.0.2:8080 #1 "" "1" "" trunc=false []`,
		`RESP c1 10.0.0.1:40000>10.0.0.2:8080 #0 "HTTP/1.1" 204 "No Content" trunc=false req=(GET /aaaa #0) [] body=""`,
		`END c1 10.0.0.1:40000>10.0.0.2:8080 syn=true synack=true cclose=FIN sclose=FIN closed http=true tls=false upgraded=false c2s=37 s2c=27 gaps=0/0 req=2 resp=1`,
	}
	sameEvents(t, "fast path", fast, want)
	sameEvents(t, "gopacket", slow, want)

	// Queued bytes: a[10:] waits behind a hole, 20 bytes of Z overlap it
	// from byte 8, then a[:10] fills the hole. Each later segment wins
	// where it overlaps one still queued: a[:10], then the Zs up to byte
	// 28, then what is left of a[10:].
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	seq := c.cseq
	c.seg(true, seq+10, "PA", []byte(a[10:]))
	c.seg(true, seq+8, "PA", []byte(strings.Repeat("Z", 20)))
	c.seg(true, seq, "PA", []byte(a[:10]))
	c.cseq = seq + uint32(len(a))
	c.close()
	asm.Close()
	// a[:10] + 18 Zs + a[28:] is "GET /aaaa ZZZZZZZZZZZZZZZZZZ\n\r\n".
	want = []string{
		`REQ c1 10.0.0.1:40000>10.0.0.2:8080 #0 "GET" "/aaaa" "ZZZZZZZZZZZZZZZZZZ" trunc=false []`,
		`END c1 10.0.0.1:40000>10.0.0.2:8080 syn=true synack=true cclose=FIN sclose=FIN closed http=true tls=false upgraded=false c2s=31 s2c=0 gaps=0/0 req=1 resp=0`,
	}
	sameEvents(t, "queued overlap", sink.ev, want)
}

func TestOutOfOrder(t *testing.T) {
	want := exchange(t, []string{wsRequest}, []string{resp400})
	parts := splitAt(wsRequest, 30, 100)
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	seq := c.cseq
	c.seg(true, seq+100, "PA", []byte(parts[2]))
	c.seg(true, seq+30, "PA", []byte(parts[1]))
	c.seg(true, seq, "PA", []byte(parts[0]))
	c.cseq = seq + uint32(len(wsRequest))
	sparts := splitAt(resp400, 50)
	sseq := c.sseq
	c.seg(false, sseq+50, "PA", []byte(sparts[1]))
	c.seg(false, sseq, "PA", []byte(sparts[0]))
	c.sseq = sseq + uint32(len(resp400))
	c.close()
	asm.Close()
	sameEvents(t, "out of order", sink.ev, want)
}

// A lost segment in the middle of a body: the body is skipped by length
// and the next request parsed.
func TestGapInBody(t *testing.T) {
	body := strings.Repeat("b", 3000)
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	c.client("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + body[:1000])
	c.cseq += 1000 // body[1000:2000] is lost
	c.client(body[2000:])
	c.client("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	c.wait(3 * time.Second) // longer than FlushAfter: the hole is given up
	c.send(false, "A", nil)
	c.server("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
	c.server("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
	c.close()
	asm.Close()
	if len(sink.reqs) != 2 || sink.reqs[1].Target != "/next" {
		t.Fatalf("want POST /up and GET /next:\n%s", strings.Join(sink.ev, "\n"))
	}
	if len(sink.resps) != 2 || sink.resps[1].Request == nil || sink.resps[1].Request.Target != "/next" {
		t.Fatalf("responses:\n%s", strings.Join(sink.ev, "\n"))
	}
	e := sink.ends[0]
	if e.Gaps != 1 || e.GapBytes != 1000 {
		t.Errorf("gaps %d/%d, want 1/1000", e.Gaps, e.GapBytes)
	}

	// The same in a response body: the response is still reported.
	asm, sink = newAsm()
	c = newConn(asm)
	c.handshake()
	c.client("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	c.client("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	c.server("HTTP/1.1 500 Oops\r\nContent-Length: 3000\r\n\r\n" + body[:100])
	c.sseq += 1000
	c.server(body[1100:])
	c.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c.wait(3 * time.Second)
	c.send(true, "A", nil)
	c.close()
	asm.Close()
	if len(sink.resps) != 2 || sink.resps[0].Status != 500 || sink.resps[1].Status != 200 || sink.resps[1].Body != "ok" {
		t.Fatalf("want 500 then 200 ok:\n%s", strings.Join(sink.ev, "\n"))
	}
	if !strings.HasPrefix(sink.resps[0].Body, "bbbb") {
		t.Errorf("500 body prefix %q", sink.resps[0].Body)
	}
}

// A lost segment in the middle of a header block: the parser must
// resynchronise on the next request. Requests usually start at a segment
// boundary, so the next request starts right after the segment that
// follows the gap, or at the start of it.
func TestGapInHeader(t *testing.T) {
	r1 := "GET /one HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n"
	r2 := "GET /two HTTP/1.1\r\nHost: x\r\n\r\n"
	r3 := "GET /three HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		desc string
		// after is sent after the hole, segment by segment
		after []string
	}{
		{"rest of the block and the next request in one segment", []string{r1[40:] + r2, r3}},
		{"next request at the start of a segment", []string{r2, r3}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			asm, sink := newAsm()
			c := newConn(asm)
			c.handshake()
			c.client(r1[:20])
			if tc.desc == "next request at the start of a segment" {
				c.cseq += uint32(len(r1) - 20) // the rest of r1 is lost
			} else {
				c.cseq += 20 // r1[20:40] is lost
			}
			for _, s := range tc.after {
				c.client(s)
			}
			c.wait(3 * time.Second)
			c.send(false, "A", nil)
			c.client("GET /four HTTP/1.1\r\nHost: x\r\n\r\n")
			c.close()
			asm.Close()
			var got []string
			for _, r := range sink.reqs {
				got = append(got, r.Target)
			}
			want := []string{"/two", "/three", "/four"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("requests after the hole: %q, want %q\n%s", got, want, strings.Join(sink.ev, "\n"))
			}
		})
	}
}

// Port reuse: a second connection on the same 4-tuple after FIN/FIN is a
// new connection with its own ID and events. With the last ACK of the
// first connection (as on the wire) and without it.
func TestPortReuse(t *testing.T) {
	t.Run("FIN, FIN, ACK", func(t *testing.T) { testPortReuse(t, true) })
	t.Run("FIN, FIN", func(t *testing.T) { testPortReuse(t, false) })
}

func testPortReuse(t *testing.T, lastACK bool) {
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	c.client("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	c.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if lastACK {
		c.close()
	} else {
		c.send(true, "FA", nil)
		c.send(false, "FA", nil)
	}
	c.wait(time.Second)
	c.cseq += 100000 // a new ISN
	c.sseq += 777777
	c.handshake()
	c.client("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	c.server("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno")
	c.close()
	asm.Close()
	if len(sink.ends) != 2 || len(sink.reqs) != 2 || len(sink.resps) != 2 {
		t.Fatalf("want 2 connections with 1 exchange each:\n%s", strings.Join(sink.ev, "\n"))
	}
	if lastACK && sink.resps[1].Request == nil && sink.ends[1].Gaps > 0 {
		t.Fatalf("the first connection's last ACK (after both FINs) starts a new stream mid-connection "+
			"(stream.Accept forces start on a segment without payload); the next SYN on the 4-tuple is then dropped "+
			"by gopacket as a SYN on an established half, so the new connection's client bytes sit behind a bogus "+
			"gap until flush: the response comes out before its request, unpaired. Events:\n%s", strings.Join(sink.ev, "\n"))
	}
	if sink.ends[0].ID == sink.ends[1].ID || sink.reqs[0].ID == sink.reqs[1].ID {
		t.Errorf("the two connections share an ID:\n%s", strings.Join(sink.ev, "\n"))
	}
	for i, e := range sink.ends {
		if !e.SYN || !e.SYNACK || e.Requests != 1 || e.Responses != 1 || e.Reason != reassembly.EndClosed {
			t.Errorf("end %d: %s", i, fmtEnd(e))
		}
	}
	if sink.resps[1].Request == nil || sink.resps[1].Request.Target != "/second" || sink.resps[1].Index != 0 {
		t.Errorf("second response: %s", fmtResp(sink.resps[1]))
	}
}

type countSink struct{ reqs, resps, ends int }

func (s *countSink) Request(*reassembly.Request)   { s.reqs++ }
func (s *countSink) Response(*reassembly.Response) { s.resps++ }
func (s *countSink) ConnEnd(*reassembly.ConnEnd)   { s.ends++ }

// Connections closed normally (FIN, FIN, last ACK) must not stay in
// memory: the last ACK must not start a new stream that lives until idle
// eviction (15 minutes of capture time).
func TestClosedConnectionsFreed(t *testing.T) {
	const n = 5000
	sink := &countSink{}
	asm := reassembly.New(sink, reassembly.DefaultOptions)
	before := heapInUse()
	for i := 0; i < n; i++ {
		c := newConn(asm)
		c.cip = net.IPv4(10, 1, byte(i>>8), byte(i)).To4()
		c.handshake()
		c.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.server("HTTP/1.1 204 No Content\r\n\r\n")
		c.close()
	}
	grown := int64(heapInUse()) - int64(before)
	if sink.reqs != n || sink.resps != n || sink.ends != n {
		t.Fatalf("events %d/%d/%d, want %d each", sink.reqs, sink.resps, sink.ends, n)
	}
	conns := asm.Stats().Connections
	if grown/n > 512 || conns != n {
		t.Fatalf("each normally closed connection leaves a stream behind: Stats.Connections = %d for %d connections, "+
			"heap +%d bytes per closed connection (%d KiB in all). The last ACK after both FINs reaches gopacket after it "+
			"removed the connection, so it creates a new one, which stream.Accept starts (*start = true) and which lives "+
			"until IdleAfter (15 min of capture time): memory grows with the connection rate, not the open connections",
			conns, n, grown/n, grown>>10)
	}
	asm.Close()
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A header block that never ends (1 MiB of header lines) is cut at the
// limit, reported Truncated, and costs bounded memory.
func TestEndlessHeaderBlock(t *testing.T) {
	for _, fromClient := range []bool{true, false} {
		t.Run(fmt.Sprintf("client=%v", fromClient), func(t *testing.T) {
			asm, sink := newAsm()
			c := newConn(asm)
			c.handshake()
			start := "GET /big HTTP/1.1\r\n"
			if !fromClient {
				c.client("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
				start = "HTTP/1.1 200 OK\r\n"
			}
			line := "X-Filler: " + strings.Repeat("a", 80) + "\r\n"
			seg := []byte(strings.Repeat(line, (64<<10)/len(line)))
			before := heapInUse()
			var peak uint64
			alloc := allocDuring(func() {
				c.send(fromClient, "PA", []byte(start))
				for n := 0; n < 1<<20; n += len(seg) {
					c.send(fromClient, "PA", seg)
				}
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = m.HeapAlloc
			})
			if alloc > 4<<20 {
				t.Errorf("1 MiB of header lines allocated %d bytes", alloc)
			}
			if peak > before+4<<20 {
				t.Errorf("heap grew by %d bytes", peak-before)
			}
			c.close()
			asm.Close()
			var truncated int
			for _, r := range sink.reqs {
				if r.Truncated {
					truncated++
					if len(r.Headers) > reassembly.DefaultLimits.MaxHeaders {
						t.Errorf("%d headers kept, limit %d", len(r.Headers), reassembly.DefaultLimits.MaxHeaders)
					}
				}
			}
			for _, r := range sink.resps {
				if r.Truncated {
					truncated++
					if len(r.Headers) > reassembly.DefaultLimits.MaxHeaders {
						t.Errorf("%d headers kept, limit %d", len(r.Headers), reassembly.DefaultLimits.MaxHeaders)
					}
				}
			}
			if truncated != 1 {
				t.Fatalf("%d truncated events, want 1:\n%s", truncated, strings.Join(shorten(sink.ev), "\n"))
			}
		})
	}
}

func shorten(ev []string) []string {
	out := make([]string, len(ev))
	for i, e := range ev {
		if len(e) > 300 {
			e = e[:300] + "…"
		}
		out[i] = e
	}
	return out
}

// Zero-length segments (pure ACKs, an empty PSH) change nothing.
func TestZeroLengthSegments(t *testing.T) {
	want := exchange(t, []string{wsRequest}, []string{resp400})
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	c.client("")
	c.client(wsRequest[:50])
	c.send(false, "A", nil)
	c.client("")
	c.client(wsRequest[50:])
	c.server("")
	c.server(resp400)
	c.send(true, "A", nil)
	c.close()
	asm.Close()
	sameEvents(t, "zero-length segments", sink.ev, want)
}

// A 64 KiB segment: a response with a 64 KiB body and the next response
// behind it; and 64 KiB of pipelined requests.
func TestBigSegment(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 65000/16)
	asm, sink := newAsm()
	c := newConn(asm)
	c.handshake()
	c.client("GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n")
	seg := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	seg += "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall"
	if len(seg) < 64000 || len(seg) > 65535 {
		t.Fatalf("segment of %d bytes", len(seg))
	}
	c.server(seg)
	var reqs strings.Builder
	n := 0
	for reqs.Len() < 65000 {
		fmt.Fprintf(&reqs, "GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n", n)
		n++
	}
	c.client(reqs.String())
	c.close()
	asm.Close()
	if len(sink.resps) != 2 || len(sink.resps[0].Body) != reassembly.DefaultLimits.BodyPrefix || sink.resps[1].Body != "small" {
		t.Fatalf("responses:\n%s", strings.Join(shorten(sink.ev), "\n"))
	}
	if string(sink.resps[0].Body) != string(body[:reassembly.DefaultLimits.BodyPrefix]) {
		t.Errorf("body prefix wrong")
	}
	if len(sink.reqs) != 2+n {
		t.Fatalf("%d requests, want %d", len(sink.reqs), 2+n)
	}
	if last := sink.reqs[len(sink.reqs)-1]; last.Target != fmt.Sprintf("/p%d", n-1) || last.Index != n+1 {
		t.Errorf("last request %s", fmtReq(last))
	}
}

// 10 000 connections of one SYN each: no events but connect attempts, and
// bounded memory.
func TestManySYNs(t *testing.T) {
	const n = 10000
	asm, sink := newAsm()
	before := heapInUse()
	now := t0
	for i := 0; i < n; i++ {
		c := newConn(asm)
		c.cip = net.IPv4(10, 1, byte(i>>8), byte(i)).To4()
		c.cport = uint16(1024 + i)
		c.now = now
		c.send(true, "S", nil)
		now = c.now
	}
	grown := heapInUse() - before
	if len(sink.ev) != 0 {
		t.Fatalf("%d events before the end, e.g. %s", len(sink.ev), sink.ev[0])
	}
	if per := grown / n; per > 8<<10 {
		t.Errorf("%d bytes per SYN-only connection (%d MiB for %d)", per, grown>>20, n)
	}
	t.Logf("heap grew %d KiB for %d SYNs (%d bytes each)", grown>>10, n, grown/n)
	// Idle eviction closes them (capture time moves past IdleAfter).
	c := newConn(asm)
	c.cip = net.IPv4(10, 9, 9, 9).To4()
	c.now = now.Add(reassembly.DefaultOptions.IdleAfter + time.Minute)
	c.send(true, "A", nil)
	if len(sink.ends) != n {
		t.Fatalf("%d ends after idle eviction, want %d", len(sink.ends), n)
	}
	for _, e := range sink.ends {
		if !e.SYN || e.SYNACK || e.HTTP || e.Requests != 0 || e.Reason != reassembly.EndIdle {
			t.Fatalf("end %s", fmtEnd(e))
		}
	}
	if len(sink.reqs)+len(sink.resps) != 0 {
		t.Fatalf("HTTP events from SYNs")
	}
	// The memory of evicted connections is let go: a second wave of as
	// many SYNs (other 4-tuples) does not grow the heap much past the first.
	// (The sink's copies of the ends are dropped, they are not ours.)
	sink.ends, sink.ev = nil, nil
	peak1 := before + grown
	for i := 0; i < n; i++ {
		c := newConn(asm)
		c.cip = net.IPv4(10, 2, byte(i>>8), byte(i)).To4()
		c.cport = uint16(1024 + i)
		c.now = now.Add(reassembly.DefaultOptions.IdleAfter + 2*time.Minute)
		c.send(true, "S", nil)
	}
	if peak2 := heapInUse(); peak2 > peak1+peak1/2 {
		t.Errorf("second wave of %d SYNs after eviction: heap %d, first wave %d", n, peak2, peak1)
	}
	asm.Close()
	if len(sink.ends) != n {
		t.Errorf("%d ends of the second wave, want %d", len(sink.ends), n)
	}
}

// A RST answering a SYN: a refused connect, reported at once.
func TestSYNAnsweredByRST(t *testing.T) {
	asm, sink := newAsm()
	c := newConn(asm)
	c.sport = 9009
	c.send(true, "S", nil)
	c.seg(false, 0, "RA", nil)
	if len(sink.ends) != 1 {
		t.Fatalf("want a ConnEnd right after the RST, got:\n%s", strings.Join(sink.ev, "\n"))
	}
	e := sink.ends[0]
	if !e.SYN || e.SYNACK || e.HTTP || e.ServerClose.Kind != reassembly.CloseRST || e.Reason != reassembly.EndClosed ||
		e.Client.Port() != 40000 || e.Server.Port() != 9009 {
		t.Errorf("end: %s", fmtEnd(e))
	}
	asm.Close()
	if len(sink.ev) != 1 {
		t.Errorf("events after close:\n%s", strings.Join(sink.ev, "\n"))
	}
}
