package reassembly

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

type countSink struct{ reqs, resps, ends int }

func (c *countSink) Request(*Request)   { c.reqs++ }
func (c *countSink) Response(*Response) { c.resps++ }
func (c *countSink) ConnEnd(*ConnEnd)   { c.ends++ }

// TestMaxFlowsBoundsASynFlood: 300 000 one-SYN connections against a cap of
// 10 000 keep the open count and the heap bounded, and are counted. SYNs
// carry nothing wsdiag parses: the quiet budget (a tenth of the cap) ends
// them, before the cap itself is reached.
func TestMaxFlowsBoundsASynFlood(t *testing.T) {
	opt := DefaultOptions
	opt.MaxFlows = 10000
	sink := &countSink{}
	a := New(sink, opt)
	src, dst := net.IPv4(10, 0, 0, 0).To4(), net.IPv4(127, 0, 0, 1).To4()
	ip := layers.IPv4{SrcIP: src, DstIP: dst}
	tcp := layers.TCP{DstPort: 80, SYN: true, Seq: 1}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var ms runtime.MemStats
	heapAt := func() uint64 { runtime.GC(); runtime.ReadMemStats(&ms); return ms.HeapInuse }
	const n = 300000
	var base uint64
	for i := 0; i < n; i++ {
		if i == 20000 {
			base = heapAt()
		}
		ip.SrcIP = net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4()
		tcp.SrcPort = layers.TCPPort(1024 + i%60000)
		a.Packet(ip.NetworkFlow(), &tcp, gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond)}, 0)
		if a.stats.Open > opt.MaxFlows/10 {
			t.Fatalf("packet %d: %d open quiet flows, budget %d", i, a.stats.Open, opt.MaxFlows/10)
		}
	}
	grew := int64(heapAt()) - int64(base)
	st := a.Stats()
	if st.QuietEvicted < n-uint64(opt.MaxFlows/10) || st.Evicted != 0 {
		t.Errorf("evicted %d quiet and %d others, want at least %d quiet", st.QuietEvicted, st.Evicted, n-opt.MaxFlows/10)
	}
	// Past the cap the heap must not grow with the flood: allow 8 MiB of
	// slack for the runtime (uncapped, 280k more flows cost ~200 MiB).
	if grew > 8<<20 {
		t.Errorf("heap grew %d MiB while the flow count was capped", grew>>20)
	}
	if sink.reqs != 0 {
		t.Errorf("%d requests from SYNs", sink.reqs)
	}
	a.Close()
	if a.Stats().Open != 0 {
		t.Errorf("%d flows open after Close", a.Stats().Open)
	}
}

// endIDs records which connections ended.
type endIDs struct {
	countSink
	ended map[ConnID]bool
}

func (e *endIDs) ConnEnd(c *ConnEnd) { e.ended[c.ID] = true }

// TestQuietFloodSparesHTTP: a SYN flood far past the quiet budget ends
// only quiet connections; 500 idle HTTP connections opened before it stay
// open until Close.
func TestQuietFloodSparesHTTP(t *testing.T) {
	opt := DefaultOptions
	opt.MaxFlows = 1000
	sink := &endIDs{ended: map[ConnID]bool{}}
	a := New(sink, opt)
	dst := net.IPv4(127, 0, 0, 1).To4()
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	req := []byte("GET /ws HTTP/1.1\r\nHost: h\r\n\r\n")
	for i := 0; i < 500; i++ {
		ip := layers.IPv4{SrcIP: net.IPv4(10, 1, byte(i>>8), byte(i)).To4(), DstIP: dst}
		syn := layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Seq: 1}
		a.Packet(ip.NetworkFlow(), &syn, gopacket.CaptureInfo{Timestamp: t0}, 0)
		data := layers.TCP{SrcPort: 40000, DstPort: 80, ACK: true, Seq: 2}
		data.Payload = req
		a.Packet(ip.NetworkFlow(), &data, gopacket.CaptureInfo{Timestamp: t0}, 0)
	}
	if sink.reqs != 500 || a.live.n != 500 {
		t.Fatalf("%d requests, %d live connections", sink.reqs, a.live.n)
	}
	for i := 0; i < 20000; i++ {
		ip := layers.IPv4{SrcIP: net.IPv4(10, 2, byte(i>>8), byte(i)).To4(), DstIP: dst}
		syn := layers.TCP{SrcPort: layers.TCPPort(1024 + i), DstPort: 80, SYN: true, Seq: 1}
		a.Packet(ip.NetworkFlow(), &syn, gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond)}, 0)
	}
	if n := len(sink.ended); n < 19900 {
		t.Errorf("only %d connections ended during the flood", n)
	}
	for id := ConnID(1); id <= 500; id++ {
		if sink.ended[id] {
			t.Fatalf("HTTP connection %d ended by a SYN flood", id)
		}
	}
	if st := a.Stats(); st.Evicted != 0 || st.QuietEvicted < 19900 {
		t.Errorf("evicted %d, quiet %d", st.Evicted, st.QuietEvicted)
	}
}
