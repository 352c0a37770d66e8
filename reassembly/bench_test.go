package reassembly_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/synth"
	"github.com/wsdiag/wsdiag/reassembly"
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

func (s *nullSink) Request(*reassembly.Request) { s.reqs++ }
func (*nullSink) Response(*reassembly.Response) {}
func (*nullSink) ConnEnd(*reassembly.ConnEnd)   {}

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
			opt := reassembly.DefaultOptions
			if mode == "gopacket" {
				reassembly.GopacketOnly(&opt)
			}
			b.ReportAllocs()
			b.ResetTimer()
			sink := &nullSink{}
			var a *reassembly.Assembler
			for i := 0; i < b.N; i++ {
				j := i % len(segs)
				if j == 0 {
					if a != nil {
						a.Close()
					}
					a = reassembly.New(sink, opt)
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

// BenchmarkHTTPParser measures HTTP/1.1 parsing on one keep-alive
// connection through the fast path: a request header block shaped like a
// browser's, a response with a 512-byte body, each in its own segment.
// One op is one request and its response. Allocations are the events
// (Request, Response, their headers); parsing itself copies nothing.
func BenchmarkHTTPParser(b *testing.B) {
	req := []byte("GET /api/items?page=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n" +
		"Accept: application/json\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Cookie: session=0123456789abcdef\r\nConnection: keep-alive\r\n\r\n")
	resp := append([]byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: application/json\r\nContent-Length: 512\r\n"+
		"Connection: keep-alive\r\n\r\n"), bytes.Repeat([]byte("x"), 512)...)
	ip := layers.IPv4{SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{127, 0, 0, 1}}
	c2s, s2c := ip.NetworkFlow(), ip.NetworkFlow().Reverse()
	sink := &nullSink{}
	a := reassembly.New(sink, reassembly.DefaultOptions)
	var ci gopacket.CaptureInfo
	cseq, sseq := uint32(1), uint32(1)
	q := layers.TCP{SrcPort: 40000, DstPort: 80, ACK: true}
	r := layers.TCP{SrcPort: 80, DstPort: 40000, ACK: true}
	b.ReportAllocs()
	b.SetBytes(int64(len(req) + len(resp)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Seq, q.Payload = cseq, req
		a.Packet(c2s, &q, ci, 0)
		r.Seq, r.Payload = sseq, resp
		a.Packet(s2c, &r, ci, 0)
		cseq += uint32(len(req))
		sseq += uint32(len(resp))
	}
	b.StopTimer()
	if sink.reqs != b.N {
		b.Fatalf("%d requests parsed, want %d", sink.reqs, b.N)
	}
}
