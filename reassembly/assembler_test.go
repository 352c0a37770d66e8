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
// 10 000 keep the open count and the heap bounded, and are counted.
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
		if a.stats.Open > opt.MaxFlows {
			t.Fatalf("packet %d: %d open flows, cap %d", i, a.stats.Open, opt.MaxFlows)
		}
	}
	grew := int64(heapAt()) - int64(base)
	st := a.Stats()
	if st.Evicted < n-uint64(opt.MaxFlows) {
		t.Errorf("evicted %d, want at least %d", st.Evicted, n-opt.MaxFlows)
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
