package tlsrec_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This benchmark runs the whole pipeline (reassembly, TLS, HTTP, frames),
// so it is an external test: reassembly imports this package.

// wsFrames builds n WebSocket text frames of size bytes (masked: client's).
func wsFrames(masked bool, size, n int) []byte {
	payload := bytes.Repeat([]byte("x"), size)
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, 0x81)
		if masked {
			b = append(b, 0x80|byte(size), 1, 2, 3, 4)
			for j, c := range payload {
				b = append(b, c^byte(j%4+1))
			}
		} else {
			b = append(b, byte(size))
			b = append(b, payload...)
		}
	}
	return b
}

// tcpSegments turns (direction, bytes) chunks into decoded TCP segments of
// at most 1448 bytes each, after a three-way handshake.
func tcpSegments(tb testing.TB, chunks []tlsrec.PipelineChunk) (gopacket.Flow, [2]gopacket.Flow, []layers.TCP) {
	ips := [2]net.IP{net.IPv4(10, 0, 0, 1).To4(), net.IPv4(10, 0, 0, 2).To4()}
	ports := [2]layers.TCPPort{40000, 443}
	seq := [2]uint32{1000, 5000}
	var out []layers.TCP
	buf := gopacket.NewSerializeBuffer()
	emit := func(d flow.Dir, syn, ack bool, p []byte) {
		ip := layers.IPv4{Version: 4, IHL: 5, Protocol: layers.IPProtocolTCP, SrcIP: ips[d], DstIP: ips[d.Reverse()]}
		t := layers.TCP{SrcPort: ports[d], DstPort: ports[d.Reverse()], Seq: seq[d], Ack: seq[d.Reverse()], SYN: syn, ACK: ack}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, &t, gopacket.Payload(p)); err != nil {
			tb.Fatal(err)
		}
		var dec layers.TCP
		if err := dec.DecodeFromBytes(append([]byte(nil), buf.Bytes()...), gopacket.NilDecodeFeedback); err != nil {
			tb.Fatal(err)
		}
		out = append(out, dec)
		seq[d] += uint32(len(p))
		if syn {
			seq[d]++
		}
		_ = ip
	}
	emit(flow.Fwd, true, false, nil)
	emit(flow.Rev, true, true, nil)
	emit(flow.Fwd, false, true, nil)
	for _, c := range chunks {
		for b := c.B; len(b) > 0; {
			n := min(len(b), 1448)
			emit(c.Dir, false, true, b[:n])
			b = b[n:]
		}
	}
	fwd := (&layers.IPv4{SrcIP: ips[0], DstIP: ips[1]}).NetworkFlow()
	return fwd, [2]gopacket.Flow{fwd, fwd.Reverse()}, out
}

type countReqs struct{ reqs, resps int }

func (c *countReqs) Request(*reassembly.Request)   { c.reqs++ }
func (c *countReqs) Response(*reassembly.Response) { c.resps++ }
func (c *countReqs) ConnEnd(*reassembly.ConnEnd)   {}

// BenchmarkReadTLS: the same WebSocket session (an upgrade, then 1 MB of
// 125-byte frames each way) through the assembler as TLS 1.3 decrypted
// with its key log, and as plaintext. Decrypting is to keep read above
// half its plaintext speed; compare the two ns/op.
func BenchmarkReadTLS(b *testing.B) {
	cf, sf := wsFrames(true, 125, 8000), wsFrames(false, 125, 8000)
	wire, plainChunks, keys, plainLen := tlsrec.PipelineSession(b, cf, sf)
	for _, c := range []struct {
		name   string
		chunks []tlsrec.PipelineChunk
		keys   *tlsrec.KeyLog
	}{{"plaintext", plainChunks, nil}, {"tls13-decrypted", wire, keys}} {
		_, flows, segs := tcpSegments(b, c.chunks)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(plainLen))
			t0 := time.Unix(1700000000, 0)
			for i := 0; i < b.N; i++ {
				sink := &countReqs{}
				opt := reassembly.DefaultOptions
				opt.KeyLog = c.keys
				a := reassembly.New(sink, opt)
				for k := range segs {
					dir := 0
					if segs[k].SrcPort == 443 {
						dir = 1
					}
					a.Packet(flows[dir], &segs[k], gopacket.CaptureInfo{Timestamp: t0}, 0)
				}
				if sink.reqs != 1 || sink.resps != 1 {
					b.Fatalf("%s: %d requests, %d responses", c.name, sink.reqs, sink.resps)
				}
				a.Close()
			}
		})
	}
}
