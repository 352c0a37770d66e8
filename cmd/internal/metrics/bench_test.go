package metrics

import (
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// The metric updates one attempt costs: its verdict and, for a tunnel, its
// two legs' ends. cmd/wsdiag's BenchmarkMetricsOverhead sets them against
// live's whole work per attempt.

// attemptEvents returns concurrent-20's verdicts and, per verdict, the
// ends of its tunnel's two legs (none for a failed upgrade).
func attemptEvents(b *testing.B) ([]*analyze.Verdict, [][]*reassembly.ConnEnd) {
	m := New(DefaultOptions)
	var vs []*analyze.Verdict
	for _, v := range replay(b, m, "concurrent-20.pcap") {
		if v.Attempt() {
			vs = append(vs, v)
		}
	}
	return vs, tunnelEnds(vs)
}

// tunnelEnds makes, per verdict, the ends of its tunnel's two legs (none
// for a failed upgrade), a second after its 101.
func tunnelEnds(vs []*analyze.Verdict) [][]*reassembly.ConnEnd {
	ends := make([][]*reassembly.ConnEnd, len(vs))
	for i, v := range vs {
		if v.StatusClient != 101 {
			continue
		}
		for _, l := range v.Legs {
			ends[i] = append(ends[i], &reassembly.ConnEnd{Conn: reassembly.Conn{Client: l.Client, Server: l.Server},
				Upgraded: true, ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: l.Times.Response.Add(time.Second)}})
		}
	}
	return ends
}

// BenchmarkAttemptUpdates: the metric updates of one attempt.
func BenchmarkAttemptUpdates(b *testing.B) {
	vs, ends := attemptEvents(b)
	m := New(DefaultOptions)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(vs)
		m.Verdict(vs[k])
		for _, e := range ends[k] {
			m.ConnEnd(e)
		}
	}
}
