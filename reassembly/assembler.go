package reassembly

import (
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/http1"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"math"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	tcpr "github.com/gopacket/gopacket/reassembly"
)

// Limits bound what one direction may buffer (http1.Limits).
type Limits = http1.Limits

// DefaultLimits are safe for hostile input and ample for real proxies.
var DefaultLimits = http1.DefaultLimits

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
	// KeyLog decrypts TLS connections whose secrets it holds. It may grow
	// while the Assembler runs: a connection looks its keys up at the
	// ServerHello.
	KeyLog *tlsrec.KeyLog
	// IDBase and IDStride number connections IDBase+IDStride, +2·IDStride…
	// so that several Assemblers (one per worker) give unique IDs.
	IDBase, IDStride ConnID
	// NewID, when set, numbers each new connection instead (read's
	// pipeline numbers a connection by the packet that opened it, the
	// same whatever the number of workers).
	NewID func() ConnID
	// ManualFlush: Packet never calls Flush; the caller does, at the
	// same points of the capture whatever the number of workers.
	ManualFlush bool
	// Budget, when set, bounds in bytes what connections hold
	// (--max-memory); past it the idlest are evicted, quiet ones first.
	Budget *Budget

	// slowOnly sends every segment through gopacket (tests compare).
	slowOnly bool
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
	Handovers   uint64 // connections a hole or reordering handed to gopacket
	// QuietEvicted counts connections that carried no HTTP or TLS, ended
	// early because more than MaxFlows/10 of them were open.
	QuietEvicted uint64
	// HeaderCuts counts segments whose tail the capture's snap length cut
	// inside a start line or header block.
	HeaderCuts uint64
	// MemEvicted counts connections ended early because the memory
	// budget was reached.
	MemEvicted uint64
	// Plaintext (Assembler.Plaintext): pieces fed, connections that had
	// some, those of them whose plaintext began mid-connection, bytes
	// lost, and pieces that came after their connection had ended.
	PlainPieces, PlainConns, PlainMidStream, PlainLost, PlainLate uint64
	// PlainH2 counts the connections whose plaintext was HTTP/2 from the
	// middle: their requests cannot be read (ConnEnd.Plain.H2).
	PlainH2 uint64
}

// Add sums x into s: the figures of several workers' assemblers.
func (s *Stats) Add(x Stats) {
	s.Packets += x.Packets
	s.Connections += x.Connections
	s.Open += x.Open
	s.Evicted += x.Evicted
	s.Handovers += x.Handovers
	s.QuietEvicted += x.QuietEvicted
	s.HeaderCuts += x.HeaderCuts
	s.MemEvicted += x.MemEvicted
	s.PlainPieces += x.PlainPieces
	s.PlainConns += x.PlainConns
	s.PlainMidStream += x.PlainMidStream
	s.PlainLost += x.PlainLost
	s.PlainLate += x.PlainLate
	s.PlainH2 += x.PlainH2
}

// Assembler turns TCP segments into events for a Sink. It is not safe for
// concurrent use: shard connections over several Assemblers instead.
type Assembler struct {
	opt     Options
	sink    Sink
	tlsSink TLSSink // sink, when it wants TLSStart
	// closeSink is sink, when it wants CloseOnly (closeonly.go); resets
	// are the connections RSTs ended lately, in slowOnly mode.
	closeSink CloseSink
	resets    map[connKey]time.Time
	pool      *tcpr.StreamPool
	asm       *tcpr.Assembler
	ctx       context
	nextID    ConnID
	ending    bool

	// reset is a stream that saw a RST in the current segment.
	reset *stream

	// The fast path's connections; the same by last activity, and those
	// ended by a RST that still linger.
	conns             map[connKey]connRef
	deletes           int // from conns since it was made (rebuild)
	live, quiet, dead connList
	maxQuiet          int
	handing           *stream    // the stream being handed to gopacket
	synth             layers.TCP // its synthetic segments

	// plains is the plaintext state of the streams that have some.
	plains map[*stream]*plainState

	// nextFlush is when (capture time) Packet next calls Flush.
	nextFlush time.Time
	// via is the tunnel of the segment PacketVia is feeding, tun its
	// connKey.tun; nodes the streams that have a tunnel or a PROXY header
	// (node.go).
	via       *capture.Tunnel
	tun       uint32
	viaStream *stream // the stream gopacket gave via's segment to
	// slowTuns is, in slowOnly mode, the tunnel of the first connection
	// seen on each 4-tuple (tunnelkey.go).
	slowTuns map[connKey]uint32
	nodes    map[*stream]*nodeState
	stats    Stats
}

// context hands the capture info to gopacket without an allocation per
// packet: it lives inside the Assembler.
type context struct{ ci gopacket.CaptureInfo }

func (c *context) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }

// New returns an Assembler that delivers events to sink.
func New(sink Sink, opt Options) *Assembler {
	a := &Assembler{opt: opt, sink: sink, conns: make(map[connKey]connRef)}
	a.maxQuiet = max(100, opt.MaxFlows/10)
	if opt.MaxFlows <= 0 {
		a.maxQuiet = math.MaxInt
	}
	a.tlsSink, _ = sink.(TLSSink)
	a.closeSink, _ = sink.(CloseSink)
	a.pool = tcpr.NewStreamPool((*factory)(a))
	a.asm = tcpr.NewAssembler(a.pool)
	a.asm.MaxBufferedPagesPerConnection = opt.MaxPagesPerConn
	a.asm.MaxBufferedPagesTotal = opt.MaxPagesTotal
	return a
}

type factory Assembler

func (f *factory) New(netFlow, _ gopacket.Flow, tcp *layers.TCP, ac tcpr.AssemblerContext) tcpr.Stream {
	a := (*Assembler)(f)
	if a.handing != nil {
		return a.handing
	}
	// Otherwise gopacket holds only the connections handed to it.
	if !a.opt.slowOnly {
		return nil
	}
	if !tcp.SYN && len(tcp.Payload) == 0 {
		a.closeOnly(netFlow, tcp, ac.GetCaptureInfo().Timestamp)
		return nil
	}
	return a.newStream(netFlow, tcp, ac.GetCaptureInfo().Timestamp)
}

// newStream numbers and counts a new connection.
func (a *Assembler) newStream(netFlow gopacket.Flow, tcp *layers.TCP, t time.Time) *stream {
	if a.nextID == 0 {
		a.nextID = a.opt.IDBase
	}
	stride := a.opt.IDStride
	if stride == 0 {
		stride = 1
	}
	a.nextID += stride
	id := a.nextID
	if a.opt.NewID != nil {
		id = a.opt.NewID()
	}
	a.stats.Connections++
	s := &stream{asm: a, id: id, first: t, last: t}
	s.initParsers()
	s.ends[0] = addrPort(netFlow.Src(), uint16(tcp.SrcPort))
	s.ends[1] = addrPort(netFlow.Dst(), uint16(tcp.DstPort))
	a.tunnelNew(s)
	a.stats.Open++
	s.account()
	return s
}

// Packet feeds one TCP segment. Segments must come in capture order. cut
// counts payload bytes the capture did not keep past the end of
// tcp.Payload (capture.Packet.Cut): an in-order segment cut short is a
// hole of known size, which the parsers step over at once.
func (a *Assembler) Packet(netFlow gopacket.Flow, tcp *layers.TCP, ci gopacket.CaptureInfo, cut int) {
	a.stats.Packets++
	a.ctx.ci = ci
	if a.opt.slowOnly {
		a.slowPacket(a.slowOnlyFlow(netFlow, tcp), tcp)
	} else {
		k := connKey{netFlow, uint16(tcp.SrcPort), uint16(tcp.DstPort), a.tun}
		r := a.conns[k]
		if r.s == nil && k.tun != 0 {
			r = a.untunnelled(k)
		}
		if r.s != nil && r.s.slow {
			a.slowPacket(slowFlow(netFlow, r.s.key.tun), tcp)
		} else {
			a.fastPacket(r.s, r.d, k, netFlow, tcp, ci, cut)
		}
	}
	if a.opt.MaxFlows > 0 && a.stats.Open+a.dead.n > a.opt.MaxFlows {
		a.evict(ci.Timestamp)
	}
	if a.opt.Budget.Over() {
		a.shed()
	}
	if a.opt.ManualFlush {
		return
	}
	now := ci.Timestamp
	if a.nextFlush.IsZero() {
		a.nextFlush = now.Add(time.Second)
	} else if !now.Before(a.nextFlush) {
		a.Flush(now)
	}
}

// slowPacket hands a segment to gopacket's reassembly.
func (a *Assembler) slowPacket(netFlow gopacket.Flow, tcp *layers.TCP) {
	a.asm.AssembleWithContext(netFlow, tcp, &a.ctx)
	if a.reset != nil {
		a.reset.finish()
		a.noteReset(netFlow, tcp, a.ctx.ci.Timestamp)
		a.reset = nil
	}
}

// Flush gives up holes older than FlushAfter and closes connections idle
// longer than IdleAfter, as of capture time now.
func (a *Assembler) Flush(now time.Time) {
	a.nextFlush = now.Add(time.Second)
	a.asm.FlushWithOptions(tcpr.FlushOptions{T: now.Add(-a.opt.FlushAfter), TC: now.Add(-a.opt.IdleAfter)})
	idle := now.Add(-a.opt.IdleAfter)
	for _, l := range []*connList{&a.quiet, &a.live} {
		for s := l.oldest; s != nil && s.last.Before(idle); s = l.oldest {
			s.finish()
			a.forget(s)
		}
	}
	for s := a.dead.oldest; s != nil && s.last.Before(now.Add(-linger)); s = a.dead.oldest {
		a.forget(s)
	}
}

// evict closes the idlest connections until a tenth of MaxFlows is free:
// the fast path's least recently active first, then gopacket's, those
// silent for a minute, then ever more recent ones.
func (a *Assembler) evict(now time.Time) {
	before := a.stats.Open
	goal := a.opt.MaxFlows - a.opt.MaxFlows/10
	for s := a.dead.oldest; s != nil; s = a.dead.oldest {
		a.forget(s)
	}
	for _, l := range []*connList{&a.quiet, &a.live} {
		for s := l.oldest; s != nil && a.stats.Open > goal; s = l.oldest {
			s.finish()
			a.forget(s)
		}
	}
	for _, idle := range []time.Duration{time.Minute, 10 * time.Second, time.Second, 100 * time.Millisecond, 0} {
		if a.stats.Open <= goal {
			break
		}
		a.asm.FlushWithOptions(tcpr.FlushOptions{T: now.Add(-idle), TC: now.Add(-idle)})
	}
	a.stats.Evicted += uint64(before - a.stats.Open)
	a.nextFlush = now.Add(time.Second)
}

// Close ends every connection still open: the capture is over.
func (a *Assembler) Close() {
	a.ending = true
	for _, l := range []*connList{&a.quiet, &a.live} {
		for s := l.oldest; s != nil; s = l.oldest {
			s.finish()
			a.forget(s)
		}
	}
	for s := a.dead.oldest; s != nil; s = a.dead.oldest {
		a.forget(s)
	}
	a.asm.FlushAll()
}

// Stats returns counters.
func (a *Assembler) Stats() Stats { return a.stats }
