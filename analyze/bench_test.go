package analyze

import (
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	rs "github.com/wsdiag/wsdiag/reassembly"
)

// BenchmarkPairing feeds the analyzer the events of 1 000 proxied
// attempts at once, concurrent in time (nginx's shape: the key forwarded,
// Upgrade dropped on half of them), plus as many keyless keep-alive GETs
// that must be paired by method, path, X-Forwarded-For and time, and
// decides them all. One op is one attempt or GET with both legs; it
// includes judging and the verdict's evidence, which allocate.
func BenchmarkPairing(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i += 2 * n {
		f := newFeeder(Options{Grace: time.Second, MaxPending: 100000})
		var answers []func()
		for j := 0; j < n; j++ {
			at := time.Duration(j) * 50 * time.Microsecond
			client := fmt.Sprintf("10.0.%d.%d:%d", j>>8&255, j&255, 20000+j)
			var k [16]byte
			k[0], k[1] = byte(j), byte(j>>8)
			key := base64.StdEncoding.EncodeToString(k[:])
			up := fmt.Sprintf("127.0.0.1:%d", 40000+j)
			_, a1 := f.exchange(client, "127.0.0.1:8080", at, 2*time.Millisecond, wsReq(key, "127.0.0.1:8080"), "GET /ws HTTP/1.1", 101, accept(key))
			upReq := rs.Headers{{Name: "Host", Value: "127.0.0.1"}, {Name: "Sec-WebSocket-Key", Value: key}}
			status := 400
			if j%2 == 0 {
				upReq = wsReq(key, "127.0.0.1")
				status = 101
			}
			_, a2 := f.exchange(up, "127.0.0.1:9001", at+100*time.Microsecond, time.Millisecond, upReq, "GET /ws HTTP/1.1", status, accept(key))
			xff := rs.Header{Name: "X-Forwarded-For", Value: client[:len(client)-6]}
			_, a3 := f.exchange(client, "127.0.0.1:8080", at+10*time.Microsecond, 2*time.Millisecond, rs.Headers{{Name: "Host", Value: "h"}}, "GET /api HTTP/1.1", 200, nil)
			_, a4 := f.exchange(fmt.Sprintf("127.0.0.1:%d", 50000+j), "127.0.0.1:9001", at+110*time.Microsecond, time.Millisecond, rs.Headers{{Name: "Host", Value: "h"}, xff}, "GET /api HTTP/1.0", 200, nil)
			answers = append(answers, a2, a1, a4, a3)
		}
		for _, a := range answers {
			a()
		}
		f.a.Finish()
		if len(f.vs) < n {
			b.Fatalf("%d verdicts", len(f.vs))
		}
	}
}
