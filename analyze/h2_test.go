package analyze

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/wsdiag/wsdiag/reassembly"
)

// h2Leg is an RFC 8441 client leg: extended CONNECT on stream 1, answered
// status (0: none) on the same stream; reset makes the answer RST_STREAM.
func h2Leg(advertised bool, status int, reset bool) *exchange {
	h := reassembly.Headers{{Name: ":method", Value: "CONNECT"}, {Name: ":protocol", Value: "websocket"}, {Name: ":scheme", Value: "https"},
		{Name: ":path", Value: "/ws"}, {Name: ":authority", Value: "example.org"}, {Name: "sec-websocket-version", Value: "13"},
		{Name: "origin", Value: "https://example.org"}}
	x := legX(0, "10.0.0.5:50000", "192.0.2.1:443", "CONNECT /ws HTTP/2", h, status, nil)
	x.req.H2 = &reassembly.H2Stream{ID: 1, Protocol: "websocket", ServerSettings: true, ConnectProtocol: advertised}
	if x.resp != nil {
		x.resp.Version = "HTTP/2"
		x.resp.Headers = reassembly.Headers{{Name: ":status", Value: strconv.Itoa(status)}}
	}
	if reset {
		at := t0.Add(50 * ms)
		x.resp = &reassembly.Response{Conn: x.req.Conn, Version: "HTTP/2", Reason: "RST_STREAM PROTOCOL_ERROR", Reset: true, ResetCode: 1,
			ResetBy: reassembly.SideServer, Start: at, End: at, Request: x.req}
	}
	return x
}

// failedTLS puts a proxy's TLS connection to the backend, ended after a
// failed handshake, among the analyzer's TLS legs.
func failedTLS(a *Analyzer, in reassembly.TLSInfo, closeBy reassembly.Side) {
	c := reassembly.Conn{ID: 99, Client: netip.MustParseAddrPort("192.0.2.1:41000"), Server: netip.MustParseAddrPort("192.0.2.9:443")}
	start := t0.Add(2 * ms)
	e := &reassembly.ConnEnd{Conn: c, First: start, Last: start.Add(3 * ms), SYN: true, SYNACK: true, TLS: true, TLSInfo: &in, Reason: reassembly.EndClosed}
	cl := reassembly.Close{Kind: reassembly.CloseFIN, Time: start.Add(2 * ms)}
	if closeBy == reassembly.SideServer {
		e.ServerClose = cl
	} else {
		e.ClientClose = cl
	}
	a.tlsLegs[c.ID] = &tlsLeg{conn: c, start: start, end: e}
}

func h2Cases() []ruleCase {
	ws := wsReq(key1, "example.org")
	ok := accept(key1)
	nginx502 := func() *exchange {
		x := withBody(legX(0, "10.0.0.5:50000", "192.0.2.1:80", "GET /ws HTTP/1.1", ws, 502, reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}}), nginxPage)
		return x
	}
	return []ruleCase{
		{
			name: "HTTP/2 extended CONNECT relayed as an HTTP/1.1 upgrade",
			by:   "HTTP/2 client leg",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{h2Leg(true, 200, false), upLeg("GET /ws HTTP/1.1", ws, 101, ok)}
			},
			code: OK, hop: HopNone, findings: []Code{ClientHTTP2},
			evidence: []string{"HTTP/2 stream 1: CONNECT /ws HTTP/2 (:protocol websocket)"},
		},
		{
			name: "HTTP/2: the proxy drops the upgrade it had to make",
			by:   "proxy's requests",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{h2Leg(true, 400, false), upLeg("GET /ws HTTP/1.0", without(ws, "Upgrade", "Connection"), 400, nil)}
			},
			code: UpgradeHeaderDropped, hop: HopProxy,
			findings: []Code{UpgradeHeaderDropped, ClientHTTP2, ConnectionNotUpgrade, UpstreamHTTP10},
			evidence: []string{"with :protocol websocket (HTTP/2 extended CONNECT)", "proxy→backend: no Upgrade header"},
		},
		{
			name:  "HTTP/2 extended CONNECT never advertised, answered 400 by the proxy",
			by:    "HTTP/2 client leg",
			chain: func(*Analyzer) []*exchange { return []*exchange{h2Leg(false, 400, false)} },
			code:  H2WebSocketRefused, hop: HopProxy,
			findings: []Code{H2WebSocketRefused, ClientHTTP2},
			evidence: []string{"SETTINGS without SETTINGS_ENABLE_CONNECT_PROTOCOL", "HTTP/2 400"},
			fix:      "RFC 8441",
		},
		{
			name:  "HTTP/2 extended CONNECT reset by the proxy",
			by:    "HTTP/2 client leg",
			chain: func(*Analyzer) []*exchange { return []*exchange{h2Leg(true, 0, true)} },
			code:  H2WebSocketRefused, hop: HopProxy, findings: []Code{H2WebSocketRefused, ClientHTTP2},
			evidence: []string{"stream reset (RST_STREAM PROTOCOL_ERROR)"},
		},
		{
			name: "upstream TLS without SNI refused by the backend",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				failedTLS(a, reassembly.TLSInfo{ClientHello: true, OfferedVersions: []uint16{0x0303}, CipherSuites: 20,
					Alerts: []reassembly.TLSAlert{{Level: 2, Description: 112, Time: t0.Add(3 * ms)}}}, reassembly.SideServer)
				return []*exchange{nginx502()}
			},
			code: UpstreamTLSFailed, hop: HopConnect,
			evidence: []string{"no SNI", "alert 112 unrecognized_name (fatal)", "the backend refused the proxy's handshake"},
			fix:      "proxy_ssl_server_name on",
		},
		{
			name: "upstream TLS: the proxy refuses the backend's certificate",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				failedTLS(a, reassembly.TLSInfo{ClientHello: true, ServerHello: true, SNI: "backend.example", Version: 0x0303,
					Alerts: []reassembly.TLSAlert{{Level: 2, Description: 48, FromClient: true, Time: t0.Add(3 * ms)}}}, reassembly.SideClient)
				return []*exchange{nginx502()}
			},
			code: UpstreamTLSFailed, hop: HopConnect,
			evidence: []string{"alert 48 unknown_ca (fatal)", "the proxy refused the backend's certificate"},
			fix:      "proxy_ssl_trusted_certificate",
		},
		{
			name: "upstream TLS to a plain HTTP port",
			by:   "one leg: who answered",
			chain: func(a *Analyzer) []*exchange {
				failedTLS(a, reassembly.TLSInfo{ClientHello: true, SNI: "backend.example", Malformed: "server→client: not a TLS record (type 0x48, version 0x5454)"}, reassembly.SideServer)
				return []*exchange{nginx502()}
			},
			code: UpstreamSchemeMismatch, hop: HopConnect,
			evidence: []string{"bytes that are not TLS"}, fix: "proxy_pass http://",
		},
		{
			name: "plain HTTP to a TLS port: Go's 400",
			by:   "plain HTTP to a TLS backend",
			chain: func(*Analyzer) []*exchange {
				return []*exchange{clientLeg(ws, 400, nil), withBody(upLeg("GET /ws HTTP/1.1", ws, 400, nil), "Client sent an HTTP request to an HTTPS server.\n")}
			},
			code: UpstreamSchemeMismatch, hop: HopConnect,
			evidence: []string{`"Client sent an HTTP request to an HTTPS server."`}, fix: "proxy_pass https://",
		},
	}
}

func TestH2AndUpstreamTLSRules(t *testing.T) { runRuleCases(t, h2Cases()) }

// A failed TLS handshake from a proxy host is held back while an attempt
// through that proxy waits for its answer, then claimed as its upstream
// leg; with no attempt to claim it, it is a client's failure as before.
func TestUpstreamTLSHeldBack(t *testing.T) {
	var out []*Verdict
	a := New(DefaultOptions, func(v *Verdict) { out = append(out, v) })
	start := t0.Add(2 * ms)
	c := reassembly.Conn{ID: 7, Client: netip.MustParseAddrPort("192.0.2.1:41000"), Server: netip.MustParseAddrPort("192.0.2.9:443")}
	in := reassembly.TLSInfo{ClientHello: true, Alerts: []reassembly.TLSAlert{{Level: 2, Description: 80, Time: start.Add(ms)}}}
	end := &reassembly.ConnEnd{Conn: c, First: start, Last: start.Add(2 * ms), TLS: true, TLSInfo: &in, Reason: reassembly.EndClosed,
		ServerClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: start.Add(2 * ms)}}
	x := nginxAttempt()
	a.Request(x.req)
	a.TLSStart(&reassembly.TLSStart{Conn: c, Time: start})
	a.ConnEnd(end)
	if len(out) != 0 {
		t.Fatalf("the failure was reported before the attempt could claim it: %v", out[0].Code)
	}
	a.Response(x.resp)
	a.Finish()
	if len(out) != 1 || out[0].Code != UpstreamTLSFailed {
		t.Fatalf("got %v, want one upstream_tls_failed", codes(out))
	}

	out = nil
	b := New(DefaultOptions, func(v *Verdict) { out = append(out, v) })
	b.TLSStart(&reassembly.TLSStart{Conn: c, Time: start})
	b.ConnEnd(end)
	b.Finish()
	if len(out) != 1 || out[0].Code != TLSHandshakeFailed {
		t.Fatalf("alone: got %v, want tls_handshake_failed", codes(out))
	}
}

func nginxAttempt() *exchange {
	x := legX(0, "10.0.0.5:50000", "192.0.2.1:80", "GET /ws HTTP/1.1", wsReq(key1, "example.org"), 502, reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}})
	x.resp.Body = nginxPage
	x.resp.Start, x.resp.End = t0.Add(10*ms), t0.Add(10*ms)
	return x
}

func codes(vs []*Verdict) []Code {
	var out []Code
	for _, v := range vs {
		out = append(out, v.Code)
	}
	return out
}
