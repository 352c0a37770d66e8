package pipeline

import (
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/reassembly"
)

// The sharded pipeline (--workers N > 1): the reading goroutine decodes
// packets and deals each connection's segments, by a symmetric hash of its
// 4-tuple, to one of N workers, each with its own Assembler. Segments
// travel in batches (header fields, payload copied into a slab); events
// come back in the same batches to one goroutine that owns the Analyzer,
// which decides only up to the slowest worker's capture time.

const batchSize = 1024

// segment is one TCP segment: its raw TCP header and payload, copied
// into the batch's slab (the reader reuses its buffers), decoded again by
// the worker (gopacket keys connections by the decoded port bytes). Or,
// with plain set, a piece of TLS plaintext: its bytes in the slab, the
// rest in the batch's plains.
type segment struct {
	ts          time.Time
	net         gopacket.Flow
	off, n, cut int32
	tun         int32 // index+1 in the batch's tunnels; 0: not tunnelled
	plain       int32 // index+1 in the batch's plains; 0: a TCP segment
}

// plainSeg is what a plaintext piece carries besides its bytes.
type plainSeg struct {
	src, dst   netip.AddrPort
	off        uint32
	start, end bool
}

type batch struct {
	worker int
	segs   []segment
	slab   []byte
	tuns   []capture.Tunnel // of the tunnelled segments
	plains []plainSeg       // of the plaintext pieces
	events []event
	// upTo is the capture time the worker has reached after this batch.
	upTo time.Time
	last bool // the worker's final batch (after Close)
}

// shardOf deals a segment's connection to a worker, the same way in both
// directions. The ports alone spread connections well (a client's
// ephemeral port differs per connection) and cost nothing to hash.
func shardOf(p *capture.Packet, n int) int {
	return shardOfPorts(uint64(p.TCP.SrcPort), uint64(p.TCP.DstPort), n)
}

func shardOfPorts(a, b uint64, n int) int {
	if a > b {
		a, b = b, a
	}
	h := (a<<16 | b) * 0x9e3779b97f4a7c15
	return int((h >> 32) % uint64(n))
}

// sharded runs the pipeline over n workers.
type sharded struct {
	n      int
	work   []chan *batch // to each worker
	free   []chan *batch // each worker's empty batches
	done   chan *batch   // to the analyzer goroutine
	cur    []*batch      // batches being filled, per worker
	asms   []*reassembly.Assembler
	an     *analyze.Analyzer
	obs    Observer
	finish chan struct{}
	guard  func()
}

func newSharded(n int, an *analyze.Analyzer, opt reassembly.Options, c Config) *sharded {
	s := &sharded{n: n, an: an, obs: c.Observer, done: make(chan *batch, 4*n), finish: make(chan struct{}), guard: c.Guard}
	opt.MaxFlows = max(100, opt.MaxFlows/n)
	for w := 0; w < n; w++ {
		s.work = append(s.work, make(chan *batch, 4))
		s.free = append(s.free, make(chan *batch, 8))
		for i := 0; i < 8; i++ {
			s.free[w] <- &batch{worker: w, segs: make([]segment, 0, batchSize), slab: make([]byte, 0, 256<<10)}
		}
		o := opt
		o.IDBase, o.IDStride = reassembly.ConnID(w), reassembly.ConnID(n)
		sink := &eventLog{}
		asm := reassembly.New(sink, o)
		s.asms = append(s.asms, asm)
		s.cur = append(s.cur, <-s.free[w])
		go s.worker(s.work[w], asm, sink)
	}
	go s.apply()
	return s
}

// add deals one decoded segment to its worker.
func (s *sharded) add(p *capture.Packet) {
	w := shardOf(p, s.n)
	b := s.cur[w]
	off := len(b.slab)
	b.slab = append(b.slab, p.TCP.Contents...)
	b.slab = append(b.slab, p.TCP.Payload...)
	tun := int32(0)
	if p.Tunnel.Kind != capture.TunnelNone {
		b.tuns = append(b.tuns, p.Tunnel)
		tun = int32(len(b.tuns))
	}
	b.segs = append(b.segs, segment{ts: p.CI.Timestamp, net: p.Net, off: int32(off), n: int32(len(b.slab) - off), cut: int32(p.Cut), tun: tun})
	if len(b.segs) == batchSize || len(b.slab) > 192<<10 {
		s.flush(w)
	}
}

// addPlaintext deals a plaintext piece to its connection's worker (by
// the ports, as its segments are).
func (s *sharded) addPlaintext(p *capture.Plaintext) {
	w := shardOfPorts(uint64(p.Src.Port()), uint64(p.Dst.Port()), s.n)
	b := s.cur[w]
	off := len(b.slab)
	b.slab = append(b.slab, p.Data...)
	b.plains = append(b.plains, plainSeg{src: p.Src, dst: p.Dst, off: p.Off, start: p.Start, end: p.End})
	b.segs = append(b.segs, segment{ts: p.Time, off: int32(off), n: int32(len(p.Data)), plain: int32(len(b.plains))})
	if len(b.segs) == batchSize || len(b.slab) > 192<<10 {
		s.flush(w)
	}
}

func (s *sharded) flush(w int) {
	b := s.cur[w]
	if len(b.segs) == 0 {
		return
	}
	s.work[w] <- b
	s.cur[w] = <-s.free[w]
}

// close sends what is left, ends every worker's connections and waits for
// the analyzer goroutine to apply everything.
func (s *sharded) close() {
	for w := range s.cur {
		s.cur[w].last = true
		s.work[w] <- s.cur[w]
		close(s.work[w])
	}
	<-s.finish
}

func (s *sharded) worker(in chan *batch, asm *reassembly.Assembler, sink *eventLog) {
	defer s.guard()
	var tcp layers.TCP
	var dec capture.TCPDecoder
	var pt reassembly.Plain
	for b := range in {
		sink.events = b.events[:0]
		for i := range b.segs {
			g := &b.segs[i]
			if g.plain > 0 {
				pl := &b.plains[g.plain-1]
				pt = reassembly.Plain{Time: g.ts, Src: pl.src, Dst: pl.dst, Off: pl.off, Start: pl.start, End: pl.end, Data: b.slab[g.off : g.off+g.n]}
				asm.Plaintext(&pt)
				continue
			}
			if dec.Decode(&tcp, b.slab[g.off:g.off+g.n]) != nil {
				continue // it decoded once already; cannot happen
			}
			var tun *capture.Tunnel
			if g.tun > 0 {
				tun = &b.tuns[g.tun-1]
			}
			asm.PacketVia(g.net, &tcp, gopacket.CaptureInfo{Timestamp: g.ts, CaptureLength: int(g.n), Length: int(g.n + g.cut)}, int(g.cut), tun)
			b.upTo = g.ts
		}
		if b.last {
			asm.Close()
		}
		b.events, sink.events = sink.events, nil
		s.done <- b
	}
}

// apply owns the Analyzer: it applies each batch's events and decides as
// capture time passes on every worker.
func (s *sharded) apply() {
	defer s.guard()
	clk := newClock(s.n)
	finished, batches := 0, 0
	for b := range s.done {
		apply(b.events, s.an, s.obs)
		clk.advance(b.worker, b.upTo)
		w, last := b.worker, b.last
		b.segs, b.slab, b.tuns, b.plains, b.events, b.last = b.segs[:0], b.slab[:0], b.tuns[:0], b.plains[:0], b.events[:0], false
		if last {
			clk.end(w)
			if finished++; finished == s.n {
				close(s.finish)
				return
			}
			continue
		}
		s.free[w] <- b
		// a batch is ~1024 segments: as in single, at least decideEvery
		// packets pass between decisions, whatever the time stamps say
		if batches++; batches*batchSize >= decideEvery*s.n {
			if now, ok := clk.due(time.Second); ok {
				s.an.Decide(now)
				batches = 0
			}
		}
	}
}

// stats sums the workers' assembler counters (after close).
func (s *sharded) stats() reassembly.Stats {
	var st reassembly.Stats
	for _, a := range s.asms {
		st.Add(a.Stats())
	}
	return st
}
