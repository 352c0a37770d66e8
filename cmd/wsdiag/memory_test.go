package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

type nullSink struct{}

func (nullSink) Request(*reassembly.Request)   {}
func (nullSink) Response(*reassembly.Response) {}
func (nullSink) ConnEnd(*reassembly.ConnEnd)   {}

// openUpgraded feeds n client connections that complete a WebSocket
// handshake (the header blocks of the real nginx captures) and then stay
// idle, and returns the heap in use per connection afterwards.
func openUpgraded(tb testing.TB, n int, sink reassembly.Sink, keep func()) float64 {
	asm := reassembly.New(sink, reassembly.DefaultOptions)
	srv := net.IPv4(127, 0, 0, 1).To4()
	ip := layers.IPv4{Version: 4, Protocol: layers.IPProtocolTCP}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var k [16]byte
	send := func(src, dst net.IP, sp, dp uint16, seq, ack uint32, syn, ackf bool, payload []byte, at time.Time) {
		ip.SrcIP, ip.DstIP = src, dst
		tcp := layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, SYN: syn, ACK: ackf}
		tcp.Payload = payload
		asm.Packet(ip.NetworkFlow(), &tcp, gopacket.CaptureInfo{Timestamp: at}, 0)
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	for i := 0; i < n; i++ {
		cli := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4()
		cp := uint16(1024 + i%60000)
		at := t0.Add(time.Duration(i) * 10 * time.Microsecond)
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		key := base64.StdEncoding.EncodeToString(k[:])
		req := []byte(fmt.Sprintf("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wsdiag-testclient/1 (n=%d)\r\nConnection: Upgrade\r\nOrigin: http://127.0.0.1:8080\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n\r\n", i, key))
		resp := []byte("HTTP/1.1 101 Switching Protocols\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 13:34:41 GMT\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + analyze.AcceptFor(key) + "\r\n\r\n")
		send(cli, srv, cp, 8080, 100, 0, true, false, nil, at)
		send(srv, cli, 8080, cp, 500, 101, true, true, nil, at)
		send(cli, srv, cp, 8080, 101, 501, false, true, nil, at)
		send(cli, srv, cp, 8080, 101, 501, false, true, req, at)
		send(srv, cli, 8080, cp, 501, 101+uint32(len(req)), false, true, resp, at)
		send(cli, srv, cp, 8080, 101+uint32(len(req)), 501+uint32(len(resp)), false, true, nil, at)
	}
	if keep != nil {
		keep()
	}
	per := float64(heap()-before) / float64(n)
	if asm.Stats().Open != n {
		tb.Fatalf("%d connections open, want %d", asm.Stats().Open, n)
	}
	runtime.KeepAlive(asm)
	return per
}

// BenchmarkIdleUpgradedConn reports the memory an idle upgraded
// connection costs: in reassembly (gopacket's connection, the stream, its
// WebSocket state) and in the whole pipeline (plus the analyzer holding
// the attempt until its session ends, as read does).
func BenchmarkIdleUpgradedConn(b *testing.B) {
	const n = 100000
	for i := 0; i < b.N; i++ {
		b.ReportMetric(openUpgraded(b, n, nullSink{}, nil), "B/conn-reassembly")
		opt := analyze.DefaultOptions
		opt.WaitSession = true
		an := analyze.New(opt, func(*analyze.Verdict) {})
		b.ReportMetric(openUpgraded(b, n, an, func() { an.Decide(time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC)) }), "B/conn-pipeline")
		runtime.KeepAlive(an)
	}
}

// TestIdleUpgradedConnMemory holds the figure to its target: an idle
// upgraded connection costs at most 2 KiB in reassembly (a proxy host
// holds hundreds of thousands of quiet tunnels).
func TestIdleUpgradedConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100k connections")
	}
	if per := openUpgraded(t, 20000, nullSink{}, nil); per > 2048 {
		t.Errorf("%.0f bytes per idle upgraded connection in reassembly, target ≤ 2048", per)
	} else {
		t.Logf("%.0f bytes per idle upgraded connection in reassembly", per)
	}
}
