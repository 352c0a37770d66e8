package http1

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// recorder is a Handler that writes down what it is told. Body and tunnel
// bytes are joined, so that any split of the input gives the same record.
type recorder struct {
	p      *Parser
	ev     []string
	heads  []Head
	noBody bool // answer Head with noBody (the request was HEAD)
	other  *Parser
}

func (r *recorder) add(s string) { r.ev = append(r.ev, s) }

// join appends b to the last event when it has the same prefix.
func (r *recorder) join(prefix string, b []byte) {
	if n := len(r.ev); n > 0 && strings.HasPrefix(r.ev[n-1], prefix) {
		r.ev[n-1] += string(b)
		return
	}
	r.add(prefix + string(b))
}

func (r *recorder) Sniffed(_ flow.Dir, k Kind, data []byte, t time.Time) bool {
	r.add(fmt.Sprintf("sniffed %d", k))
	return false
}

func (r *recorder) Head(_ flow.Dir, h Head) bool {
	r.heads = append(r.heads, h)
	var hs []string
	for _, f := range h.Headers {
		hs = append(hs, f.Name+"="+f.Value)
	}
	if h.Response {
		r.add(fmt.Sprintf("response %s %d %q [%s] truncated=%v switches=%v", h.Version, h.Status, h.Reason, strings.Join(hs, " "), h.Truncated, h.Switches()))
		if h.Switches() && r.other != nil {
			r.other.Tunnel()
		}
	} else {
		r.add(fmt.Sprintf("request %s %s %s [%s] truncated=%v", h.Method, h.Target, h.Version, strings.Join(hs, " "), h.Truncated))
	}
	return r.noBody
}

func (r *recorder) Body(_ flow.Dir, b []byte) { r.join("body ", b) }
func (r *recorder) End(flow.Dir)              { r.add("end") }
func (r *recorder) Tunnel(_ flow.Dir, b []byte, t time.Time) {
	r.join("tunnel ", b)
}
func (r *recorder) TunnelGap(_ flow.Dir, n int) { r.add(fmt.Sprintf("tunnel gap %d", n)) }

// run feeds the pieces to a fresh parser and returns its record.
func run(lim Limits, noBody bool, pieces []string) []string {
	return record(lim, noBody, pieces).ev
}

// record feeds the pieces to a fresh parser and returns its recorder.
func record(lim Limits, noBody bool, pieces []string) *recorder {
	var p Parser
	r := &recorder{p: &p, noBody: noBody}
	p.Init(flow.Fwd, &lim)
	t := time.Unix(1700000000, 0)
	for _, s := range pieces {
		p.Feed(r, []byte(s), t)
		if p.buf != nil && len(p.buf) > max(lim.MaxHeaderBytes, 1024) {
			panic("buffer over its limit")
		}
	}
	return r
}

// splits returns the ways a message is cut for the table test: whole, byte
// by byte, and random chunks.
func splits(msg string, rng *rand.Rand) map[string][]string {
	out := map[string][]string{"whole": {msg}}
	var bytes []string
	for i := range len(msg) {
		bytes = append(bytes, msg[i:i+1])
	}
	out["byte by byte"] = bytes
	for k := range 5 {
		var ch []string
		for rest := msg; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(40))
			ch = append(ch, rest[:n])
			rest = rest[n:]
		}
		out[fmt.Sprintf("random %d", k)] = ch
	}
	return out
}

// Real messages (nginx's and the Go backend's, as in testdata/captures),
// fed whole, byte by byte and in random chunks, without an Assembler: the
// record must not depend on where the bytes were cut.
func TestParserSplitInput(t *testing.T) {
	const wsRequest = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	cases := []struct {
		name   string
		in     string
		noBody bool
		lim    Limits
		// wholeOnly: resynchronising finds a start line only after a line
		// end within the same piece of input (resyncPoint), so a record
		// after a resync depends on the cuts: a known limitation.
		wholeOnly bool
		want      []string
	}{
		{name: "upgrade request then pipelined POST", in: wsRequest + "\r\nPOST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.0\n\n",
			want: []string{"sniffed 1",
				"request GET /ws HTTP/1.1 [Host=127.0.0.1:8080 Upgrade=websocket Connection=Upgrade Sec-WebSocket-Key=dGhlIHNhbXBsZSBub25jZQ== Sec-WebSocket-Version=13] truncated=false",
				"request POST /a HTTP/1.1 [Content-Length=5] truncated=false", "body hello", "end",
				"request GET /b HTTP/1.0 [] truncated=false"}},
		{name: "101 then frames", in: "HTTP/1.1 101 Switching Protocols\r\nServer: nginx/1.22.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n" +
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05hello\x88\x02\x03\xe8",
			want: []string{"sniffed 2",
				"response HTTP/1.1 101 \"Switching Protocols\" [Server=nginx/1.22.1 Upgrade=websocket Connection=upgrade Sec-WebSocket-Accept=s3pPLMBiTxaQ9kYGzzhZRbK+xOo=] truncated=false switches=true",
				"tunnel \x81\x05hello\x88\x02\x03\xe8"}},
		{name: "chunked with trailer, 204, 400 with body", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n" +
			"HTTP/1.1 204 No Content\r\n\r\n" +
			"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\nBad Request\n",
			want: []string{"sniffed 2", "response HTTP/1.1 200 \"OK\" [Transfer-Encoding=chunked] truncated=false switches=false",
				"body hello world", "end",
				"response HTTP/1.1 204 \"No Content\" [] truncated=false switches=false", "end",
				"response HTTP/1.1 400 \"Bad Request\" [Server=nginx/1.22.1 Content-Type=text/html Content-Length=12] truncated=false switches=false",
				"body Bad Request\n", "end"}},
		{name: "204 and 304 have no body whatever their Content-Length says",
			in: "HTTP/1.1 204 No Content\r\nContent-Length: 77\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			want: []string{"sniffed 2", "response HTTP/1.1 204 \"No Content\" [Content-Length=77] truncated=false switches=false", "end",
				"response HTTP/1.1 304 \"Not Modified\" [Content-Length=1234] truncated=false switches=false", "end",
				"response HTTP/1.1 200 \"OK\" [Content-Length=2] truncated=false switches=false", "body ok", "end"}},
		{name: "answer to HEAD has no body", noBody: true, in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
			want: []string{"sniffed 2", "response HTTP/1.1 200 \"OK\" [Content-Length=99] truncated=false switches=false", "end",
				"response HTTP/1.1 304 \"Not Modified\" [] truncated=false switches=false", "end"}},
		{name: "body until close", in: "HTTP/1.0 200 OK\nConnection: close\n\nbody until close",
			want: []string{"sniffed 2", "response HTTP/1.0 200 \"OK\" [Connection=close] truncated=false switches=false", "body body until close"}},
		{name: "header block over the limit, then resync", wholeOnly: true, lim: Limits{MaxHeaderBytes: 64, MaxHeaders: 2},
			in:   "GET /big HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nX-Long: " + strings.Repeat("x", 80) + "\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
			want: []string{"sniffed 1", "request GET /big HTTP/1.1 [A=1 B=2] truncated=true", "request GET /next HTTP/1.1 [] truncated=false"}},
		{name: "neither HTTP nor TLS", in: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", want: []string{"sniffed 4"}},
		{name: "TLS not taken", in: "\x16\x03\x01\x00\x05hello", want: []string{"sniffed 3"}},
	}
	rng := rand.New(rand.NewPCG(17, 4))
	for _, c := range cases {
		lim := c.lim
		if lim.MaxHeaderBytes == 0 {
			lim = DefaultLimits
		}
		for how, pieces := range splits(c.in, rng) {
			if c.wholeOnly && how != "whole" {
				continue
			}
			got := run(lim, c.noBody, pieces)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("%s, %s:\ngot  %q\nwant %q", c.name, how, got, c.want)
			}
		}
	}
}

// A gap inside a body keeps the parser in step (End says the prefix is
// cut); a gap in a header block makes it look for the next start line,
// which may begin right where the lost bytes end.
func TestParserGap(t *testing.T) {
	var p Parser
	r := &recorder{p: &p}
	lim := DefaultLimits
	p.Init(flow.Fwd, &lim)
	t0 := time.Unix(1700000000, 0)
	p.Feed(r, []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 10\r\n\r\nab"), t0)
	p.Gap(r, 3)
	p.Feed(r, []byte("fghijHTTP/1.1 200 OK\r\nContent-"), t0)
	p.Gap(r, 7)
	p.Feed(r, []byte("HTTP/1.1 204 No Content\r\n\r\n"), t0)
	want := []string{"sniffed 2", "response HTTP/1.1 502 \"Bad Gateway\" [Content-Length=10] truncated=false switches=false",
		"body ab", "end", "body fghij", "end", "end",
		"response HTTP/1.1 204 \"No Content\" [] truncated=false switches=false", "end"}
	if strings.Join(r.ev, "\n") != strings.Join(want, "\n") {
		t.Errorf("got  %q\nwant %q", r.ev, want)
	}
	if p.Kind() != KindResponse {
		t.Errorf("kind %d", p.Kind())
	}
}

// FuzzParser feeds arbitrary bytes, cut at two points and with a gap, to a
// parser with small limits: no panic, buffers within their bounds, and no
// more heads than the bytes could hold.
func FuzzParser(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\n\r\n"), uint16(5), uint16(40), uint8(0))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffff\r\nabc\r\n0\r\n\r\n"), uint16(17), uint16(60), uint8(3))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello"), uint16(1), uint16(2), uint8(1))
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade\r\nOrig"), uint16(30), uint16(58), uint8(200))
	f.Add([]byte("HTTP/1.1 101 Switching Protoco\x81\x05hello"), uint16(30), uint16(31), uint8(130))
	f.Fuzz(func(t *testing.T, in []byte, s1, s2 uint16, gap uint8) {
		lim := Limits{MaxHeaderBytes: 256, MaxHeaders: 4}
		var p Parser
		r := &recorder{p: &p, noBody: gap&1 != 0}
		p.Init(flow.Fwd, &lim)
		n := len(in) + 1
		a, b := int(s1)%n, int(s2)%n
		if a > b {
			a, b = b, a
		}
		t0 := time.Unix(1700000000, 0)
		p.Feed(r, in[:a], t0)
		switch {
		case gap > 127: // the snap length cut the segment (Cut), not a loss
			p.Cut(r, int(gap-127))
		case gap > 0:
			p.Gap(r, int(gap))
		}
		p.Feed(r, in[a:b], t0)
		p.Feed(r, in[b:], t0)
		if len(p.buf) > max(lim.MaxHeaderBytes, 1024) {
			t.Fatalf("buffer holds %d bytes", len(p.buf))
		}
		heads := 0
		for _, e := range r.ev {
			if strings.HasPrefix(e, "request ") || strings.HasPrefix(e, "response ") {
				heads++
			}
		}
		if heads > len(in)/2+1 {
			t.Fatalf("%d heads from %d bytes", heads, len(in))
		}
	})
}

// Header names come in any case (haproxy lower-cases them, some clients
// shout): Content-Length and Transfer-Encoding frame bodies whatever their
// case, and Headers finds names and Connection tokens case-insensitively.
func TestHeaderNamesAnyCase(t *testing.T) {
	in := "GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, Upgrade\r\nsec-websocket-key: k\r\nSEC-WEBSOCKET-VERSION: 13\r\n" +
		"content-length: 3\r\n\r\nabc" +
		"POST /two HTTP/1.1\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"GET /three HTTP/1.1\r\n\r\n"
	r := record(DefaultLimits, false, []string{in})
	var targets []string
	for _, h := range r.heads {
		targets = append(targets, h.Target)
	}
	if strings.Join(targets, " ") != "/ws /two /three" {
		t.Fatalf("requests %q, want /ws /two /three (lower/upper-case content-length and transfer-encoding must frame the bodies):\n%s",
			targets, strings.Join(r.ev, "\n"))
	}
	h := r.heads[0].Headers
	if v, ok := h.Get("Upgrade"); !ok || !strings.EqualFold(v, "websocket") {
		t.Errorf("Upgrade = %q, %v", v, ok)
	}
	if !h.HasToken("Connection", "upgrade") || !h.HasToken("connection", "KEEP-ALIVE") {
		t.Errorf("Connection tokens not found in %v", h)
	}
	if v, _ := h.Get("Sec-WebSocket-Version"); v != "13" {
		t.Errorf("Sec-WebSocket-Version = %q", v)
	}
}

// The sniffer buffers the first bytes of a direction (up to 32) until it
// can tell what they are; those bytes may already hold a whole header
// block and the start of the next. Found by reassembly's FuzzHTTPStream
// (reassembly/testdata/fuzz/FuzzHTTPStream/bfa51b31b4e2f810).
func TestSniffedBytesHoldWholeBlock(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		pieces []string
		want   string
	}{
		// "G" cannot be told apart yet; the next piece completes a bare-LF
		// block and starts another: the end of the block lies inside the
		// bytes buffered while sniffing.
		{"bare LF, 1 byte after the block", []string{"G", "ET / HTTP/1.1\n\nX", "Y"}, "/"},
		{"bare LF, next request", []string{"G", "ET /1 HTTP/1.1\n\nG", "ET /2 HTTP/1.1\n\n"}, "/1 /2"},
		{"CRLF, next request", []string{"G", "ET / HTTP/1.1\r\n\r\nGET", " /2 HTTP/1.1\r\n\r\n"}, "/ /2"},
		{"whole block sniffed, no more data", []string{"G", "ET / HTTP/1.1\r\n\r\n"}, "/"},
	} {
		var r *recorder
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: %q: panic %v", tc.desc, tc.pieces, p)
				}
			}()
			r = record(DefaultLimits, false, tc.pieces)
		}()
		if r == nil {
			continue
		}
		var targets []string
		for _, h := range r.heads {
			targets = append(targets, h.Target)
		}
		if got := strings.Join(targets, " "); got != tc.want {
			t.Errorf("%s: %q: requests %q, want %q", tc.desc, tc.pieces, got, tc.want)
		}
	}
}

// An empty line before a request line (a client's stray CRLF after a body,
// which RFC 9112 section 2.2 tells servers to ignore) must not turn the
// next request into an empty one.
func TestEmptyLineBeforeRequest(t *testing.T) {
	r := record(DefaultLimits, false, []string{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab\r\n", "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"})
	var got []string
	for _, h := range r.heads {
		got = append(got, h.Method+" "+h.Target)
	}
	if strings.Join(got, ",") != "POST /a,GET /b" {
		t.Fatalf("requests %q, want [\"POST /a\" \"GET /b\"]\n%s", got, strings.Join(r.ev, "\n"))
	}
}

// Every connection holds two Parsers: keep them small (an idle upgraded
// connection is to cost at most 2 KiB in all).
func TestParserSize(t *testing.T) {
	if n := unsafe.Sizeof(Parser{}); n > 72 {
		t.Errorf("Parser is %d bytes, more than 72", n)
	}
}
