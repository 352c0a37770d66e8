package analyze

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Rule cases of the codes that look across connections or name a
// refusal's cause. The state other connections would have left is seeded
// into the analyzer by the chain func; the goldens on the crossconn
// captures (cmd/wsdiag) show the rules on real traffic.

var proxyAddr = netip.MustParseAddrPort("192.0.2.1:80")

func crossCases() []ruleCase {
	ws := wsReq(key1, "example.org")
	nginx := reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}}
	busy := dir(50, 9.9, 0, 0) // frames until just before the cut at 10 s
	quiet := dir(2, 5, 0, 0)   // silent from 5 s on
	frontCut := ends(reassembly.SideClient, reassembly.CloseRST, at(10))
	proxyAfter := ends(reassembly.SideClient, reassembly.CloseFIN, at(10.0002)) // the proxy closes its upstream leg after the cut
	return []ruleCase{
		{
			name:     "cut in front after 5 s of silence",
			by:       "cut in front of the proxy",
			chain:    upgradedChain(quiet, quiet, quiet, quiet, frontCut, proxyAfter),
			code:     FrontIdleTimeout,
			hop:      HopFront,
			findings: []Code{FrontIdleTimeout, AbnormalClose},
			evidence: []string{"no frame in either direction for 5.00s", "the client side (10.0.0.5:50000: what is in front of the proxy) reset it (RST)"},
			fix:      "every 2.5 s or less",
		},
		{
			name: "busy tunnel cut at the age of another",
			by:   "cut in front of the proxy",
			chain: func(a *Analyzer) []*exchange {
				a.cross.addCut(cut{proxy: proxyAddr, at: at(30), age: 10020 * ms})
				return upgradedChain(busy, busy, busy, busy, frontCut, proxyAfter)(a)
			},
			code:     LifetimeLimit,
			hop:      HopFront,
			findings: []Code{LifetimeLimit, AbnormalClose},
			evidence: []string{"cut at 10.00s of age", "1 other tunnel(s) through 192.0.2.1:80 were cut at the same age (10.02s)"},
			fix:      "10 s of age",
		},
		{
			name: "busy tunnel cut alone: no lifetime",
			by:   "abnormal close",
			chain: func(a *Analyzer) []*exchange {
				a.cross.addCut(cut{proxy: proxyAddr, at: at(30), age: 20 * time.Second})
				return upgradedChain(busy, busy, busy, busy, frontCut, proxyAfter)(a)
			},
			code: AbnormalClose, hop: HopSession,
		},
		{
			name: "the proxy closed it with five others",
			by:   "mass close",
			chain: func(a *Analyzer) []*exchange {
				a.cross.events = append(a.cross.events, &Event{Time: at(9.9999), Window: ms, Count: 6, Code: MassClose,
					Server: proxyAddr, ClosedBy: "proxy", Cause: "the proxy ended every tunnel at once", Fix: "reconnect with backoff"})
				return upgradedChain(busy, busy, busy, busy, ends(reassembly.SideServer, reassembly.CloseFIN, at(10)), ends(reassembly.SideClient, reassembly.CloseFIN, at(10)))(a)
			},
			code:     MassClose,
			hop:      HopSession,
			findings: []Code{MassClose, AbnormalClose},
			evidence: []string{"one of 6 it closed within 1.0ms: see the mass_close event at 12:00:09.999 (192.0.2.1:80)"},
			fix:      "reconnect with backoff",
		},
		{
			name: "socket.io upgrade sent to the backend that did not hand out its sid",
			by:   "why the backend refused",
			chain: func(a *Analyzer) []*exchange {
				a.cross.recordSID("s1d", netip.MustParseAddrPort("127.0.0.1:9002"))
				a.cross.recordSID("s1d", proxyAddr) // the proxy relayed the handshake
				const target = "GET /socket.io/?EIO=4&transport=websocket&sid=s1d HTTP/1.1"
				A := legX(0, "10.0.0.5:50000", proxyAddr.String(), target, ws, 400, nginx)
				L := withBody(upLeg(target, ws, 400, nil), `{"code":1,"message":"Session ID unknown"}`)
				return []*exchange{A, L}
			},
			code:     StickySessionMissing,
			hop:      HopProxy,
			findings: []Code{StickySessionMissing, BackendRejected},
			evidence: []string{"session sid=s1d was handed out by 127.0.0.1:9002", "the upgrade went to 127.0.0.1:9001", "Session ID unknown"},
			fix:      "ip_hash",
		},
		{
			name: "socket.io tunnel ended while another backend refused its polls",
			by:   "sticky session, tunnel",
			chain: func(a *Analyzer) []*exchange {
				a.cross.recordRefusal(&reassembly.Response{Conn: reassembly.Conn{Server: netip.MustParseAddrPort("127.0.0.1:9002")}, Version: "HTTP/1.1", Status: 400,
					Reason: "Bad Request", Body: `{"code":1,"message":"Session ID unknown"}`, Start: at(5), Request: &reassembly.Request{Target: "/socket.io/?EIO=4&transport=polling&sid=s1d"}})
				const target = "GET /socket.io/?EIO=4&transport=websocket&sid=s1d HTTP/1.1"
				A := legX(0, "10.0.0.5:50000", proxyAddr.String(), target, ws, 101, accept(key1))
				L := legX(1, "127.0.0.1:40000", "127.0.0.1:9001", target, ws, 101, accept(key1))
				flowing := dir(5, 8.9, 0, 0)
				return []*exchange{session(closed(A, reassembly.SideServer, reassembly.CloseFIN, at(9)), flowing, flowing),
					session(closed(L, reassembly.SideClient, reassembly.CloseFIN, at(9)), flowing, flowing)}
			},
			code:     StickySessionMissing,
			hop:      HopProxy,
			findings: []Code{StickySessionMissing, AbnormalClose},
			evidence: []string{"session sid=s1d reached 127.0.0.1:9001 for this upgrade, but its other requests went to 127.0.0.1:9002, which refused them at 12:00:05.000"},
			fix:      "sticky sessions",
		},
		{
			name: "new connection closed while the tunnels sit at their most",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				for i := range 4 {
					a.cross.tunnelOpened(&reassembly.Response{Conn: reassembly.Conn{ID: reassembly.ConnID(100 + i), Server: proxyAddr}, Status: 101, End: at(-1)})
				}
				return []*exchange{closed(clientLeg(ws, 0, nil), reassembly.SideServer, reassembly.CloseFIN, at(0.001))}
			},
			code:     ProxyAtCapacity,
			hop:      HopProxy,
			evidence: []string{"192.0.2.1:80 had 4 WebSocket tunnels open then, the most at once"},
			fix:      "worker_connections",
			errorLog: "worker_connections are not enough",
		},
		{
			name: "the proxy's own 503 while the tunnels sit at their most",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				for i := range 3 {
					a.cross.tunnelOpened(&reassembly.Response{Conn: reassembly.Conn{ID: reassembly.ConnID(100 + i), Server: proxyAddr}, Status: 101, End: at(-1)})
				}
				page := strings.ReplaceAll(nginxPage, "502 Bad Gateway", "503 Service Temporarily Unavailable")
				return []*exchange{withBody(clientLeg(ws, 503, nginx), page)}
			},
			code:     ProxyAtCapacity,
			hop:      HopProxy,
			evidence: []string{"proxy→client: HTTP/1.1 503", "192.0.2.1:80 had 3 WebSocket tunnels open then"},
			fix:      "worker_rlimit_nofile",
		},
		{
			name: "fewer tunnels than before: no capacity",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				for i := range 5 {
					a.cross.tunnelOpened(&reassembly.Response{Conn: reassembly.Conn{ID: reassembly.ConnID(100 + i), Server: proxyAddr}, Status: 101, End: at(-1)})
				}
				a.cross.tunnelClosed(&reassembly.ConnEnd{Conn: reassembly.Conn{ID: 104}, ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: at(-0.5)}})
				return []*exchange{closed(clientLeg(ws, 0, nil), reassembly.SideServer, reassembly.CloseFIN, at(0.001))}
			},
			code: ProxyRejected, hop: HopProxy,
		},
		{
			name: "nginx refuses a big Cookie itself",
			by:   "one leg: who answered",
			chain: func(*Analyzer) []*exchange {
				page := strings.ReplaceAll(nginxPage, "<title>502 Bad Gateway</title>", "<title>400 Request Header Or Cookie Too Large</title>")
				return []*exchange{withBody(clientLeg(with(ws, "Cookie", strings.Repeat("x", 1500)), 400, nginx), page)}
			},
			code:     HeadersTooLarge,
			hop:      HopProxy,
			evidence: []string{"(the nginx/1.22.1 error page: generated by the proxy) \"400 Request Header Or Cookie Too Large\"", "Cookie 1500 bytes; no upstream request"},
			fix:      "large_client_header_buffers",
		},
		{
			name: "the backend answers 431",
			by:   "why the backend refused",
			chain: func(*Analyzer) []*exchange {
				big := with(ws, "Cookie", strings.Repeat("x", 6000))
				return []*exchange{clientLeg(big, 431, nginx), upLeg("GET /ws HTTP/1.1", big, 431, nil)}
			},
			code:     HeadersTooLarge,
			hop:      HopBackend,
			findings: []Code{HeadersTooLarge, BackendRejected},
			evidence: []string{"backend→proxy: HTTP/1.1 431", "proxy→backend: header block", "Cookie 6000 bytes"},
			fix:      "MaxHeaderBytes",
		},
		{
			name: "Host $host drops the port the Origin has",
			by:   "why the backend refused",
			chain: func(*Analyzer) []*exchange {
				a := with(with(ws, "Host", "example.org:8080"), "Origin", "http://example.org:8080")
				b := with(a, "Host", "example.org")
				return []*exchange{clientLeg(a, 403, nginx), upLeg("GET /ws HTTP/1.1", b, 403, nil)}
			},
			code:     OriginMismatch,
			hop:      HopProxy,
			findings: []Code{OriginMismatch, HostRewritten, BackendRejected},
			evidence: []string{"Origin: http://example.org:8080, Host: example.org", "the proxy dropped the port from Host"},
			fix:      "proxy_set_header Host $http_host",
		},
		{
			name: "a cross-origin page",
			by:   "why the backend refused",
			chain: func(*Analyzer) []*exchange {
				a := with(ws, "Origin", "https://other.example")
				return []*exchange{clientLeg(a, 403, nginx), upLeg("GET /ws HTTP/1.1", a, 403, nil)}
			},
			code:     OriginMismatch,
			hop:      HopBackend,
			findings: []Code{OriginMismatch, BackendRejected},
			evidence: []string{"the client's own Host differs from its Origin"},
			fix:      "allowed-origins",
		},
		{
			name: "Home Assistant refuses the proxy",
			by:   "why the backend refused",
			chain: func(*Analyzer) []*exchange {
				b := with(ws, "X-Forwarded-For", "10.0.0.5")
				return []*exchange{clientLeg(ws, 400, nginx), withBody(upLeg("GET /ws HTTP/1.1", b, 400, nil),
					"400: Bad Request\n\nA request from a reverse proxy was received from 127.0.0.1, but your HTTP integration is not set-up for reverse proxies")}
			},
			code:     UntrustedProxy,
			hop:      HopBackend,
			findings: []Code{UntrustedProxy, BackendRejected},
			evidence: []string{"X-Forwarded-For: 10.0.0.5, from 127.0.0.1 (the proxy as the backend sees it)", "your HTTP integration is not set-up"},
			fix:      "trusted_proxies",
		},
		{
			name: "Firefox's Connection list forwarded as is",
			by:   "backend refused the upgrade",
			chain: func(*Analyzer) []*exchange {
				ff := with(ws, "Connection", "keep-alive, Upgrade")
				return []*exchange{clientLeg(ff, 400, nginx), upLeg("GET /ws HTTP/1.1", ff, 400, nil)}
			},
			code:     BackendRejected,
			hop:      HopBackend,
			evidence: []string{"proxy→backend: Connection: keep-alive, Upgrade: a token list", "client→proxy had the same"},
			fix:      "proxy_set_header Connection $connection_upgrade",
		},
	}
}

func TestCrossRules(t *testing.T) { runRuleCases(t, crossCases()) }

// A burst of closes by one server becomes one event, as soon as the burst
// is over; idle timeouts of tunnels opened together do not.
func TestMassCloseEvent(t *testing.T) {
	for _, c := range []struct {
		name   string
		idle   []float64 // silence before each close, s
		events int
	}{
		{"busy tunnels", []float64{0.1, 0.2, 0.05, 0.3}, 1},
		{"idle timeouts of tunnels opened together", []float64{5, 5, 5, 5}, 0},
		{"too few", []float64{0.1, 0.1}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var evs []*Event
			opt := DefaultOptions
			opt.Events = func(e *Event) { evs = append(evs, e) }
			a := New(opt, func(*Verdict) {})
			for i, idle := range c.idle {
				close := at(10).Add(time.Duration(i) * 100 * time.Microsecond)
				last := close.Add(-time.Duration(idle * float64(time.Second)))
				a.ConnEnd(&reassembly.ConnEnd{Conn: reassembly.Conn{ID: reassembly.ConnID(i + 1), Client: netip.MustParseAddrPort(fmt.Sprintf("10.0.0.5:%d", 5000+i)), Server: proxyAddr},
					First: at(0), Last: close, Upgraded: true, Reason: reassembly.EndClosed, WS: &reassembly.WSSession{C2S: reassembly.WSDir{Last: last}, S2C: reassembly.WSDir{Last: last}},
					ServerClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: close}, ServerFIN: close, ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: close.Add(ms)}})
			}
			a.Decide(at(10.1))
			if len(evs) != 0 {
				t.Fatalf("event before the burst was over: %+v", evs[0])
			}
			a.Decide(at(12))
			if len(evs) != c.events {
				t.Fatalf("%d events, want %d", len(evs), c.events)
			}
			if c.events == 1 {
				e := evs[0]
				if e.Count != len(c.idle) || e.Server != proxyAddr || e.Window != 300*time.Microsecond || e.Code != MassClose || e.ClosedBy != "server" {
					t.Errorf("event %+v", e)
				}
			}
		})
	}
}

// The state across connections stays within its caps however many
// tunnels, session ids and cuts go by.
func TestCrossStateBounded(t *testing.T) {
	c := newCrossState()
	for i := range 3 * maxSessionIDs {
		c.recordSID(fmt.Sprintf("sid%d", i), proxyAddr)
	}
	for i := range 3 * maxTunnels {
		c.tunnelOpened(&reassembly.Response{Conn: reassembly.Conn{ID: reassembly.ConnID(i), Server: proxyAddr}, Status: 101, End: at(float64(i))})
	}
	for i := range 3 * maxCuts {
		c.addCut(cut{proxy: proxyAddr, at: at(float64(i)), age: time.Duration(i)})
	}
	switch {
	case len(c.sids) != maxSessionIDs || len(c.sidOrder) != maxSessionIDs:
		t.Errorf("%d session ids kept, cap %d", len(c.sids), maxSessionIDs)
	case len(c.ring) != maxTunnels || len(c.upgraded) != maxTunnels:
		t.Errorf("%d tunnels (%d indexed) kept, cap %d", len(c.ring), len(c.upgraded), maxTunnels)
	case len(c.cuts) != maxCuts:
		t.Errorf("%d cuts kept, cap %d", len(c.cuts), maxCuts)
	}
	if _, ok := c.issuer("sid0", netip.AddrPort{}, netip.AddrPort{}); ok {
		t.Error("the oldest session id was not evicted")
	}
	if _, ok := c.issuer(fmt.Sprintf("sid%d", 3*maxSessionIDs-1), netip.AddrPort{}, netip.AddrPort{}); !ok {
		t.Error("the newest session id is missing")
	}
	if open, _ := c.openAt(proxyAddr, at(1e9)); open != maxTunnels {
		t.Errorf("open %d, want %d", open, maxTunnels)
	}
}

// BenchmarkCrossState feeds 100 000 upgraded tunnels through one proxy
// (each with its socket.io handshake answer, closed by the proxy in
// bursts of ten) and reports the heap the analyzer keeps per tunnel once
// they are decided: the state across connections is capped, so this
// stays flat however many tunnels go by.
func BenchmarkCrossState(b *testing.B) {
	const n = 100000
	for range b.N {
		events := 0
		opt := DefaultOptions
		opt.WaitSession = true
		opt.Events = func(*Event) { events++ }
		a := New(opt, func(*Verdict) {})
		before := heapInUse()
		for i := range n {
			burst := time.Duration(i/10) * 2 * time.Second
			start := t0.Add(burst + time.Duration(i%10)*ms)
			closeAt := t0.Add(burst + time.Second + time.Duration(i%10)*time.Microsecond)
			c := reassembly.Conn{ID: reassembly.ConnID(2*i + 1), Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000), Server: proxyAddr}
			poll := &reassembly.Request{Conn: reassembly.Conn{ID: reassembly.ConnID(2*i + 2), Client: c.Client, Server: proxyAddr}, Method: "GET", Target: "/socket.io/?EIO=4&transport=polling", Version: "HTTP/1.1", Start: start, End: start}
			a.Request(poll)
			a.Response(&reassembly.Response{Conn: poll.Conn, Status: 200, Body: fmt.Sprintf(`0{"sid":"sid%08d","upgrades":["websocket"]}`, i), Start: start, End: start, Request: poll})
			r := &reassembly.Request{Conn: c, Method: "GET", Target: fmt.Sprintf("/socket.io/?EIO=4&transport=websocket&sid=sid%08d", i), Version: "HTTP/1.1",
				Headers: wsReq(key1, "example.org"), Start: start, End: start}
			a.Request(r)
			a.Response(&reassembly.Response{Conn: c, Status: 101, Headers: accept(key1), Start: start, End: start, Request: r})
			a.ConnEnd(&reassembly.ConnEnd{Conn: c, First: start, Last: closeAt, Upgraded: true, HTTP: true, Reason: reassembly.EndClosed,
				WS:          &reassembly.WSSession{C2S: reassembly.WSDir{Frames: 3, Last: closeAt.Add(-100 * ms)}, S2C: reassembly.WSDir{Frames: 3, Last: closeAt.Add(-100 * ms)}},
				ServerClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: closeAt}, ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: closeAt.Add(ms)}})
			a.ConnEnd(&reassembly.ConnEnd{Conn: poll.Conn, First: start, Last: start, HTTP: true, Reason: reassembly.EndClosed})
			if i%1000 == 999 {
				a.Decide(closeAt)
			}
		}
		a.Decide(t0.Add(time.Duration(n/10)*2*time.Second + time.Minute))
		per := float64(heapInUse()-before) / n
		a.Finish()
		if events != n/10 {
			b.Fatalf("%d mass_close events, want %d", events, n/10)
		}
		b.ReportMetric(per, "B/tunnel")
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A backend closing its tunnels and the proxy passing the closes on are
// one event, closed by the backend; the proxy's tunnels point to it.
func TestMassCloseRelayed(t *testing.T) {
	var evs []*Event
	opt := DefaultOptions
	opt.Events = func(e *Event) { evs = append(evs, e) }
	a := New(opt, func(*Verdict) {})
	backend := netip.MustParseAddrPort("127.0.0.1:9001")
	end := func(id int, server netip.AddrPort, at time.Time) {
		a.ConnEnd(&reassembly.ConnEnd{Conn: reassembly.Conn{ID: reassembly.ConnID(id), Server: server}, First: t0, Last: at, Upgraded: true, Reason: reassembly.EndClosed,
			WS: &reassembly.WSSession{C2S: reassembly.WSDir{Last: at.Add(-ms)}, S2C: reassembly.WSDir{Last: at.Add(-ms)}}, ServerClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: at}})
	}
	for i := range 4 {
		at := at(10).Add(time.Duration(i) * 10 * time.Microsecond)
		end(2*i+1, backend, at)
		end(2*i+2, proxyAddr, at.Add(200*time.Microsecond))
	}
	a.Decide(at(12))
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	e := evs[0]
	if e.Server != backend || e.ClosedBy != "backend" || e.Count != 4 || !strings.Contains(strings.Join(e.Evidence, "\n"), "192.0.2.1:80 (a proxy) then closed 4") {
		t.Errorf("event %+v", e)
	}
	if a.cross.eventFor(proxyAddr, at(10).Add(250*time.Microsecond)) != e {
		t.Error("the proxy's closes do not point to the backend's event")
	}
}

func TestOriginSchemeLost(t *testing.T) {
	ws := with(wsReq(key1, "example.org"), "Origin", "https://example.org")
	runRuleCases(t, []ruleCase{{
		name: "TLS client leg, plain upstream without X-Forwarded-Proto",
		by:   "why the backend refused",
		chain: func(*Analyzer) []*exchange {
			A := clientLeg(ws, 403, reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}})
			A.req.TLS = true
			return []*exchange{A, upLeg("GET /ws HTTP/1.1", ws, 403, nil)}
		},
		code: OriginMismatch, hop: HopProxy, findings: []Code{OriginMismatch, BackendRejected},
		evidence: []string{"no X-Forwarded-Proto: https"}, fix: "X-Forwarded-Proto $scheme",
	}, {
		name: "the scheme forwarded: the 403 is the backend's own",
		chain: func(*Analyzer) []*exchange {
			A := clientLeg(ws, 403, nil)
			A.req.TLS = true
			return []*exchange{A, upLeg("GET /ws HTTP/1.1", with(ws, "X-Forwarded-Proto", "https"), 403, nil)}
		},
		code: BackendRejected, hop: HopBackend,
	}})
}

// FuzzSessionID: the session-id parsers take any body or target without
// panicking and return at most 128 bytes found in their input.
func FuzzSessionID(f *testing.F) {
	f.Add(`0{"sid":"fptDuVbXu8B4FllvAAAA","upgrades":["websocket"]}`, "/socket.io/?EIO=4&transport=websocket&sid=abc")
	f.Add(`{"negotiateVersion":1,"connectionId":"x","connectionToken":"y"}`, "/hub?id=y")
	f.Add(`"sid":"`, "?sid=&id")
	f.Fuzz(func(t *testing.T, body, target string) {
		if id := sessionIDFrom(body); len(id) > 128 || !strings.Contains(body, id) {
			t.Fatalf("sessionIDFrom(%q) = %q", body, id)
		}
		if k, id := sessionIDOf(target); id != "" && (len(id) > 128 || !strings.Contains(target, k+"="+id)) {
			t.Fatalf("sessionIDOf(%q) = %q, %q", target, k, id)
		}
	})
}

// A tunnel through the same proxy that lived longer than the cut age rules
// out a fixed lifetime, however alike two cuts' ages are.
func TestLifetimeNotWhenOutlived(t *testing.T) {
	busy := dir(50, 9.9, 0, 0)
	runRuleCases(t, []ruleCase{{
		name: "a sibling cut, but another tunnel lived 60 s",
		by:   "abnormal close",
		chain: func(a *Analyzer) []*exchange {
			a.cross.addCut(cut{proxy: proxyAddr, at: at(30), age: 10 * time.Second})
			a.cross.tunnelOpened(&reassembly.Response{Conn: reassembly.Conn{ID: 99, Server: proxyAddr}, Status: 101, End: at(-100)})
			a.cross.tunnelClosed(&reassembly.ConnEnd{Conn: reassembly.Conn{ID: 99}, ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: at(-40)}})
			return upgradedChain(busy, busy, busy, busy, ends(reassembly.SideClient, reassembly.CloseRST, at(10)), ends(reassembly.SideClient, reassembly.CloseFIN, at(10.0002)))(a)
		},
		code: AbnormalClose, hop: HopSession,
	}})
}

// A busy server's steady stream of closes (one every 200 ms for 10 s) is
// no mass close.
func TestSteadyClosesNoEvent(t *testing.T) {
	var evs []*Event
	opt := DefaultOptions
	opt.Events = func(e *Event) { evs = append(evs, e) }
	a := New(opt, func(*Verdict) {})
	for i := range 50 {
		close := at(10).Add(time.Duration(i) * 200 * ms)
		a.ConnEnd(&reassembly.ConnEnd{Conn: reassembly.Conn{ID: reassembly.ConnID(i + 1), Server: proxyAddr}, First: at(0), Last: close, Upgraded: true, Reason: reassembly.EndClosed,
			WS: &reassembly.WSSession{C2S: reassembly.WSDir{Last: close.Add(-ms)}, S2C: reassembly.WSDir{Last: close.Add(-ms)}}, ServerClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: close}})
		a.Decide(close)
	}
	a.Finish()
	if len(evs) != 0 {
		t.Errorf("%d events on a steady stream of closes: %+v", len(evs), evs[0])
	}
}
