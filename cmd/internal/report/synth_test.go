package report

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// synthVerdicts makes n verdicts shaped like those of a busy nginx: two
// legs with full header blocks (a fresh key and accept each), the legs'
// event times, sessions of up to ten minutes, spread over an hour; 70 %
// ok, the rest nginx's usual failures. Only for size and load tests: the
// verdicts of real captures are tested in cmd/wsdiag.
func synthVerdicts(n int) []*analyze.Verdict {
	rnd := mrand.New(mrand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC)
	proxy := netip.MustParseAddrPort("10.0.0.2:443")
	backend := netip.MustParseAddrPort("10.0.1.5:9001")
	paths := []string{"/ws", "/ws/chat", "/socket.io/?EIO=4&transport=websocket", "/api/stream", "/live/feed"}
	out := make([]*analyze.Verdict, n)
	us := func(d int) time.Duration { return time.Duration(d) * time.Microsecond }
	for i := range out {
		start := t0.Add(time.Duration(rnd.Int64N(int64(time.Hour))))
		key := randB64(16)
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, byte(rnd.IntN(4)), byte(1 + rnd.IntN(250))}), uint16(30000+rnd.IntN(30000)))
		up := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), uint16(30000+rnd.IntN(30000)))
		path := paths[rnd.IntN(len(paths))]
		code := analyze.OK
		switch p := rnd.IntN(100); {
		case p < 20:
			code = analyze.UpgradeHeaderDropped
		case p < 25:
			code = analyze.BackendRejected
		case p < 28:
			code = analyze.IdleTimeout
		case p < 30:
			code = analyze.UpstreamConnectFailed
		}
		hop, sev := analyze.Describe(code)
		v := &analyze.Verdict{Time: start, Code: code, Severity: sev, Hop: hop, Findings: []analyze.Code{code},
			Client: client, Proxy: proxy, Backend: backend, ProxyProduct: "nginx/1.22.1", Path: path, PairConfidence: analyze.ConfExact}
		ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0"
		ext := "permessage-deflate; client_max_window_bits"
		reqA := hdrs("Host", "example.com", "User-Agent", ua, "Connection", "Upgrade", "Upgrade", "websocket",
			"Origin", "https://example.com", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", key,
			"Sec-WebSocket-Extensions", ext, "Cookie", "session="+randB64(12))
		reqB := hdrs("Host", "example.com", "X-Forwarded-For", client.Addr().String(), "Connection", "upgrade", "Upgrade", "websocket",
			"User-Agent", ua, "Origin", "https://example.com", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", key,
			"Sec-WebSocket-Extensions", ext)
		versionB := "HTTP/1.1"
		status, statusLine := 101, "HTTP/1.1 101 Switching Protocols"
		resp := hdrs("Upgrade", "websocket", "Connection", "upgrade", "Sec-WebSocket-Accept", analyze.AcceptFor(key))
		switch code {
		case analyze.UpgradeHeaderDropped:
			versionB = "HTTP/1.0"
			reqB = append(hdrs("Host", "example.com", "Connection", "close"), reqA[1], reqA[4], reqA[5], reqA[6])
			status, statusLine = 400, "HTTP/1.1 400 Bad Request"
			resp = hdrs("Content-Type", "text/plain; charset=utf-8", "Content-Length", "12")
			v.Evidence = []string{"client→proxy: Upgrade: websocket", "proxy→backend: no Upgrade header", "client→proxy: Connection: Upgrade",
				"proxy→backend: Connection: close", "proxy→backend request line: GET " + path + " HTTP/1.0"}
			v.Fix = "nginx does not forward the client's Upgrade and Connection headers unless told to; add:\n  proxy_http_version 1.1;\n  proxy_set_header Upgrade $http_upgrade;\n  proxy_set_header Connection $connection_upgrade;"
		case analyze.BackendRejected:
			status, statusLine = 403, "HTTP/1.1 403 Forbidden"
			resp = hdrs("Content-Type", "text/plain", "Content-Length", "9")
			v.Evidence = []string{"backend→proxy: HTTP/1.1 403 Forbidden", "the backend refused a correct upgrade"}
			v.Fix = "the backend refused the upgrade: check its Origin check and authentication"
		case analyze.IdleTimeout:
			v.Evidence = []string{fmt.Sprintf("no frame in either direction for 60.00s (last at %s); then the proxy closed both legs", start.Add(time.Minute).Format("15:04:05.000"))}
			v.Fix = "raise proxy_read_timeout, or send pings more often than it"
		case analyze.UpstreamConnectFailed:
			status, statusLine = 502, "HTTP/1.1 502 Bad Gateway"
			v.Evidence = []string{"proxy→backend: SYN answered by RST (connection refused)", "proxy→client: HTTP/1.1 502 Bad Gateway"}
			v.Fix = "nothing listens at the backend address: start the backend or fix proxy_pass"
			v.ErrorLog = `connect() failed (111: Connection refused) while connecting to upstream, upstream: "http://10.0.1.5:9001/ws"`
		}
		v.StatusClient = status
		a := analyze.Leg{Client: client, Server: proxy, RequestLine: "GET " + path + " HTTP/1.1", StatusLine: statusLine, Status: status,
			RequestHeaders: reqA, ResponseHeaders: append(hdrs("Server", "nginx/1.22.1", "Date", start.Format(time.RFC1123)), resp...)}
		a.Times = analyze.LegTimes{Open: start.Add(-us(300)), SYN: true, SYNACK: true, Request: start, Response: start.Add(us(1500 + rnd.IntN(3000)))}
		session := time.Duration(rnd.Int64N(int64(10 * time.Minute)))
		if code == analyze.IdleTimeout {
			session = 61 * time.Second
		}
		end := a.Times.Response.Add(session)
		if status == 101 {
			a.Times.FirstFrameC2S, a.Times.FirstFrameS2C = a.Times.Response.Add(us(800)), a.Times.Response.Add(us(1900))
			a.Times.CloseFrameC2S, a.Times.CloseCodeC2S = end, 1000
			a.Times.CloseFrameS2C, a.Times.CloseCodeS2C = end.Add(us(900)), 1000
			v.Session = &analyze.Session{Duration: session, FramesC2S: uint64(rnd.IntN(500)), FramesS2C: uint64(rnd.IntN(500)),
				BytesC2S: uint64(rnd.IntN(1 << 20)), BytesS2C: uint64(rnd.IntN(1 << 20)), LongestSilence: session / 3, ClosedBy: "client",
				CloseCode: 1000, CloseKind: "FIN"}
		}
		a.Times.ClientEnd, a.Times.ClientEndKind = end.Add(us(1200)), "FIN"
		a.Times.ServerEnd, a.Times.ServerEndKind = end.Add(us(1400)), "FIN"
		a.Times.Last = end.Add(us(1500))
		v.Legs = []analyze.Leg{a}
		if code == analyze.UpstreamConnectFailed {
			v.Connects = []analyze.Connect{{Client: up, Server: backend, Start: start.Add(us(200)), Last: start.Add(us(260)), End: "RST"}}
		} else {
			b := analyze.Leg{Client: up, Server: backend, RequestLine: "GET " + path + " " + versionB, StatusLine: statusLine, Status: status,
				RequestHeaders: reqB, ResponseHeaders: resp}
			b.Times = a.Times
			b.Times.Open, b.Times.Request, b.Times.Response = start.Add(us(200)), start.Add(us(400)), a.Times.Response.Add(-us(150))
			v.Legs = append(v.Legs, b)
			v.StatusBackend = status
		}
		if code == analyze.OK {
			v.Findings = nil
		}
		out[i] = v
	}
	return out
}

func randB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func hdrs(kv ...string) reassembly.Headers {
	h := make(reassembly.Headers, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, reassembly.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}
