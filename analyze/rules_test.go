package analyze

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Table tests of the rules on synthetic chains, built here leg by leg and
// judged without pairing. Each case names the rule it is about (by), and
// every rule of the table has a case; they pin each rule's code, hop and
// findings. The golden tests on real captures (cmd/wsdiag) pin whole
// verdicts.

const ms = time.Millisecond

// legX builds hop i of a chain: client → server, the request at i ms and
// its answer (status 0: none) at 50−i ms, so that answers come back in
// reverse order as through a proxy. line is "METHOD TARGET VERSION".
func legX(i int, client, server, line string, req reassembly.Headers, status int, resp reassembly.Headers) *exchange {
	c := reassembly.Conn{ID: reassembly.ConnID(i + 1), Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)}
	f := strings.Fields(line)
	r := &reassembly.Request{Conn: c, Method: f[0], Target: f[1], Version: f[2], Headers: req, Start: t0.Add(time.Duration(i) * ms), End: t0.Add(time.Duration(i) * ms)}
	x := &exchange{req: r, conf: ConfExact}
	if status != 0 {
		at := t0.Add(time.Duration(50-i) * ms)
		x.resp = &reassembly.Response{Conn: c, Version: "HTTP/1.1", Status: status, Reason: reasonOf(status), Headers: resp, Start: at, End: at, Request: r}
	}
	return x
}

func reasonOf(st int) string {
	switch st {
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 301:
		return "Moved Permanently"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 502:
		return "Bad Gateway"
	}
	return ""
}

// client and upstream legs of the usual chain 10.0.0.5 → proxy :80 → backend :9001.
func clientLeg(req reassembly.Headers, status int, resp reassembly.Headers) *exchange {
	return legX(0, "10.0.0.5:50000", "192.0.2.1:80", "GET /ws HTTP/1.1", req, status, resp)
}

func upLeg(line string, req reassembly.Headers, status int, resp reassembly.Headers) *exchange {
	return legX(1, "127.0.0.1:40000", "127.0.0.1:9001", line, req, status, resp)
}

// without returns h without the named headers; with replaces or adds one.
func without(h reassembly.Headers, names ...string) reassembly.Headers {
	var out reassembly.Headers
	for _, f := range h {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, f.Name) }) {
			out = append(out, f)
		}
	}
	return out
}

func with(h reassembly.Headers, name, value string) reassembly.Headers {
	return append(without(h, name), reassembly.Header{Name: name, Value: value})
}

func withBody(x *exchange, body string) *exchange {
	x.resp.Body = body
	return x
}

// closed ends x's connection: who closes first (client or server side of
// the leg) and how, at t.
func closed(x *exchange, side reassembly.Side, kind reassembly.CloseKind, t time.Time) *exchange {
	e := &reassembly.ConnEnd{Conn: x.req.Conn, First: x.req.Start, Last: t, SYN: true, SYNACK: true, HTTP: true, Reason: reassembly.EndClosed}
	first, second := &e.ClientClose, &e.ServerClose
	if side == reassembly.SideServer {
		first, second = second, first
	}
	*first = reassembly.Close{Kind: kind, Time: t}
	*second = reassembly.Close{Kind: reassembly.CloseFIN, Time: t.Add(ms)}
	e.Last = t.Add(ms)
	x.end = e
	return x
}

// session gives an upgraded leg its frame figures.
func session(x *exchange, c2s, s2c reassembly.WSDir) *exchange {
	x.end.Upgraded = true
	x.end.WS = &reassembly.WSSession{C2S: c2s, S2C: s2c}
	return x
}

const nginxPage = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"

type ruleCase struct {
	name string
	// by is the rule (its name in rules) the case is about: it finds the
	// case's code or one of its findings.
	by string
	// chain builds the legs (and seeds the analyzer with what other
	// connections showed); mid builds those of a session whose handshake
	// came before the capture instead.
	chain func(a *Analyzer) []*exchange
	mid   func(a *Analyzer) []*midLeg
	code  Code
	hop   Hop
	sev   Severity // "" : the row's default
	// findings, primary first; nil: just the code
	findings []Code
	evidence []string // substrings some evidence line holds
	fix      string   // a substring of the fix
	errorLog string   // a substring of the error-log line
}

// judgeCase judges a case's chain as the analyzer does, waiting for no
// other connection, and returns the attempt with its findings too.
func judgeCase(c ruleCase) (*Verdict, *attempt) {
	an := New(DefaultOptions, func(*Verdict) {})
	if c.mid != nil {
		a := an.observeMid(c.mid(an))
		a.runRules(onWire)
		return a.midVerdict(), a
	}
	v, a, _ := judgeHeld(c.chain(an), an, nil, ConfNone)
	if v == nil {
		v = a.release()
	}
	return v, a
}

// ruleIndex is the row of the rule named name, or -1.
func ruleIndex(name string) int {
	for i := range rules {
		if rules[i].name == name {
			return i
		}
	}
	return -1
}

// checkBy: the case's rule found its code, or one of its findings.
func checkBy(t *testing.T, c ruleCase, a *attempt) {
	t.Helper()
	i := ruleIndex(c.by)
	if i < 0 {
		t.Fatalf("no rule named %q", c.by)
	}
	for _, f := range a.findings {
		if int(f.by) == i && (f.code == c.code || slices.Contains(c.findings, f.code)) {
			return
		}
	}
	var got []string
	for _, f := range a.findings {
		got = append(got, string(f.code)+" by "+rules[f.by].name)
	}
	t.Errorf("rule %q found none of %s %v; found %q", c.by, c.code, c.findings, got)
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, a := judgeCase(c)
			if c.by != "" {
				checkBy(t, c, a)
			}
			sev := c.sev
			if sev == "" {
				_, sev = Describe(c.code)
			}
			if v.Code != c.code || v.Hop != c.hop || v.Severity != sev {
				t.Errorf("got %s hop %s sev %s, want %s hop %s sev %s\nfindings %v\nevidence:\n  %s", v.Code, v.Hop, v.Severity, c.code, c.hop, sev, v.Findings, strings.Join(v.Evidence, "\n  "))
			}
			want := c.findings
			if want == nil {
				want = []Code{c.code}
			}
			if c.code == OK && c.findings == nil {
				want = nil
			}
			if !slices.Equal(v.Findings, want) {
				t.Errorf("findings %v, want %v", v.Findings, want)
			}
			for _, e := range c.evidence {
				if !slices.ContainsFunc(v.Evidence, func(s string) bool { return strings.Contains(s, e) }) {
					t.Errorf("no evidence line holds %q:\n  %s", e, strings.Join(v.Evidence, "\n  "))
				}
			}
			if !strings.Contains(v.Fix, c.fix) {
				t.Errorf("fix %q lacks %q", v.Fix, c.fix)
			}
			if !strings.Contains(v.ErrorLog, c.errorLog) {
				t.Errorf("error log %q lacks %q", v.ErrorLog, c.errorLog)
			}
			if v.Code != OK && v.Code != PlainHTTP && v.Fix == "" {
				t.Errorf("%s without a fix", v.Code)
			}
		})
	}
}

func TestHandshakeRules(t *testing.T) { runRuleCases(t, handshakeCases()) }

func TestSessionRules(t *testing.T) { runRuleCases(t, sessionCases()) }

func handshakeCases() []ruleCase {
	ws := wsReq(key1, "example.org")
	ok := accept(key1)
	nginx := reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}}
	return []ruleCase{
		{
			name: "ok through a proxy",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 101, ok), upLeg("GET /ws HTTP/1.1", ws, 101, ok)}
			},
			code: OK, hop: HopNone,
		},
		// client
		{
			name: "client without Upgrade or a valid key",
			by:   "client's request",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(with(without(ws, "Upgrade"), "Sec-WebSocket-Key", "short"), 400, nil)}
			},
			code: ClientNotWebSocket, hop: HopClient,
			findings: []Code{ClientNotWebSocket, Unpaired},
			evidence: []string{"client→server: no Upgrade header", "Sec-WebSocket-Key: short (need 16 random bytes, base64)"},
			fix:      "RFC 6455",
		},
		{
			name: "client POST, version 12",
			by:   "client's request",
			chain: func(*Analyzer) []*exchange {
				x := clientLeg(with(ws, "Sec-WebSocket-Version", "12"), 400, nil)
				x.req.Method = "POST"
				return []*exchange{x}
			},
			code: ClientNotWebSocket, hop: HopClient,
			findings: []Code{ClientNotWebSocket, Unpaired},
			evidence: []string{"Sec-WebSocket-Version: 12 (need 13)", "request line: POST /ws HTTP/1.1 (need GET … HTTP/1.1)"},
		},
		// proxy request
		{
			name: "nginx defaults: Upgrade dropped, Connection close, HTTP/1.0",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				up := with(without(ws, "Upgrade"), "Connection", "close")
				return []*exchange{clientLeg(ws, 400, nginx), upLeg("GET /ws HTTP/1.0", up, 400, nil)}
			},
			code: UpgradeHeaderDropped, hop: HopProxy,
			findings: []Code{UpgradeHeaderDropped, ConnectionNotUpgrade, UpstreamHTTP10},
			evidence: []string{"client→proxy: Upgrade: websocket", "proxy→backend: no Upgrade header", "proxy→backend: Connection: close", "proxy→backend request line: GET /ws HTTP/1.0"},
			fix:      "proxy_set_header Upgrade $http_upgrade",
		},
		{
			name: "keep-alive recipe empties Connection",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 400, nginx), upLeg("GET /ws HTTP/1.1", without(ws, "Connection"), 400, nil)}
			},
			code: ConnectionNotUpgrade, hop: HopProxy,
			evidence: []string{"proxy→backend: no Connection header"},
			fix:      `proxy_set_header Connection "";`,
		},
		{
			name: "HTTP/1.0 upstream that still upgraded is a warning",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 101, ok), upLeg("GET /ws HTTP/1.0", ws, 101, ok)}
			},
			code: UpstreamHTTP10, hop: HopProxy, sev: SevWarn,
		},
		{
			// not a correct upgrade on the backend leg: no backend_rejected
			name: "HTTP/1.0 upstream that failed is an error",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 400, nil), upLeg("GET /ws HTTP/1.0", ws, 400, nil)}
			},
			code: UpstreamHTTP10, hop: HopProxy, sev: SevError,
			findings: []Code{UpstreamHTTP10},
		},
		{
			name: "subprotocol stripped",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(with(ws, "Sec-WebSocket-Protocol", "chat"), 101, ok), upLeg("GET /ws HTTP/1.1", ws, 101, ok)}
			},
			code: WSHeaderAltered, hop: HopProxy,
			evidence: []string{"client→proxy: Sec-WebSocket-Protocol: chat", "proxy→backend: no Sec-WebSocket-Protocol header"},
		},
		{
			name: "Host rewritten explains the backend's 403",
			by:   "backend refused the upgrade",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 403, nginx), upLeg("GET /ws HTTP/1.1", with(ws, "Host", "127.0.0.1"), 403, nil)}
			},
			code: BackendRejected, hop: HopBackend,
			findings: []Code{BackendRejected, HostRewritten},
			evidence: []string{"proxy→backend: Host: 127.0.0.1", "backend→proxy: HTTP/1.1 403 Forbidden"},
			fix:      "proxy_set_header Host $http_host",
		},
		{
			name: "path rewritten explains the backend's 404",
			by:   "backend refused the upgrade",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 404, nginx), upLeg("GET /x/ws HTTP/1.1", ws, 404, nil)}
			},
			code: BackendRejected, hop: HopBackend,
			findings: []Code{BackendRejected, PathRewritten},
			fix:      "a URI part in proxy_pass",
		},
		{
			name: "client leg not captured: an upstream request with the key and no Upgrade",
			by:   "upstream request of an unseen client",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{upLeg("GET /ws HTTP/1.0", with(without(ws, "Upgrade"), "Connection", "close"), 400, nil)}
			},
			code: UpgradeHeaderDropped, hop: HopProxy,
			findings: []Code{UpgradeHeaderDropped, ConnectionNotUpgrade, UpstreamHTTP10, Unpaired},
			evidence: []string{"yet the request carries the client's Sec-WebSocket-Key"},
		},
		// connect
		{
			name: "nothing listens at the backend",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				for k := 0; k < 2; k++ {
					a.ConnEnd(&reassembly.ConnEnd{Conn: reassembly.Conn{ID: reassembly.ConnID(100 + k), Client: ap("127.0.0.1:40000"), Server: ap("127.0.0.1:9001")},
						First: t0.Add(2 * ms), Last: t0.Add(2 * ms), SYN: true, Reason: reassembly.EndClosed, ServerClose: reassembly.Close{Kind: reassembly.CloseRST, Time: t0.Add(2 * ms)}})
				}
				return []*exchange{withBody(clientLeg(ws, 502, nginx), nginxPage)}
			},
			code: UpstreamConnectFailed, hop: HopConnect,
			evidence: []string{"SYN answered by RST (connection refused: nothing listens there) (×2)", "(the nginx/1.22.1 error page: generated by the proxy)"},
			errorLog: "connect() failed (111: Connection refused)",
			fix:      "nothing listens at 127.0.0.1:9001",
		},
		{
			name: "SYNs never answered",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				a.ConnEnd(&reassembly.ConnEnd{Conn: reassembly.Conn{ID: 100, Client: ap("127.0.0.1:40000"), Server: ap("127.0.0.1:9001")},
					First: t0.Add(2 * ms), Last: t0.Add(40 * ms), SYN: true, Reason: reassembly.EndClosed, ClientClose: reassembly.Close{Kind: reassembly.CloseRST, Time: t0.Add(40 * ms)}})
				x := withBody(clientLeg(ws, 504, nginx), nginxPage)
				return []*exchange{x}
			},
			code: UpstreamConnectFailed, hop: HopConnect,
			evidence: []string{"SYN never answered (38.0ms until the proxy gave up)"},
			errorLog: "while connecting to upstream",
			fix:      "does not answer SYNs",
		},
		// backend
		{
			name: "backend closed before answering",
			by:   "backend's silence",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 502, nginx), closed(upLeg("GET /ws HTTP/1.1", ws, 0, nil), reassembly.SideServer, reassembly.CloseFIN, t0.Add(5*ms))}
			},
			code: UpstreamClosedEarly, hop: HopBackend,
			findings: []Code{UpstreamClosedEarly},
			evidence: []string{"backend→proxy: the backend closed the connection (FIN) 4.0ms after the request, without a response"},
			errorLog: "upstream prematurely closed connection",
		},
		{
			name: "the proxy gave up on a silent backend",
			by:   "backend's silence",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 504, nginx), closed(upLeg("GET /ws HTTP/1.1", ws, 0, nil), reassembly.SideClient, reassembly.CloseFIN, t0.Add(40*ms))}
			},
			code: UpstreamTimeout, hop: HopBackend,
			evidence: []string{"no response; the proxy gave up and closed the backend leg (FIN)"},
			errorLog: "while reading response header from upstream",
		},
		{
			name: "a 504 with the backend leg still open at the end of the capture",
			by:   "backend's silence",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 504, nil), upLeg("GET /ws HTTP/1.1", ws, 0, nil)}
			},
			code: UpstreamTimeout, hop: HopBackend,
			evidence: []string{"proxy→backend: request at 12:00:00.001, no response", "proxy→client: HTTP/1.1 504"},
		},
		{
			name: "backend refuses a correct upgrade, body quoted",
			by:   "backend refused the upgrade",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 400, nil), withBody(upLeg("GET /ws HTTP/1.1", ws, 400, nil), "Session ID unknown\n")}
			},
			code: BackendRejected, hop: HopBackend,
			evidence: []string{`backend→proxy body: "Session ID unknown"`},
			fix:      "refused a correct upgrade with 400",
		},
		{
			name: "backend answers 200",
			by:   "backend not WebSocket",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 200, nil), upLeg("GET /ws HTTP/1.1", ws, 200, nil)}
			},
			code: BackendNotWebSocket, hop: HopBackend,
			fix: "answered 200 instead of 101",
		},
		{
			name: "backend's Accept is wrong",
			by:   "backend's 101",
			chain: func(*Analyzer) []*exchange {
				bad := with(ok, "Sec-WebSocket-Accept", "AAAA")
				return []*exchange{clientLeg(ws, 101, bad), upLeg("GET /ws HTTP/1.1", ws, 101, bad)}
			},
			code: BadAccept, hop: HopBackend,
			evidence: []string{"backend→proxy: Sec-WebSocket-Accept: AAAA (expected s3pPLMBiTxaQ9kYGzzhZRbK+xOo= for key " + key1 + ")"},
		},
		// proxy response
		{
			name: "101 upstream, 502 to the client",
			by:   "proxy's answers",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 502, nil), upLeg("GET /ws HTTP/1.1", ws, 101, ok)}
			},
			code: ResponseAltered, hop: HopProxy,
			evidence: []string{"backend→proxy: HTTP/1.1 101 Switching Protocols", "proxy→client: HTTP/1.1 502 Bad Gateway"},
		},
		{
			name: "101 relayed without Upgrade",
			by:   "proxy's answers",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 101, without(ok, "Upgrade")), upLeg("GET /ws HTTP/1.1", ws, 101, ok)}
			},
			code: ResponseAltered, hop: HopProxy,
			evidence: []string{"proxy→client: no Upgrade header"},
		},
		{
			name: "redirect",
			by:   "one leg: who answered",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 301, reassembly.Headers{{Name: "Location", Value: "https://example.org/ws"}})}
			},
			code: Redirected, hop: HopProxy,
			evidence: []string{"server→client: Location: https://example.org/ws"},
		},
		{
			name: "nginx denies the location itself",
			by:   "one leg: who answered",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{withBody(clientLeg(ws, 403, nginx), strings.ReplaceAll(nginxPage, "502 Bad Gateway", "403 Forbidden"))}
			},
			code: ProxyRejected, hop: HopProxy,
			evidence: []string{"proxy→client: HTTP/1.1 403 Forbidden (the nginx/1.22.1 error page: generated by the proxy)", "proxy→backend: no request for this attempt"},
			errorLog: "access forbidden by rule",
			fix:      "refused the request itself (403",
		},
		// a proxy answering itself, upstream legs off the wire, cut packets
		{
			name: "Caddy's empty 200: no site for the Host",
			by:   "one leg: who answered",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 200, reassembly.Headers{{Name: "Server", Value: "Caddy"}, {Name: "Content-Length", Value: "0"}})}
			},
			code: ProxyRejected, hop: HopProxy,
			evidence: []string{"Caddy's own empty answer", "proxy→client: Server: Caddy"},
			fix:      "Caddy has no site for Host example.org",
		},
		{
			name: "gorilla's refusal relayed by nginx, no upstream leg on the wire",
			by:   "one leg: who answered",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{withBody(clientLeg(ws, 400, with(nginx, "Sec-Websocket-Version", "13")),
					"websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header\n")}
			},
			code: UpgradeHeaderDropped, hop: HopProxy,
			findings: []Code{UpgradeHeaderDropped, Unpaired},
			evidence: []string{"gorilla/websocket refused the handshake it got for lacking the upgrade token in Connection", "high confidence"},
			fix:      "ss -xlp",
		},
		{
			name: "a 426 relayed: the backend wanted the upgrade the proxy dropped",
			by:   "one leg: who answered",
			chain: func(*Analyzer) []*exchange {
				x := withBody(clientLeg(ws, 426, nginx), "Upgrade Required")
				x.resp.Reason = "Upgrade Required"
				return []*exchange{x}
			},
			code: UpgradeHeaderDropped, hop: HopProxy,
			findings: []Code{UpgradeHeaderDropped, Unpaired},
			evidence: []string{"medium confidence"},
		},
		{
			name: "both legs cut before their headers: cannot tell",
			by:   "snap length cut",
			chain: func(*Analyzer) []*exchange {
				a := clientLeg(reassembly.Headers{}, 400, nil)
				b := upLeg("GET /ws HTTP/1.0", reassembly.Headers{}, 400, nil)
				for _, x := range []*exchange{a, b} {
					x.req.Truncated, x.req.Cut, x.req.Kept = true, true, 30
					x.resp.Truncated, x.resp.Cut, x.resp.Kept = true, true, 30
				}
				return []*exchange{a, b}
			},
			code: CannotTell, hop: HopNone,
			findings: []Code{CannotTell, UpstreamHTTP10},
			evidence: []string{"client→proxy: the capture kept only the first 30 bytes of this request (snap length): no Upgrade, Connection, Sec-WebSocket-* header is in the file"},
			fix:      "tcpdump -s 0",
		},
		{
			name: "client leg cut after Connection: nginx's own headers prove Upgrade dropped",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				a := clientLeg(reassembly.Headers{{Name: "Host", Value: "example.org"}, {Name: "User-Agent", Value: "t/1"}, {Name: "Connection", Value: "Upgrade"}}, 400, nginx)
				b := upLeg("GET /ws HTTP/1.0", reassembly.Headers{{Name: "Host", Value: "127.0.0.1:9001"}, {Name: "Connection", Value: "close"}, {Name: "User-Agent", Value: "t/1"}}, 400, nil)
				a.req.Truncated, a.req.Cut, a.req.Kept = true, true, 134
				b.req.Truncated, b.req.Cut, b.req.Kept = true, true, 134
				return []*exchange{a, b}
			},
			code: UpgradeHeaderDropped, hop: HopProxy,
			findings: []Code{UpgradeHeaderDropped, ConnectionNotUpgrade, UpstreamHTTP10, HostRewritten},
			evidence: []string{"client→proxy: Upgrade not in the part the capture kept", "no Upgrade among the headers nginx sets"},
		},
		{
			name: "a 101 without Sec-WebSocket-Accept",
			by:   "backend's 101",
			chain: func(*Analyzer) []*exchange {
				noAccept := reassembly.Headers{{Name: "Upgrade", Value: "websocket"}, {Name: "Connection", Value: "Upgrade"}}
				return []*exchange{clientLeg(ws, 101, noAccept), upLeg("GET /ws HTTP/1.1", ws, 101, noAccept)}
			},
			code: BadAccept, hop: HopBackend,
			evidence: []string{"backend→proxy: no Sec-WebSocket-Accept header (expected "},
			fix:      "answered 101 without Sec-WebSocket-Accept",
		},
		{
			name: "the proxy closes without answering",
			by:   "one leg: who answered",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{closed(clientLeg(ws, 0, nil), reassembly.SideServer, reassembly.CloseRST, t0.Add(3*ms))}
			},
			code: ProxyRejected, hop: HopProxy,
			evidence: []string{"server→client: no response; the proxy closed the connection (RST) 3.0ms after the request"},
		},
		{
			name: "one leg, 101: judged, unpaired noted",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				a.hasUpstreamLegs = true
				return []*exchange{clientLeg(ws, 101, ok)}
			},
			code: OK, hop: HopNone,
			findings: []Code{Unpaired},
			fix:      "only the client's side was checked",
		},
		{
			name: "a lone leg to an --upstream backend: the client's leg is missing",
			by:   "client leg opaque or not captured",
			chain: func(a *Analyzer) []*exchange {
				a.opt.Upstreams = []netip.AddrPort{ap("127.0.0.1:9001")}
				return []*exchange{upLeg("GET /ws HTTP/1.1", ws, 101, ok)}
			},
			code: Unpaired, hop: HopNone,
			evidence: []string{"client→proxy: not in the capture; 127.0.0.1:9001 is an --upstream backend"},
			fix:      "capture on both sides of the proxy",
		},
	}
}

// upgradedChain is an attempt upgraded on both legs, with the frames and
// connection ends the test sets.
func upgradedChain(c2sA, s2cA, c2sL, s2cL reassembly.WSDir, endA, endL func(x *exchange) *exchange) func(*Analyzer) []*exchange {
	return func(*Analyzer) []*exchange {
		ws, ok := wsReq(key1, "example.org"), accept(key1)
		A := clientLeg(ws, 101, append(ok, reassembly.Header{Name: "Server", Value: "nginx/1.22.1"}))
		L := upLeg("GET /ws HTTP/1.1", ws, 101, ok)
		return []*exchange{session(endA(A), c2sA, s2cA), session(endL(L), c2sL, s2cL)}
	}
}

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func ends(side reassembly.Side, kind reassembly.CloseKind, t time.Time) func(*exchange) *exchange {
	return func(x *exchange) *exchange { return closed(x, side, kind, t) }
}

// dir is a direction's figures: n frames, the last at last, a close frame
// with code at closeAt (0: none).
func dir(n uint64, last float64, code uint16, closeAt float64) reassembly.WSDir {
	d := reassembly.WSDir{Frames: n, DataFrames: n, Bytes: 10 * n, MaxFrame: 10, First: at(0.1), Last: at(last)}
	if code != 0 {
		d.CloseCode, d.CloseAt = code, at(closeAt)
	}
	return d
}

func sessionCases() []ruleCase {
	proxyEnds := ends(reassembly.SideServer, reassembly.CloseFIN, at(10))   // the proxy closes the client's leg
	backendEnds := ends(reassembly.SideServer, reassembly.CloseFIN, at(10)) // the backend closes its leg
	return []ruleCase{
		{
			name:     "client closes normally",
			by:       "close frame",
			chain:    upgradedChain(dir(5, 9, 1000, 9), dir(5, 9, 1000, 9.1), dir(5, 9, 1000, 9.05), dir(5, 9, 1000, 9.06), proxyEnds, backendEnds),
			code:     OK,
			hop:      HopNone,
			findings: []Code{ClosedByClient},
			evidence: []string{"client→proxy: client sent close 1000 at 12:00:09.000"},
		},
		{
			name:     "client closes with an application code",
			by:       "close frame",
			chain:    upgradedChain(dir(5, 9, 4001, 9), dir(5, 9, 4001, 9.1), dir(5, 9, 4001, 9.05), dir(5, 9, 4001, 9.06), proxyEnds, backendEnds),
			code:     ClosedByClient,
			hop:      HopSession,
			evidence: []string{"client→proxy: client sent close 4001 at 12:00:09.000"},
			fix:      "the client ended the session with close code 4001",
		},
		{
			name:     "backend closes with an application code",
			by:       "close frame",
			chain:    upgradedChain(dir(5, 9, 1000, 9.2), dir(5, 9, 4000, 9.1), dir(5, 9, 1000, 9.15), dir(5, 9, 4000, 9), proxyEnds, backendEnds),
			code:     ClosedByBackend,
			hop:      HopSession,
			evidence: []string{"backend→proxy: backend sent close 4000 at 12:00:09.000"},
			fix:      "close code 4000",
		},
		{
			name: "unmasked client frame",
			by:   "frame protocol error",
			chain: upgradedChain(func() reassembly.WSDir {
				d := dir(5, 9, 0, 0)
				d.ProtocolError, d.ErrorAt = "unmasked client frame", at(2)
				return d
			}(), dir(5, 9, 1002, 2.1), dir(5, 9, 0, 0), dir(5, 9, 0, 0), proxyEnds, ends(reassembly.SideClient, reassembly.CloseFIN, at(2.2))),
			code: FrameProtocolError,
			hop:  HopSession,
			// the proxy's 1002 to the client counts as the far end's close
			findings: []Code{FrameProtocolError, AbnormalClose, ClosedByBackend},
			evidence: []string{"client→proxy: client sent an invalid frame at 12:00:02.000: unmasked client frame"},
		},
		{
			name: "backend refuses a big message with 1009, relayed",
			by:   "message too big",
			chain: upgradedChain(dir(5, 9, 1000, 9.2), dir(5, 9, 1009, 9.1), func() reassembly.WSDir {
				d := dir(5, 9, 1000, 9.15)
				d.MaxFrame = 1 << 20
				return d
			}(), dir(5, 9, 1009, 9), proxyEnds, backendEnds),
			code:     MessageTooBig,
			hop:      HopSession,
			findings: []Code{MessageTooBig},
			evidence: []string{"backend→proxy: backend sent close 1009 at 12:00:09.000, after a 1.0 MiB frame from the proxy", "proxy→client: relayed to the client (close 1009)"},
		},
		{
			name: "backend resets in the middle of a large message",
			by:   "message too big",
			chain: upgradedChain(dir(5, 9, 0, 0), dir(5, 9, 0, 0), func() reassembly.WSDir {
				d := dir(5, 9, 0, 0)
				d.MaxFrame, d.InMessage = 1<<20, true
				return d
			}(), dir(5, 9, 0, 0), ends(reassembly.SideServer, reassembly.CloseRST, at(9.5)), ends(reassembly.SideServer, reassembly.CloseRST, at(9.4))),
			code:     MessageTooBig,
			hop:      HopSession,
			findings: []Code{MessageTooBig, AbnormalClose},
			evidence: []string{"backend→proxy: the backend ended the connection (RST) in the middle of a 1.0 MiB message, without a close frame"},
		},
		{
			name: "nginx closes an idle tunnel after 60 s",
			by:   "proxy's idle timeout",
			chain: upgradedChain(dir(5, 1, 0, 0), dir(5, 1, 0, 0), dir(5, 1, 0, 0), dir(5, 1, 0, 0),
				ends(reassembly.SideServer, reassembly.CloseFIN, at(61)), ends(reassembly.SideClient, reassembly.CloseFIN, at(61))),
			code:     IdleTimeout,
			hop:      HopSession,
			evidence: []string{"no frame in either direction for 60.00s (last at 12:00:01.000)", "no pings were sent"},
			errorLog: "while proxying upgraded connection",
			fix:      "(60 s is nginx's default), e.g. proxy_read_timeout 1h",
		},
		{
			name:     "frames in from the client that never reached the backend",
			by:       "frames not relayed",
			chain:    upgradedChain(dir(10, 9, 1000, 9), dir(5, 9, 1000, 9.1), dir(2, 9, 1000, 9.05), dir(5, 9, 1000, 9.06), proxyEnds, backendEnds),
			code:     FramesNotRelayed,
			hop:      HopSession,
			findings: []Code{FramesNotRelayed, ClosedByClient},
			evidence: []string{"client→proxy: 10 frames (100 bytes); proxy→backend: 2 frames (20 bytes)"},
		},
		{
			name:     "client resets without a close frame",
			by:       "abnormal close",
			chain:    upgradedChain(dir(5, 9, 0, 0), dir(5, 9, 0, 0), dir(5, 9, 0, 0), dir(5, 9, 0, 0), ends(reassembly.SideClient, reassembly.CloseRST, at(9.5)), ends(reassembly.SideClient, reassembly.CloseFIN, at(9.6))),
			code:     AbnormalClose,
			hop:      HopSession,
			evidence: []string{"client→proxy: the client reset the connection (RST) at 12:00:09.500"},
		},
	}
}

// allCases are the rule cases of every file.
func allCases() []ruleCase {
	var all []ruleCase
	for _, cs := range [][]ruleCase{handshakeCases(), sessionCases(), h2Cases(), crossCases(), configCases(), midCases(), nodeCases()} {
		all = append(all, cs...)
	}
	return all
}

// Every rule in the table has a case about it, so a new rule comes with
// one.
func TestRulesCovered(t *testing.T) {
	named := map[string]bool{}
	for _, c := range allCases() {
		named[c.by] = true
	}
	for _, r := range rules {
		if !named[r.name] {
			t.Errorf("no rule case is about %q", r.name)
		}
	}
}

// The table's rules have distinct names, and each judges some kind of
// attempt.
func TestRuleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.name] || r.name == "" || r.on&anyKind == 0 || r.find == nil {
			t.Errorf("rule %q: a duplicate name, no name, no kind or no func", r.name)
		}
		seen[r.name] = true
	}
	if len(rules) > 255 {
		t.Errorf("%d rules: finding.by holds 255", len(rules))
	}
}

// Every code judge() emits as primary has a case above, so a new rule
// comes with one (codes decided elsewhere are listed with where).
func TestRuleCasesCoverCodes(t *testing.T) {
	elsewhere := map[Code]string{
		TLSHandshakeFailed: "tls.go; goldens", EncryptedLeg: "a note; goldens", PlainHTTP: "plain()",
		HostRewritten: "a note", PathRewritten: "a note", ClientHTTP2: "a note; h2Cases",
		ConfigHeadersNotInherited: "a note; configCases", HandshakeNotCaptured: "a note; midCases, goldens",
		ExtensionsStripped: "a note; nodeCases",
	}
	covered := map[Code]bool{}
	for _, c := range allCases() {
		covered[c.code] = true
	}
	for _, r := range table {
		if elsewhere[r.code] == "" && !covered[r.code] {
			t.Errorf("no rule case has %s as its code", r.code)
		}
	}
}
