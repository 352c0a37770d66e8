package analyze

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/proto/proxyproto"
	"github.com/wsdiag/wsdiag/reassembly"
)

// Rule cases of the node's failures (issue 23's captures, made by
// testdata/gen/node.sh, pin the whole verdicts in cmd/wsdiag's goldens).
func nodeCases() []ruleCase {
	ws := wsReq(key1, "example.org")
	ok := accept(key1)
	return []ruleCase{
		{
			// devproxy-http-proxy: Node's http-proxy without its upgrade
			// handler; the client gives up after 3 s
			name: "101 swallowed by the proxy",
			by:   "101 not relayed",
			chain: func(*Analyzer) []*exchange {
				x := closed(clientLeg(ws, 0, nil), reassembly.SideClient, reassembly.CloseFIN, t0.Add(3000*ms))
				y := closed(upLeg("GET /ws HTTP/1.1", ws, 101, ok), reassembly.SideClient, reassembly.CloseFIN, t0.Add(50*ms))
				return []*exchange{x, y}
			},
			code: UpgradeNotRelayed, hop: HopProxy,
			evidence: []string{"backend→proxy: HTTP/1.1 101 Switching Protocols at 12:00:00.049",
				"the proxy closed the upstream leg 1.0ms after the 101 (FIN)",
				"proxy→client: no answer; the client waited 3.00s and closed (FIN) at 12:00:03.000"},
			fix: "server.on('upgrade'",
		},
		{
			// the client left before the backend's 101 came: not the
			// proxy's fault, and not ok either
			name: "client gone before the 101",
			by:   "a leg without its answer",
			chain: func(*Analyzer) []*exchange {
				x := closed(clientLeg(ws, 0, nil), reassembly.SideClient, reassembly.CloseFIN, t0.Add(20*ms))
				y := closed(upLeg("GET /ws HTTP/1.1", ws, 101, ok), reassembly.SideClient, reassembly.CloseFIN, t0.Add(51*ms))
				return []*exchange{x, y}
			},
			code: CannotTell, hop: HopNone,
			evidence: []string{"proxy→client: no answer in the capture; the client waited 20.0ms and closed (FIN) at 12:00:00.020"},
		},
		{
			// ext-hidden-nginx: proxy_hide_header Sec-WebSocket-Extensions
			// before a compressing backend
			name: "extension agreement hidden from the client",
			by:   "101's headers hidden",
			chain: func(*Analyzer) []*exchange {
				offer := with(ws, "Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
				return []*exchange{clientLeg(offer, 101, ok), upLeg("GET /ws HTTP/1.1", offer, 101, with(ok, "Sec-WebSocket-Extensions", "permessage-deflate"))}
			},
			code: WSHeaderAltered, hop: HopProxy,
			evidence: []string{"backend→proxy: Sec-WebSocket-Extensions: permessage-deflate",
				"proxy→client: no Sec-WebSocket-Extensions header in the proxy's 101"},
			fix: "or turn compression off on the backend",
		},
		{
			// ext-stripped-nginx: proxy_set_header Sec-WebSocket-Extensions ""
			name: "extension offer stripped: ok, with the finding",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				offer := with(ws, "Sec-WebSocket-Extensions", "permessage-deflate")
				return []*exchange{clientLeg(offer, 101, ok), upLeg("GET /ws HTTP/1.1", ws, 101, ok)}
			},
			code: OK, hop: HopNone, findings: []Code{ExtensionsStripped},
			evidence: []string{"proxy→backend: no Sec-WebSocket-Extensions header", "the tunnel runs uncompressed"},
		},
		{
			// client-quits-idle: the client goes quiet and quits (FIN, no
			// close frame); nothing shows a hop in front of the proxy
			name: "quiet client that quits: no cut in front",
			by:   "abnormal close",
			chain: upgradedChain(dir(2, 5, 0, 0), dir(2, 5, 0, 0), dir(2, 5, 0, 0), dir(2, 5, 0, 0),
				ends(reassembly.SideClient, reassembly.CloseFIN, at(10)), ends(reassembly.SideClient, reassembly.CloseFIN, at(10.0002))),
			code: AbnormalClose, hop: HopSession,
			evidence: []string{"the client closed the connection (FIN) without a close frame"},
		},
		{
			// front-idle-netns: haproxy in front (option forwardfor) closes
			// with a FIN here; X-Forwarded-For shows the hop
			name: "quiet tunnel cut by a hop that X-Forwarded-For shows",
			by:   "cut in front of the proxy",
			chain: func(a *Analyzer) []*exchange {
				xs := upgradedChain(dir(2, 5, 0, 0), dir(2, 5, 0, 0), dir(2, 5, 0, 0), dir(2, 5, 0, 0),
					ends(reassembly.SideClient, reassembly.CloseFIN, at(10)), ends(reassembly.SideClient, reassembly.CloseFIN, at(10.0002)))(a)
				xs[0].req.Headers = with(xs[0].req.Headers, "X-Forwarded-For", "198.51.100.7")
				return xs
			},
			code: FrontIdleTimeout, hop: HopFront, findings: []Code{FrontIdleTimeout, AbnormalClose},
			evidence: []string{"X-Forwarded-For: 198.51.100.7 names a client behind 10.0.0.5: a hop in front of the proxy"},
		},
		{
			// pp-unexpected-nginx: haproxy send-proxy to an nginx whose
			// listen lacks proxy_protocol; nginx answers the header
			name: "PROXY header the proxy does not expect",
			by:   "PROXY protocol on one end",
			chain: func(*Analyzer) []*exchange {
				x := closed(clientLeg(ws, 0, nil), reassembly.SideServer, reassembly.CloseFIN, t0.Add(ms/2))
				h := proxyproto.Header{Version: 1, Family: "TCP4", Src: netip.MustParseAddrPort("198.51.100.7:40000"), Dst: netip.MustParseAddrPort("203.0.113.1:80"), Len: 45}
				x.req.Node = &reassembly.Node{Proxy: &h, ProxyAt: t0.Add(-ms / 5),
					ProxyAnswer: &reassembly.EarlyAnswer{Status: 400, Reason: "Bad Request", Server: "nginx/1.22.1", At: t0.Add(-ms / 10)}}
				return []*exchange{x}
			},
			code: ProxyProtocolMismatch, hop: HopProxy, findings: []Code{ProxyProtocolMismatch, ProxyRejected},
			evidence: []string{"the connection began with a PROXY v1 from 198.51.100.7:40000 to 203.0.113.1:80",
				"400 Bad Request at 11:59:59.999, 100µs after the header, before the request had come"},
			fix: "listen … proxy_protocol",
		},
		{
			// pp-missing-nginx: nginx listen … proxy_protocol, haproxy sends none
			name: "PROXY header expected and not sent",
			by:   "PROXY protocol on one end",
			chain: func(a *Analyzer) []*exchange {
				x := closed(clientLeg(ws, 0, nil), reassembly.SideServer, reassembly.CloseFIN, t0.Add(ms/10))
				x.end.Requests = 1
				a.listenerEnded(x.end)
				a.listenerEnded(x.end)
				return []*exchange{x}
			},
			code: ProxyProtocolMismatch, hop: HopProxy, findings: []Code{ProxyProtocolMismatch, ProxyRejected},
			evidence: []string{"the proxy closed the connection (FIN) 100µs after the request, without sending a byte", "closed all 2 connections of the capture so, and answered none"},
			fix:      "send-proxy-v2",
		},
	}
}

func TestNodeRules(t *testing.T) { runRuleCases(t, nodeCases()) }

// tlsEnd feeds a keyless TLS connection (TLSStart, then its end) to an.
func tlsEnd(an *Analyzer, id int, client, server string, start time.Time, in reassembly.TLSInfo, side reassembly.Side, kind reassembly.CloseKind, closeAt time.Time) {
	c := reassembly.Conn{ID: reassembly.ConnID(id), Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server), TLS: true}
	an.TLSStart(&reassembly.TLSStart{Conn: c, Time: start})
	e := &reassembly.ConnEnd{Conn: c, First: start, Last: closeAt.Add(ms), SYN: true, SYNACK: true, TLS: true, TLSInfo: &in, Reason: reassembly.EndClosed}
	first, second := &e.ClientClose, &e.ServerClose
	if side == reassembly.SideServer {
		first, second = second, first
	}
	*first = reassembly.Close{Kind: kind, Time: closeAt}
	*second = reassembly.Close{Kind: reassembly.CloseFIN, Time: closeAt.Add(ms)}
	an.ConnEnd(e)
}

// tls-passthrough-*: a relayed session's two legs share the ClientHello
// random (encrypted_leg, pairing exact); a ClientHello closed at once
// without a ServerHello or an alert is the SNI router's refusal.
func TestPassthrough(t *testing.T) {
	var got []*Verdict
	an := New(DefaultOptions, func(v *Verdict) { got = append(got, v) })
	hello := reassembly.TLSInfo{SNI: "app.example", ClientHello: true, ServerHello: true, HandshakeDone: true, Version: 0x0304, Records: [2]int{7, 10}}
	hello.ClientRandom[0] = 0x92
	tlsEnd(an, 2, "10.0.2.1:50000", "10.0.2.2:9443", t0.Add(ms/5), hello, reassembly.SideServer, reassembly.CloseFIN, t0.Add(2*ms))
	tlsEnd(an, 1, "10.0.1.2:40000", "10.0.1.1:443", t0, hello, reassembly.SideServer, reassembly.CloseFIN, t0.Add(2*ms))
	refused := reassembly.TLSInfo{SNI: "other.example", ClientHello: true}
	refused.ClientRandom[0] = 0x17
	tlsEnd(an, 3, "10.0.1.2:40002", "10.0.1.1:443", t0.Add(10*ms), refused, reassembly.SideServer, reassembly.CloseFIN, t0.Add(10*ms+ms/10))
	an.Finish()
	if len(got) != 2 {
		t.Fatalf("%d verdicts", len(got))
	}
	for _, v := range got {
		switch v.Code {
		case EncryptedLeg:
			if v.Client != netip.MustParseAddrPort("10.0.1.2:40000") || v.Backend != netip.MustParseAddrPort("10.0.2.2:9443") || v.PairConfidence != ConfExact ||
				!strings.Contains(strings.Join(v.Evidence, "\n"), "the same ClientHello (random 920000000000…), 200µs after the client's") {
				t.Errorf("passthrough verdict %+v", v)
			}
		case ProxyRejected:
			if v.Hop != HopProxy || !strings.Contains(strings.Join(v.Evidence, "\n"), "no route for other.example") || !strings.Contains(v.Fix, "req.ssl_sni -i other.example") {
				t.Errorf("refusal %+v", v)
			}
		default:
			t.Errorf("verdict %s", v.Code)
		}
	}
}

// idle-cut-*: the capture holds only the ends of tunnels that were idle
// since before it: the proxy cuts both legs of each within a millisecond.
func TestIdleCutWithoutHandshake(t *testing.T) {
	ap := netip.MustParseAddrPort
	cut := func(from, to string, kind reassembly.CloseKind, us int) *reassembly.CloseOnly {
		return &reassembly.CloseOnly{From: ap(from), To: ap(to), Kind: kind, Time: t0.Add(time.Duration(us) * time.Microsecond)}
	}
	for _, c := range []struct {
		name   string
		closes []*reassembly.CloseOnly
		want   int
	}{
		{"nginx: upstream then client, answered", []*reassembly.CloseOnly{
			cut("10.0.2.1:44866", "10.0.2.2:9000", reassembly.CloseFIN, 99),
			cut("10.0.1.1:80", "10.0.1.2:58238", reassembly.CloseFIN, 194),
			cut("10.0.1.1:80", "10.0.1.2:58238", reassembly.CloseFIN, 195), // seen twice (-i any)
			cut("10.0.1.2:58238", "10.0.1.1:80", reassembly.CloseFIN, 411),
			cut("10.0.2.2:9000", "10.0.2.1:44866", reassembly.CloseFIN, 482)}, 1},
		{"haproxy: client FIN, upstream RST", []*reassembly.CloseOnly{
			cut("10.0.1.1:80", "10.0.1.2:36406", reassembly.CloseFIN, 0),
			cut("10.0.2.1:49714", "10.0.2.2:9000", reassembly.CloseRST, 139)}, 1},
		{"two client legs: no tunnel", []*reassembly.CloseOnly{
			cut("10.0.1.1:80", "10.0.1.2:1000", reassembly.CloseFIN, 0),
			cut("10.0.1.1:80", "10.0.1.2:1001", reassembly.CloseFIN, 100)}, 0},
		{"too far apart", []*reassembly.CloseOnly{
			cut("10.0.2.1:44866", "10.0.2.2:9000", reassembly.CloseFIN, 0),
			cut("10.0.1.1:80", "10.0.1.2:58238", reassembly.CloseFIN, 5000)}, 0},
	} {
		var got []*Verdict
		an := New(DefaultOptions, func(v *Verdict) { got = append(got, v) })
		for _, e := range c.closes {
			an.CloseOnly(e)
		}
		an.Finish()
		if len(got) != c.want {
			t.Errorf("%s: %d verdicts, want %d", c.name, len(got), c.want)
			continue
		}
		for _, v := range got {
			ev := strings.Join(v.Evidence, "\n")
			if v.Code != IdleTimeout || v.Client.Port() == 80 || v.Backend.Port() != 9000 || !strings.Contains(ev, "closed both legs within") {
				t.Errorf("%s: %s %v→%v %s", c.name, v.Code, v.Client, v.Backend, ev)
			}
		}
	}
}
