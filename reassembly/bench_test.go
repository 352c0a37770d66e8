package reassembly_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/cmd/wsbench/synth"
	rs "github.com/wsdiag/wsdiag/reassembly"
)

type seg struct {
	net gopacket.Flow
	tcp layers.TCP
	ci  gopacket.CaptureInfo
}

// synthSegments decodes a synthetic capture into TCP segments.
func synthSegments(b *testing.B, packets int) []seg {
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, packets, 1); err != nil {
		b.Fatal(err)
	}
	r, err := capture.NewReader("synth.pcap", &buf)
	if err != nil {
		b.Fatal(err)
	}
	var out []seg
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
		raw := append(append([]byte(nil), p.TCP.Contents...), p.TCP.Payload...)
		var s seg
		if err := s.tcp.DecodeFromBytes(raw, gopacket.NilDecodeFeedback); err != nil {
			b.Fatal(err)
		}
		s.net, s.ci = p.Net, p.CI
		out = append(out, s)
	}
}

type nullSink struct{ reqs int }

func (s *nullSink) Request(*rs.Request) { s.reqs++ }
func (*nullSink) Response(*rs.Response) {}
func (*nullSink) ConnEnd(*rs.ConnEnd)   {}

// BenchmarkAssembler runs the segments of a synthetic capture (handshakes
// on both legs, WebSocket frames, keep-alive GETs) through an Assembler:
// connection tracking, HTTP parsing and frame parsing, without reading or
// pairing. One op is one segment. "fast" is wsdiag's in-order path,
// "gopacket" the same Assembler with every segment through gopacket's
// reassembly. Allocations are per HTTP message and connection, not per
// segment (allocs/op stays well below 1).
func BenchmarkAssembler(b *testing.B) {
	segs := synthSegments(b, 100000)
	for _, mode := range []string{"fast", "gopacket"} {
		b.Run(mode, func(b *testing.B) {
			opt := rs.DefaultOptions
			if mode == "gopacket" {
				rs.GopacketOnly(&opt)
			}
			b.ReportAllocs()
			b.ResetTimer()
			sink := &nullSink{}
			var a *rs.Assembler
			for i := 0; i < b.N; i++ {
				j := i % len(segs)
				if j == 0 {
					if a != nil {
						a.Close()
					}
					a = rs.New(sink, opt)
				}
				s := &segs[j]
				a.Packet(s.net, &s.tcp, s.ci, 0)
			}
			a.Close()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "segments/s")
			if b.N >= len(segs) && sink.reqs == 0 {
				b.Fatal("no requests parsed")
			}
		})
	}
}
