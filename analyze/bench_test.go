package analyze

import (
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// pairingEvents builds the events of n proxied attempts, concurrent in
// time (nginx's shape: the key forwarded, Upgrade dropped on half of
// them), and n keyless keep-alive GETs that must be paired by method,
// path, X-Forwarded-For and time: requests first, then the answers and
// connection ends, upstream legs before client legs.
func pairingEvents(n int) (reqs []*reassembly.Request, resps []*reassembly.Response, ends []*reassembly.ConnEnd) {
	var id reassembly.ConnID
	var later []func()
	leg := func(client, server string, at, took time.Duration, h reassembly.Headers, method, target, version string, status int, rh reassembly.Headers) {
		id++
		c := reassembly.Conn{ID: id, Client: ap(client), Server: ap(server)}
		r := &reassembly.Request{Conn: c, Method: method, Target: target, Version: version, Headers: h, Start: t0.Add(at), End: t0.Add(at)}
		reqs = append(reqs, r)
		later = append(later, func() {
			resps = append(resps, &reassembly.Response{Conn: c, Version: "HTTP/1.1", Status: status, Headers: rh, Start: t0.Add(at + took), End: t0.Add(at + took), Request: r})
			ends = append(ends, &reassembly.ConnEnd{Conn: c, First: t0.Add(at), Last: t0.Add(at + took), HTTP: true, Reason: reassembly.EndClosed,
				ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: t0.Add(at + took)}, ServerClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: t0.Add(at + took)}})
		})
	}
	for j := 0; j < n; j++ {
		at := time.Duration(j) * 50 * time.Microsecond
		ip := fmt.Sprintf("10.0.%d.%d", j>>8&255, j&255)
		client := fmt.Sprintf("%s:%d", ip, 20000+j)
		var k [16]byte
		k[0], k[1] = byte(j), byte(j>>8)
		key := base64.StdEncoding.EncodeToString(k[:])
		upReq, status := reassembly.Headers{{Name: "Host", Value: "127.0.0.1"}, {Name: "Sec-WebSocket-Key", Value: key}}, 400
		if j%2 == 0 {
			upReq, status = wsReq(key, "127.0.0.1"), 101
		}
		leg(fmt.Sprintf("127.0.0.1:%d", 40000+j), "127.0.0.1:9001", at+100*time.Microsecond, time.Millisecond, upReq, "GET", "/ws", "HTTP/1.1", status, accept(key))
		leg(client, "127.0.0.1:8080", at, 2*time.Millisecond, wsReq(key, "127.0.0.1:8080"), "GET", "/ws", "HTTP/1.1", 101, accept(key))
		leg(fmt.Sprintf("127.0.0.1:%d", 50000+j), "127.0.0.1:9001", at+110*time.Microsecond, time.Millisecond,
			reassembly.Headers{{Name: "Host", Value: "h"}, {Name: "X-Forwarded-For", Value: ip}}, "GET", "/api", "HTTP/1.0", 200, nil)
		leg(client, "127.0.0.1:8080", at+10*time.Microsecond, 2*time.Millisecond, reassembly.Headers{{Name: "Host", Value: "h"}}, "GET", "/api", "HTTP/1.1", 200, nil)
	}
	for _, f := range later {
		f()
	}
	return reqs, resps, ends
}

// BenchmarkPairing feeds the analyzer the events of 1 000 proxied attempts
// and 1 000 keep-alive GETs (built before the timer) and decides them all.
// One op is one attempt or GET with both legs: pairing, judging, the
// verdict and its evidence (which allocate).
func BenchmarkPairing(b *testing.B) {
	const n = 1000
	reqs, resps, ends := pairingEvents(n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 2 * n {
		verdicts := 0
		a := New(Options{Grace: time.Second, MaxPending: 100000}, func(*Verdict) { verdicts++ })
		for _, r := range reqs {
			a.Request(r)
		}
		for k := range resps {
			a.Response(resps[k])
			a.ConnEnd(ends[k])
		}
		a.Finish()
		if verdicts != n {
			b.Fatalf("%d verdicts, want %d", verdicts, n)
		}
	}
}

// BenchmarkJudge judges representative chains, built before the timer:
// an upgraded two-leg attempt with its session, nginx's default upstream
// request (upgrade dropped), one leg answered by the proxy itself, and a
// two-leg upgrade without its session.
// One op is one attempt judged into its verdict.
func BenchmarkJudge(b *testing.B) {
	ws, ok := wsReq(key1, "example.org"), accept(key1)
	nginx := reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}}
	up := with(without(ws, "Upgrade"), "Connection", "close")
	a := New(DefaultOptions, func(*Verdict) {})
	cases := [][]*exchange{
		upgradedChain(dir(5, 9, 1000, 9), dir(5, 9, 1000, 9.1), dir(5, 9, 1000, 9.05), dir(5, 9, 1000, 9.06),
			ends(reassembly.SideServer, reassembly.CloseFIN, at(10)), ends(reassembly.SideServer, reassembly.CloseFIN, at(10)))(a),
		{clientLeg(ws, 400, nginx), upLeg("GET /ws HTTP/1.0", up, 400, nil)},
		{withBody(clientLeg(ws, 403, nginx), nginxPage)},
		{clientLeg(ws, 101, ok), upLeg("GET /ws HTTP/1.1", ws, 101, ok)},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := cases[i%len(cases)]
		if v := judge(c, a, nil, ConfNone); v == nil {
			b.Fatal("no verdict")
		}
	}
}
