package reassembly

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestBudgetEvictsQuietFirst: under a budget, connections that sent half a
// request (HTTP, so not quiet) and bare SYNs (quiet) keep the state charged
// within the budget; the SYNs go first, and the newest HTTP connections
// stay; every eviction is counted, and everything charged is given back
// when the capture ends.
func TestBudgetEvictsQuietFirst(t *testing.T) {
	b := NewBudget(32 << 20)
	opt := DefaultOptions
	opt.MaxFlows = 0 // the budget alone
	opt.Budget = b
	sink := &countSink{}
	a := New(sink, opt)
	ip := layers.IPv4{DstIP: net.IPv4(127, 0, 0, 1).To4()}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	send := func(i int, syn bool, payload string) {
		ip.SrcIP = net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4()
		tcp := layers.TCP{SrcPort: layers.TCPPort(1024 + i%60000), DstPort: 80, Seq: 100, SYN: syn, ACK: !syn}
		if !syn {
			tcp.Seq = 101
		}
		tcp.Payload = []byte(payload)
		a.Packet(ip.NetworkFlow(), &tcp, gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond)}, 0)
	}
	// 5 000 HTTP connections first, then 20 000 SYNs: the SYNs alone go
	// past the budget, and only they may be evicted.
	const nHTTP, nSYN = 5000, 20000
	for i := 0; i < nHTTP; i++ {
		send(i, true, "")
		send(i, false, fmt.Sprintf("GET /slow HTTP/1.1\r\nHost: proxy.example\r\nUser-Agent: slow/%d\r\nX-Pad: ", i))
	}
	for i := nHTTP; i < nHTTP+nSYN; i++ {
		send(i, true, "")
	}
	if b.Used() > b.Limit() {
		t.Errorf("%d bytes charged, over the budget of %d", b.Used(), b.Limit())
	}
	if b.EvictedBy(MemQuiet) == 0 || b.EvictedBy(MemConns) != 0 {
		t.Errorf("evicted %d quiet and %d HTTP connections; want quiet ones only", b.EvictedBy(MemQuiet), b.EvictedBy(MemConns))
	}
	if a.live.n != nHTTP {
		t.Errorf("%d HTTP connections open, want all %d", a.live.n, nHTTP)
	}
	// Now more HTTP connections: the quiet ones are gone first, then the
	// oldest HTTP ones.
	for i := nHTTP + nSYN; i < 2*nHTTP+nSYN+20000; i++ {
		send(i, false, "GET /slow HTTP/1.1\r\nHost: proxy.example\r\nX-Pad: ")
	}
	if a.quiet.n != 0 || b.EvictedBy(MemConns) == 0 {
		t.Errorf("%d quiet connections still open, %d HTTP ones evicted", a.quiet.n, b.EvictedBy(MemConns))
	}
	if b.Used() > b.Limit() {
		t.Errorf("%d bytes charged, over the budget of %d", b.Used(), b.Limit())
	}
	if got := a.Stats().MemEvicted; got != b.EvictedBy(MemQuiet)+b.EvictedBy(MemConns) || b.EvictedBytes() == 0 {
		t.Errorf("MemEvicted %d, budget counts %d + %d, %d bytes", got, b.EvictedBy(MemQuiet), b.EvictedBy(MemConns), b.EvictedBytes())
	}
	// The newest connection is still open and parsing.
	if r := a.conns[connKey{ip.NetworkFlow(), uint16(1024 + (2*nHTTP+nSYN+19999)%60000), 80, 0}]; r.s == nil {
		t.Error("the newest connection was evicted")
	}
	a.Close()
	if b.Used() != 0 {
		t.Errorf("%d bytes still charged after Close", b.Used())
	}
}

// TestHeaderBufferCharged: a header block growing over several segments is
// charged as it grows, and given back when the block ends.
func TestHeaderBufferCharged(t *testing.T) {
	b := NewBudget(1 << 30)
	opt := DefaultOptions
	opt.Budget = b
	a := New(&countSink{}, opt)
	ip := layers.IPv4{SrcIP: net.IPv4(10, 0, 0, 1).To4(), DstIP: net.IPv4(127, 0, 0, 1).To4()}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	seq := uint32(100)
	send := func(syn bool, p string) {
		tcp := layers.TCP{SrcPort: 40000, DstPort: 80, Seq: seq, SYN: syn, ACK: !syn}
		tcp.Payload = []byte(p)
		a.Packet(ip.NetworkFlow(), &tcp, gopacket.CaptureInfo{Timestamp: t0}, 0)
		seq += uint32(len(p))
		if syn {
			seq++
		}
	}
	send(true, "")
	base := b.Used()
	send(false, "GET / HTTP/1.1\r\nHost: x\r\n")
	for i := 0; i < 20; i++ {
		send(false, fmt.Sprintf("X-Filler-%02d: %0900d\r\n", i, 0))
	}
	if grown := b.Used() - base; grown < 18000 {
		t.Errorf("a pending 18 KB header block is charged %d bytes", grown)
	}
	send(false, "\r\n")
	if b.Used()-base > 1024 {
		t.Errorf("%d bytes still charged after the block ended", b.Used()-base)
	}
}
