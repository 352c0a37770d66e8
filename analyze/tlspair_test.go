package analyze

import (
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// tlsLegAt feeds an opaque TLS connection from client to the proxy that
// starts at 0 and ends at end, with the given records.
func (f *feeder) tlsLegAt(client, proxy string, end time.Duration, recs ...reassembly.TLSRecord) {
	f.conn++
	c := reassembly.Conn{ID: f.conn, Client: ap(client), Server: ap(proxy)}
	f.a.TLSStart(&reassembly.TLSStart{Conn: c, Time: t0})
	f.a.ConnEnd(&reassembly.ConnEnd{Conn: c, First: t0, Last: t0.Add(end), TLS: true, Reason: reassembly.EndClosed,
		TLSInfo: &reassembly.TLSInfo{ClientHello: true, ServerHello: true, HandshakeDone: true, Version: 0x0304, AppRecords: recs}})
}

func rec(at time.Duration, n int, fromClient bool) reassembly.TLSRecord {
	return reassembly.TLSRecord{At: t0.Add(at), Len: n, FromClient: fromClient}
}

// The client record nearest to an upstream request is not its client when
// X-Forwarded-For names another: the forwarding header is never
// contradicted, and the other request still gets a leg (one-to-one).
func TestTLSPairingFollowsXFF(t *testing.T) {
	f := newFeeder(DefaultOptions)
	ms := time.Millisecond
	// .11 sent its request at 1 ms, .12 at 4.9 ms; the proxy answered each
	// 1 ms after the backend.
	f.tlsLegAt("10.0.0.11:5000", "10.0.0.1:443", 20*ms, rec(1*ms, 240, true), rec(7*ms, 261, false))
	f.tlsLegAt("10.0.0.12:5000", "10.0.0.1:443", 20*ms, rec(4900*time.Microsecond, 240, true), rec(10*ms, 261, false))
	dropped := func(extra ...reassembly.Header) reassembly.Headers {
		return append(reassembly.Headers{{Name: "Host", Value: "app"}, {Name: "Connection", Value: "close"}, {Name: "Sec-WebSocket-Key", Value: key1}, {Name: "Sec-WebSocket-Version", Value: "13"}}, extra...)
	}
	_, u1 := f.exchange("10.0.0.1:40000", "10.0.0.2:9000", 5*ms, 1*ms, dropped(reassembly.Header{Name: "X-Forwarded-For", Value: "10.0.0.11"}), "GET /ws HTTP/1.0", 400, nil)
	_, u2 := f.exchange("10.0.0.1:40001", "10.0.0.2:9000", 8*ms, 1*ms, dropped(), "GET /ws HTTP/1.0", 400, nil)
	u1()
	u2()
	f.a.Finish()
	if len(f.vs) != 2 {
		t.Fatalf("%d verdicts, want 2", len(f.vs))
	}
	got := map[string]Confidence{}
	for _, v := range f.vs {
		if v.Code != UpgradeHeaderDropped {
			t.Errorf("%s: code %s", v.Client, v.Code)
		}
		got[v.Client.String()+" "+v.Backend.String()] = v.PairConfidence
	}
	if c, ok := got["10.0.0.11:5000 10.0.0.2:9000"]; !ok || c != ConfHigh {
		t.Errorf("X-Forwarded-For 10.0.0.11: pairings %v, want 10.0.0.11:5000 with high confidence", got)
	}
	if _, ok := got["10.0.0.12:5000 10.0.0.2:9000"]; !ok {
		t.Errorf("the request without X-Forwarded-For is left unpaired: %v", got)
	}
}

// Forwarded (RFC 7239) counts like X-Forwarded-For.
func TestForwardedAddrsAll(t *testing.T) {
	h := reassembly.Headers{{Name: "Forwarded", Value: `for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"`}, {Name: "X-Real-IP", Value: "10.1.1.1"}}
	got := forwardedAddrsAll(h)
	want := []string{"10.1.1.1", "192.0.2.60", "2001:db8::1"}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%v, want %v", got, want)
		}
	}
}

// Deciding as capture time passes (Decide) pairs as Finish does: each
// attempt once, committed two Graces after it settled.
func TestTLSPairingStepwise(t *testing.T) {
	f := newFeeder(Options{Grace: 10 * time.Millisecond, WaitSession: true, MaxPending: 1000})
	ms := time.Millisecond
	f.tlsLegAt("10.0.0.11:5000", "10.0.0.1:443", 20*ms, rec(1*ms, 240, true), rec(7*ms, 261, false))
	f.tlsLegAt("10.0.0.12:5000", "10.0.0.1:443", 20*ms, rec(4900*time.Microsecond, 240, true), rec(10*ms, 261, false))
	dropped := reassembly.Headers{{Name: "Host", Value: "app"}, {Name: "Connection", Value: "close"}, {Name: "Sec-WebSocket-Key", Value: key1}, {Name: "Sec-WebSocket-Version", Value: "13"}}
	_, u1 := f.exchange("10.0.0.1:40000", "10.0.0.2:9000", 5*ms, 1*ms, append(dropped, reassembly.Header{Name: "X-Forwarded-For", Value: "10.0.0.11"}), "GET /ws HTTP/1.0", 400, nil)
	_, u2 := f.exchange("10.0.0.1:40001", "10.0.0.2:9000", 8*ms, 1*ms, dropped, "GET /ws HTTP/1.0", 400, nil)
	u1()
	u2()
	for _, now := range []time.Duration{12, 18, 25, 27, 40} {
		f.a.Decide(t0.Add(now * ms))
		if now < 26 && len(f.vs) > 0 {
			t.Fatalf("at %d ms: %d verdicts before two Graces passed", now, len(f.vs))
		}
	}
	if len(f.vs) != 2 {
		t.Fatalf("%d verdicts, want 2", len(f.vs))
	}
	f.a.Finish()
	if len(f.vs) != 2 || f.vs[0].Client != ap("10.0.0.11:5000") || f.vs[1].Client != ap("10.0.0.12:5000") {
		t.Fatalf("verdicts %d: %v %v", len(f.vs), f.vs[0].Client, f.vs[len(f.vs)-1].Client)
	}
}

// A TLS leg that stays open (keep-alive after a 400, a long session) is
// paired by the records reassembly reported so far (TLSRecords), not only
// at its end.
func TestTLSPairingOpenLeg(t *testing.T) {
	f := newFeeder(DefaultOptions)
	ms := time.Millisecond
	open := func(client string, start time.Duration, recs ...reassembly.TLSRecord) {
		f.conn++
		c := reassembly.Conn{ID: f.conn, Client: ap(client), Server: ap("10.0.0.1:443")}
		f.a.TLSStart(&reassembly.TLSStart{Conn: c, Time: t0.Add(start)})
		for i := range recs {
			f.a.TLSRecords(&reassembly.TLSRecords{Conn: c, Records: recs[:i+1], Version: 0x0304, Cipher: 0x1301})
		}
	}
	// .12 started first and sent its request at 4.9 ms, just before the
	// first upstream connection opened; .11 sent its own at 1 ms. Without
	// the records the two pairings cost the same.
	open("10.0.0.12:5000", 0, rec(4900*time.Microsecond, 240, true), rec(6500*time.Microsecond, 261, false))
	open("10.0.0.11:5000", ms/2, rec(1*ms, 240, true), rec(9200*time.Microsecond, 261, false))
	dropped := reassembly.Headers{{Name: "Host", Value: "app"}, {Name: "Connection", Value: "close"}, {Name: "Sec-WebSocket-Key", Value: key1}, {Name: "Sec-WebSocket-Version", Value: "13"}}
	_, u1 := f.exchange("10.0.0.1:40000", "10.0.0.2:9000", 5*ms, 1*ms, dropped, "GET /ws HTTP/1.0", 400, nil)
	_, u2 := f.exchange("10.0.0.1:40001", "10.0.0.2:9000", 8*ms, 1*ms, dropped, "GET /ws HTTP/1.0", 400, nil)
	u1()
	u2()
	f.a.Finish()
	if len(f.vs) != 2 || f.vs[0].Client != ap("10.0.0.12:5000") || f.vs[1].Client != ap("10.0.0.11:5000") {
		for _, v := range f.vs {
			t.Logf("%s at %s: %s", v.Client, v.Time.Sub(t0), v.PairConfidence)
		}
		t.Fatalf("%d verdicts; want the request at 5 ms from 10.0.0.12, the one at 8 ms from 10.0.0.11", len(f.vs))
	}
}
