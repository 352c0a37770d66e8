package main

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/cmd/internal/metrics"
	"github.com/wsdiag/wsdiag/reassembly"
)

// BenchmarkMetricsOverhead measures what the budget is about: metric
// updates under 1 % of live's CPU. On concurrent-20 (real nginx traffic:
// 20 attempts, half of them tunnels, 20 plain keep-alive GETs) repeated 100
// times, 10 s apart, each iteration times live's work on the packets
// (decoding, reassembly, HTTP and frame parsing, pairing, verdicts as JSON
// lines as the service writes them; the file's reader stands in for the
// capture ring, so live's real cost is higher and the ratio lower), then
// the metric updates of the same attempts (each verdict and, for a tunnel,
// its two legs' ends). Timed apart, the ratio does not drown in the
// pipeline's run-to-run noise. It also reports the updates' share of one
// core at 100 000 packets/s of such traffic.
func BenchmarkMetricsOverhead(b *testing.B) {
	data := repeatedCapture(b, "../../testdata/captures/concurrent-20.pcap", 100)
	var vs []*analyze.Verdict
	livePipeline(b, data, &vs)
	ends := tunnelEnds(vs)
	m := metrics.New(metrics.DefaultOptions)
	s := m.Sink(nopSink{})
	var packets int
	var pipe, upd time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		packets = livePipeline(b, data, nil)
		t1 := time.Now()
		for k, v := range vs {
			m.Verdict(v)
			for _, e := range ends[k] {
				s.ConnEnd(e)
			}
		}
		upd += time.Since(t1)
		pipe += t1.Sub(t0)
	}
	attempts := len(vs)
	perAttempt := float64(upd.Nanoseconds()) / float64(b.N*attempts)
	b.ReportMetric(float64(pipe.Nanoseconds())/float64(b.N*packets), "live-ns/packet")
	b.ReportMetric(perAttempt, "metrics-ns/attempt")
	b.ReportMetric(float64(packets)/float64(attempts), "packets/attempt")
	b.ReportMetric(100*float64(upd)/float64(pipe), "overhead-%")
	b.ReportMetric(100*1e5*float64(attempts)/float64(packets)*perAttempt/1e9, "%core@100kpps")
}

// livePipeline does live's work on a capture in memory: decided 500 ms
// after each handshake, verdicts rendered as JSON lines. It returns the
// packets read and keeps the attempts' verdicts when keep is not nil.
func livePipeline(b *testing.B, data []byte, keep *[]*analyze.Verdict) (packets int) {
	r, err := capture.NewReader("bench", bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	opt := analyze.DefaultOptions
	opt.Grace = 500 * time.Millisecond
	rend := newRenderer("json", io.Discard, 0, false, false)
	an := analyze.New(opt, func(v *analyze.Verdict) {
		rend.verdict(v)
		if keep != nil && v.Attempt() {
			*keep = append(*keep, v)
		}
	})
	asm := reassembly.New(an, reassembly.DefaultOptions)
	var last time.Time
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		packets++
		asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
		if now := p.CI.Timestamp; now.Sub(last) >= 100*time.Millisecond {
			an.Decide(now)
			last = now
		}
	}
	asm.Close()
	an.Finish()
	return packets
}

type nopSink struct{}

func (nopSink) Request(*reassembly.Request)   {}
func (nopSink) Response(*reassembly.Response) {}
func (nopSink) ConnEnd(*reassembly.ConnEnd)   {}

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
				Upgraded: true, ClientClose: reassembly.Close{Kind: reassembly.CloseFIN, Time: l.ResponseTime.Add(time.Second)}})
		}
	}
	return ends
}

// repeatedCapture returns the capture at path n times over, each copy 10 s
// after the previous one ended (its connections reuse the 4-tuples and keys
// of the copy before, long closed and decided by then).
func repeatedCapture(b *testing.B, path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	type pkt struct {
		ci   gopacket.CaptureInfo
		data []byte
	}
	var pkts []pkt
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		pkts = append(pkts, pkt{ci, data})
	}
	span := pkts[len(pkts)-1].ci.Timestamp.Sub(pkts[0].ci.Timestamp) + 10*time.Second
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		for _, p := range pkts {
			ci := p.ci
			ci.Timestamp = ci.Timestamp.Add(time.Duration(i) * span)
			if err := w.WritePacket(ci, p.data); err != nil {
				b.Fatal(err)
			}
		}
	}
	return buf.Bytes()
}
