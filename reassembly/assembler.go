package reassembly

import (
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	tcpr "github.com/gopacket/gopacket/reassembly"
)

// Options configure an Assembler.
type Options struct {
	Limits
	// MaxPagesPerConn and MaxPagesTotal bound out-of-order buffering
	// (gopacket pages of 1900 bytes). gopacket's default is unbounded.
	MaxPagesPerConn, MaxPagesTotal int
	// FlushAfter is how long (capture time) out-of-order data waits for a
	// missing segment before the hole is given up as a gap.
	FlushAfter time.Duration
	// IdleAfter closes connections that have been silent this long.
	// It must exceed the proxy timeouts we want to observe (nginx: 60 s).
	IdleAfter time.Duration
	// MaxFlows caps open connections; past it the idlest are evicted
	// (and counted), so a SYN flood cannot grow memory without bound.
	MaxFlows int
	// KeyLog decrypts TLS connections whose secrets it holds.
	KeyLog *KeyLog
	// IDBase and IDStride number connections IDBase+IDStride, +2·IDStride…
	// so that several Assemblers (one per worker) give unique IDs.
	IDBase, IDStride ConnID
}

// DefaultOptions fit a busy proxy host.
var DefaultOptions = Options{
	Limits:          DefaultLimits,
	MaxPagesPerConn: 256,   // ~480 KiB out of order per connection
	MaxPagesTotal:   65536, // ~120 MiB in all
	FlushAfter:      2 * time.Second,
	IdleAfter:       15 * time.Minute,
	MaxFlows:        200000,
}

// Stats count what the assembler saw.
type Stats struct {
	Packets     uint64
	Connections uint64 // TCP connections (4-tuples with a new stream)
	Open        int    // connections open now
	Evicted     uint64 // connections ended early because MaxFlows was reached
}

// Assembler turns TCP segments into events for a Sink. It is not safe for
// concurrent use: shard connections over several Assemblers instead.
type Assembler struct {
	opt     Options
	sink    Sink
	tlsSink TLSSink // sink, when it wants TLSStart
	pool    *tcpr.StreamPool
	asm     *tcpr.Assembler
	ctx     context
	nextID  ConnID
	ending  bool

	// reset is a stream that saw a RST in the current segment.
	reset *stream

	lastFlush time.Time
	stats     Stats
}

// context hands the capture info to gopacket without an allocation per
// packet: it lives inside the Assembler.
type context struct{ ci gopacket.CaptureInfo }

func (c *context) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }

// New returns an Assembler that delivers events to sink.
func New(sink Sink, opt Options) *Assembler {
	a := &Assembler{opt: opt, sink: sink}
	a.tlsSink, _ = sink.(TLSSink)
	a.pool = tcpr.NewStreamPool((*factory)(a))
	a.asm = tcpr.NewAssembler(a.pool)
	a.asm.MaxBufferedPagesPerConnection = opt.MaxPagesPerConn
	a.asm.MaxBufferedPagesTotal = opt.MaxPagesTotal
	return a
}

type factory Assembler

func (f *factory) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, ac tcpr.AssemblerContext) tcpr.Stream {
	a := (*Assembler)(f)
	// Only a SYN or data opens a connection. The last ACK after both FINs
	// (or a stray RST) arrives after gopacket removed the connection; a
	// stream made for it would linger until idle eviction and swallow the
	// next SYN on the same 4-tuple (port reuse).
	if !tcp.SYN && len(tcp.Payload) == 0 {
		return nil
	}
	if a.nextID == 0 {
		a.nextID = a.opt.IDBase
	}
	stride := a.opt.IDStride
	if stride == 0 {
		stride = 1
	}
	a.nextID += stride
	a.stats.Connections++
	t := ac.GetCaptureInfo().Timestamp
	s := &stream{asm: a, id: a.nextID, first: t, last: t}
	s.ends[0] = addrPort(netFlow.Src(), tcpFlow.Src())
	s.ends[1] = addrPort(netFlow.Dst(), tcpFlow.Dst())
	a.stats.Open++
	return s
}

// Packet feeds one TCP segment. Segments must come in capture order.
func (a *Assembler) Packet(netFlow gopacket.Flow, tcp *layers.TCP, ci gopacket.CaptureInfo) {
	a.stats.Packets++
	a.ctx.ci = ci
	a.asm.AssembleWithContext(netFlow, tcp, &a.ctx)
	if a.reset != nil {
		a.reset.finish()
		a.reset = nil
	}
	if a.opt.MaxFlows > 0 && a.stats.Open > a.opt.MaxFlows {
		a.evict(ci.Timestamp)
	}
	now := ci.Timestamp
	if a.lastFlush.IsZero() {
		a.lastFlush = now
	} else if now.Sub(a.lastFlush) >= time.Second {
		a.Flush(now)
	}
}

// Flush gives up holes older than FlushAfter and closes connections idle
// longer than IdleAfter, as of capture time now.
func (a *Assembler) Flush(now time.Time) {
	a.lastFlush = now
	a.asm.FlushWithOptions(tcpr.FlushOptions{T: now.Add(-a.opt.FlushAfter), TC: now.Add(-a.opt.IdleAfter)})
}

// evict closes the idlest connections until a tenth of MaxFlows is free:
// first those silent for a minute, then ever more recent ones.
func (a *Assembler) evict(now time.Time) {
	before := a.stats.Open
	goal := a.opt.MaxFlows - a.opt.MaxFlows/10
	for _, idle := range []time.Duration{time.Minute, 10 * time.Second, time.Second, 100 * time.Millisecond, 0} {
		a.asm.FlushWithOptions(tcpr.FlushOptions{T: now.Add(-idle), TC: now.Add(-idle)})
		if a.stats.Open <= goal {
			break
		}
	}
	a.stats.Evicted += uint64(before - a.stats.Open)
	a.lastFlush = now
}

// Close ends every connection still open: the capture is over.
func (a *Assembler) Close() {
	a.ending = true
	a.asm.FlushAll()
}

// Stats returns counters.
func (a *Assembler) Stats() Stats { return a.stats }
