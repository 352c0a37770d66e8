package analyze

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// These tests feed the analyzer events directly: the shapes come from the
// real captures in testdata (nginx forwards the key, rewrites Host, sends
// HTTP/1.0 by default), recombined into situations no capture holds yet.

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

type feeder struct {
	a    *Analyzer
	vs   []*Verdict
	conn reassembly.ConnID
}

func newFeeder(opt Options) *feeder {
	f := &feeder{}
	f.a = New(opt, func(v *Verdict) { f.vs = append(f.vs, v) })
	return f
}

// exchange emits one request/response on a new connection and its end.
func (f *feeder) exchange(client, server string, at time.Duration, took time.Duration, req reassembly.Headers, line string, status int, resp reassembly.Headers) (*reassembly.Request, func()) {
	f.conn++
	c := reassembly.Conn{ID: f.conn, Client: ap(client), Server: ap(server)}
	var method, target, version string
	fmt.Sscanf(line, "%s %s %s", &method, &target, &version)
	r := &reassembly.Request{Conn: c, Method: method, Target: target, Version: version, Headers: req, Start: t0.Add(at), End: t0.Add(at)}
	f.a.Request(r)
	answer := func() {
		if status != 0 {
			f.a.Response(&reassembly.Response{Conn: c, Version: "HTTP/1.1", Status: status, Headers: resp, Start: t0.Add(at + took), End: t0.Add(at + took), Request: r})
		}
		f.a.ConnEnd(&reassembly.ConnEnd{Conn: c, First: t0.Add(at), Last: t0.Add(at + took), HTTP: true, Reason: reassembly.EndClosed,
			ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: t0.Add(at + took)}, ServerClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: t0.Add(at + took)}})
	}
	return r, answer
}

func wsReq(key, host string, extra ...reassembly.Header) reassembly.Headers {
	h := reassembly.Headers{{Name: "Host", Value: host}, {Name: "Upgrade", Value: "websocket"}, {Name: "Connection", Value: "Upgrade"},
		{Name: "Sec-WebSocket-Key", Value: key}, {Name: "Sec-WebSocket-Version", Value: "13"}}
	return append(h, extra...)
}

func accept(key string) reassembly.Headers {
	return reassembly.Headers{{Name: "Upgrade", Value: "websocket"}, {Name: "Connection", Value: "Upgrade"}, {Name: "Sec-WebSocket-Accept", Value: AcceptFor(key)}}
}

const key1 = "dGhlIHNhbXBsZSBub25jZQ=="

// A chain client → haproxy:80 → nginx:8081 → backend:9001 in which nginx
// (the second proxy) drops Upgrade: the verdict blames nginx's address.
func TestChainBlamesTheBreakingHop(t *testing.T) {
	f := newFeeder(DefaultOptions)
	_, a := f.exchange("10.0.0.5:50000", "127.0.0.1:80", 0, 30*time.Millisecond, wsReq(key1, "example.org"), "GET /ws HTTP/1.1", 400, nil)
	_, b := f.exchange("127.0.0.1:40000", "127.0.0.1:8081", 2*time.Millisecond, 20*time.Millisecond,
		wsReq(key1, "example.org", reassembly.Header{Name: "X-Forwarded-For", Value: "10.0.0.5"}), "GET /ws HTTP/1.1", 400, nil)
	_, c := f.exchange("127.0.0.1:40001", "127.0.0.1:9001", 4*time.Millisecond, 10*time.Millisecond,
		reassembly.Headers{{Name: "Host", Value: "backend"}, {Name: "Connection", Value: "close"}, {Name: "Sec-WebSocket-Key", Value: key1}, {Name: "Sec-WebSocket-Version", Value: "13"}},
		"GET /ws HTTP/1.0", 400, nil)
	c()
	b()
	a()
	f.a.Finish()
	if len(f.vs) != 1 {
		t.Fatalf("%d verdicts, want 1", len(f.vs))
	}
	v := f.vs[0]
	if v.Code != UpgradeHeaderDropped || v.Hop != HopProxy {
		t.Fatalf("code %s hop %s", v.Code, v.Hop)
	}
	if v.Proxy != ap("127.0.0.1:8081") {
		t.Errorf("blamed proxy %v, want the second hop 127.0.0.1:8081", v.Proxy)
	}
	if len(v.Legs) != 3 || v.Backend != ap("127.0.0.1:9001") || v.PairConfidence != ConfExact {
		t.Errorf("legs %d backend %v conf %s", len(v.Legs), v.Backend, v.PairConfidence)
	}
	if !containsPrefix(v.Evidence, "proxy1→proxy2: Upgrade: websocket") || !containsPrefix(v.Evidence, "proxy2→backend: no Upgrade header") {
		t.Errorf("evidence names the wrong legs:\n%v", v.Evidence)
	}
}

// Twenty clients through one proxy at once, and a proxy that strips the
// key too, and sends the upstream requests in reverse order: pairing falls
// back on X-Forwarded-For (time order alone would pair them wrong), and no leg A
// is ever taken for another client's upstream leg.
func TestFallbackPairingConcurrent(t *testing.T) {
	f := newFeeder(DefaultOptions)
	var answers []func()
	for i := 0; i < 20; i++ {
		client := fmt.Sprintf("10.0.0.%d:5000%d", i+1, i%10)
		req := wsReq(fmt.Sprintf("AAAAAAAAAAAAAAAAAAAA%02d==", i), "example.org", reassembly.Header{Name: "User-Agent", Value: "browser"})
		_, a := f.exchange(client, "192.0.2.1:80", time.Duration(i)*time.Millisecond, 50*time.Millisecond, req, "GET /ws HTTP/1.1", 400, nil)
		up := reassembly.Headers{{Name: "Host", Value: "backend"}, {Name: "X-Forwarded-For", Value: fmt.Sprintf("10.0.0.%d", i+1)}, {Name: "User-Agent", Value: "browser"}}
		_, b := f.exchange(fmt.Sprintf("127.0.0.1:4%04d", i), "127.0.0.1:9001", 20*time.Millisecond+time.Duration(19-i)*100*time.Microsecond, 10*time.Millisecond, up, "GET /ws HTTP/1.0", 400, nil)
		answers = append(answers, b, a)
	}
	for _, fn := range answers {
		fn()
	}
	f.a.Finish()
	if len(f.vs) != 20 {
		t.Fatalf("%d verdicts, want 20", len(f.vs))
	}
	for _, v := range f.vs {
		if v.Code != UpgradeHeaderDropped || len(v.Legs) != 2 || !hasFinding(v, WSHeaderAltered) {
			t.Errorf("%v: code %s, %d legs", v.Client, v.Code, len(v.Legs))
			continue
		}
		want := v.Client.Addr().String()
		if got, _ := upstreamXFF(v); got != want {
			t.Errorf("client %v paired with the upstream leg of %s", v.Client, got)
		}
		if v.PairConfidence != ConfHigh {
			t.Errorf("confidence %s, want high (path, XFF, UA)", v.PairConfidence)
		}
	}
}

// upstreamXFF recovers which client's upstream leg a verdict was paired
// with, from the evidence-free leg list: the test encodes the client in
// the upstream port.
func upstreamXFF(v *Verdict) (string, bool) {
	var i int
	fmt.Sscanf(v.Legs[1].Client.String(), "127.0.0.1:4%04d", &i)
	return fmt.Sprintf("10.0.0.%d", i+1), true
}

// Live capture decides as time passes: the upstream leg settles first
// (its answer precedes the client's) and must wait for the client leg
// that claims it rather than be judged as an attempt of its own.
func TestDecideWaitsForClientLeg(t *testing.T) {
	opt := DefaultOptions
	opt.Grace = time.Second
	f := newFeeder(opt)
	_, a := f.exchange("10.0.0.5:50000", "192.0.2.1:80", 0, 3*time.Second, wsReq(key1, "example.org"), "GET /ws HTTP/1.1", 101, accept(key1))
	_, b := f.exchange("127.0.0.1:40000", "127.0.0.1:9001", time.Millisecond, time.Millisecond, wsReq(key1, "backend"), "GET /ws HTTP/1.1", 101, accept(key1))
	b()
	f.a.Decide(t0.Add(2 * time.Second)) // leg B settled 2 s ago; leg A not yet answered
	if len(f.vs) != 0 {
		t.Fatalf("decided %s before the client leg settled", f.vs[0].Code)
	}
	a()
	f.a.Decide(t0.Add(3*time.Second + 500*time.Millisecond)) // within grace
	if len(f.vs) != 0 {
		t.Fatal("decided within the grace window")
	}
	f.a.Decide(t0.Add(5 * time.Second))
	if len(f.vs) != 1 || f.vs[0].Code != OK || len(f.vs[0].Legs) != 2 {
		t.Fatalf("verdicts %+v", f.vs)
	}
	if n := len(f.a.xs); n != 0 {
		t.Errorf("%d exchanges still held after deciding", n)
	}
}

// A keep-alive pool: one upstream connection carries the upstream legs of
// several clients' attempts; each pairs with its own client by key.
func TestUpstreamKeepAlivePool(t *testing.T) {
	f := newFeeder(DefaultOptions)
	keys := []string{"AAAAAAAAAAAAAAAAAAAAAA==", "BBBBBBBBBBBBBBBBBBBBBB==", "CCCCCCCCCCCCCCCCCCCCCC=="}
	pool := reassembly.Conn{ID: 999, Client: ap("127.0.0.1:45000"), Server: ap("127.0.0.1:9001")}
	for i, k := range keys {
		at := time.Duration(i) * 10 * time.Millisecond
		_, a := f.exchange(fmt.Sprintf("10.0.0.%d:5000", i+1), "192.0.2.1:80", at, 5*time.Millisecond, wsReq(k, "example.org"), "GET /ws HTTP/1.1", 400, nil)
		r := &reassembly.Request{Conn: pool, Index: i, Method: "GET", Target: "/ws", Version: "HTTP/1.1",
			Headers: reassembly.Headers{{Name: "Host", Value: "backend"}, {Name: "Upgrade", Value: "websocket"}, {Name: "Sec-WebSocket-Key", Value: k}, {Name: "Sec-WebSocket-Version", Value: "13"}},
			Start:   t0.Add(at + time.Millisecond), End: t0.Add(at + time.Millisecond)}
		f.a.Request(r)
		f.a.Response(&reassembly.Response{Conn: pool, Index: i, Version: "HTTP/1.1", Status: 400, Start: t0.Add(at + 2*time.Millisecond), End: t0.Add(at + 2*time.Millisecond), Request: r})
		a()
	}
	f.a.Finish()
	if len(f.vs) != 3 {
		t.Fatalf("%d verdicts", len(f.vs))
	}
	for _, v := range f.vs {
		if v.Code != ConnectionNotUpgrade || v.PairConfidence != ConfExact {
			t.Errorf("%v: %s (%s)", v.Client, v.Code, v.PairConfidence)
		}
	}
}

func TestAcceptFor(t *testing.T) {
	// RFC 6455 §1.3's example
	if got := AcceptFor("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptFor = %s", got)
	}
}

func hasFinding(v *Verdict, c Code) bool {
	for _, f := range v.Findings {
		if f == c {
			return true
		}
	}
	return false
}

// TestHostileTimestampsStayBounded: keyless requests whose answers lie up
// to an hour from them (a crafted capture) make every pending exchange a
// pairing candidate of every other; deciding must stay bounded instead of
// going quadratic per decision. A hang guard, with a generous deadline.
func TestHostileTimestampsStayBounded(t *testing.T) {
	n := 30000
	if testing.Short() {
		n = 5000
	}
	done := make(chan int)
	go func() {
		f := newFeeder(DefaultOptions)
		var answers []func()
		for i := 0; i < n; i++ {
			at := time.Duration(i) * time.Millisecond
			took := time.Duration((i*7919)%3600) * time.Second // answers scattered over an hour
			server := "192.0.2.1:80"
			if i%2 == 1 {
				server = "192.0.2.2:9001"
			}
			_, a := f.exchange(fmt.Sprintf("10.0.%d.%d:1000", i/250%250, i%250), server, at, took,
				reassembly.Headers{{Name: "Host", Value: "h"}, {Name: "User-Agent", Value: "same"}}, "GET /same HTTP/1.1", 200, nil)
			answers = append(answers, a)
			if i%1000 == 999 {
				for _, fn := range answers {
					fn()
				}
				answers = answers[:0]
				f.a.Decide(t0.Add(at))
			}
		}
		f.a.Finish()
		done <- len(f.vs)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deciding 30 000 exchanges with hostile time stamps took over a minute")
	}
}
