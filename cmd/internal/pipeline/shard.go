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
// travel in rounds: a batch per worker (header fields, payload copied into
// a slab), with the schedule's flushes in every worker's batch at their
// packet. The batches come back with their events, stamped with the packet
// they came from, to one goroutine that owns the Analyzer: it takes a
// round from every worker and applies its events in stamp order, the
// schedule's decisions among them, which is the order one worker gives.

const batchSize = 1024

// segment is one TCP segment: its raw TCP header and payload, copied
// into the batch's slab (the reader reuses its buffers), decoded again by
// the worker (gopacket keys connections by the decoded port bytes); or,
// with flush set, the schedule's flush at ts; or, with plain set, a piece
// of TLS plaintext: its bytes in the slab, the rest in the batch's plains.
type segment struct {
	seq uint64
	// ts is the capture time (seconds and nanoseconds: exact, and no
	// pointer for the collector to follow), or the flush's (nanoseconds
	// of the schedule).
	sec         int64
	nsec        int32
	off, n, cut int32
	tun         int32 // index+1 in the batch's tunnels; 0: not tunnelled
	plain       int32 // index+1 in the batch's plains; 0: a TCP segment
	flush       bool
	net         gopacket.Flow
}

// plainSeg is what a plaintext piece carries besides its bytes.
type plainSeg struct {
	src, dst   netip.AddrPort
	off        uint32
	start, end bool
}

type batch struct {
	segs   []segment
	slab   []byte
	tuns   []capture.Tunnel // of the tunnelled segments
	plains []plainSeg       // of the plaintext pieces
	events []event
	// decisions are the schedule's in this round (worker 0's batch).
	decisions []decision
	last      bool // the worker's final batch (after Close)
}

// decision is an analyzer's decision the schedule placed at packet seq.
type decision struct {
	seq  uint64
	upTo time.Time
}

// maxBatchPayload is how many bytes of segments a batch holds at most.
const maxBatchPayload = 192 << 10

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
	done   []chan *batch // from each worker, to the analyzer goroutine
	free   []chan *batch // each worker's empty batches
	cur    []*batch      // batches being filled, per worker
	asms   []*reassembly.Assembler
	sched  schedule
	an     *analyze.Analyzer
	obs    Observer
	finish chan struct{}
	guard  func()
}

// batchesPerWorker bounds the batches in flight per worker (the memory
// budget counts them).
const batchesPerWorker = 8

func newSharded(n int, an *analyze.Analyzer, opt reassembly.Options, c Config) *sharded {
	s := &sharded{n: n, an: an, obs: c.Observer, finish: make(chan struct{}), guard: c.Guard}
	opt.MaxFlows = max(100, opt.MaxFlows/n)
	for w := 0; w < n; w++ {
		s.work = append(s.work, make(chan *batch, batchesPerWorker))
		s.done = append(s.done, make(chan *batch, batchesPerWorker))
		s.free = append(s.free, make(chan *batch, batchesPerWorker))
		for i := 0; i < batchesPerWorker; i++ {
			s.free[w] <- &batch{segs: make([]segment, 0, batchSize+1), slab: make([]byte, 0, 256<<10)}
		}
		sink := &eventLog{}
		o := opt
		o.NewID = sink.newID
		asm := reassembly.New(sink, o)
		s.asms = append(s.asms, asm)
		s.cur = append(s.cur, <-s.free[w])
		go s.worker(s.work[w], s.done[w], asm, sink)
	}
	go s.apply()
	return s
}

// before numbers the next input item at ts and places what the schedule
// puts before it (a flush in every worker's batch, a decision); it
// returns the item's number.
func (s *sharded) before(ts time.Time) uint64 {
	st := s.sched.next(ts)
	if st.flush {
		for _, b := range s.cur {
			b.segs = append(b.segs, segment{seq: st.seq, sec: st.now, flush: true})
		}
		if len(s.cur[0].segs) >= batchSize { // every batch has the flushes
			s.round(false)
		}
	}
	if st.decide {
		s.cur[0].decisions = append(s.cur[0].decisions, decision{st.seq, s.sched.upTo(st.now)})
	}
	return st.seq
}

// add deals one decoded segment to its worker, after what the schedule
// places before it.
func (s *sharded) add(p *capture.Packet) {
	ts := p.CI.Timestamp
	seq := s.before(ts)
	b := s.cur[shardOf(p, s.n)]
	off := len(b.slab)
	b.slab = append(append(b.slab, p.TCP.Contents...), p.TCP.Payload...)
	if n := len(b.segs); n < cap(b.segs) {
		b.segs = b.segs[:n+1] // written in place: no segment copied
	} else {
		b.segs = append(b.segs, segment{})
	}
	g := &b.segs[len(b.segs)-1]
	g.seq, g.sec, g.nsec, g.flush, g.plain = seq, ts.Unix(), int32(ts.Nanosecond()), false, 0
	g.off, g.n, g.cut, g.tun = int32(off), int32(len(b.slab)-off), int32(p.Cut), 0
	g.net = p.Net
	if p.Tunnel.Kind != capture.TunnelNone {
		b.tuns = append(b.tuns, p.Tunnel)
		g.tun = int32(len(b.tuns))
	}
	if len(b.segs) >= batchSize || len(b.slab) > maxBatchPayload {
		s.round(false)
	}
}

// addPlaintext deals a plaintext piece to its connection's worker (by
// the ports, as its segments are), numbered by the schedule as a packet.
func (s *sharded) addPlaintext(p *capture.Plaintext) {
	seq := s.before(p.Time)
	b := s.cur[shardOfPorts(uint64(p.Src.Port()), uint64(p.Dst.Port()), s.n)]
	off := len(b.slab)
	b.slab = append(b.slab, p.Data...)
	b.plains = append(b.plains, plainSeg{src: p.Src, dst: p.Dst, off: p.Off, start: p.Start, end: p.End})
	b.segs = append(b.segs, segment{seq: seq, sec: p.Time.Unix(), nsec: int32(p.Time.Nanosecond()),
		off: int32(off), n: int32(len(p.Data)), plain: int32(len(b.plains))})
	if len(b.segs) >= batchSize || len(b.slab) > maxBatchPayload {
		s.round(false)
	}
}

// round sends every worker its batch (empty or not): the analyzer
// goroutine applies the events of a round once it has all of its batches.
func (s *sharded) round(last bool) {
	for w, b := range s.cur {
		b.last = last
		s.work[w] <- b
	}
	if last {
		for _, c := range s.work {
			close(c)
		}
		return
	}
	for w := range s.cur {
		s.cur[w] = <-s.free[w]
	}
}

// close sends what is left, ends every worker's connections and waits for
// the analyzer goroutine to apply everything.
func (s *sharded) close() {
	s.round(true)
	<-s.finish
}

func (s *sharded) worker(in <-chan *batch, out chan<- *batch, asm *reassembly.Assembler, sink *eventLog) {
	defer s.guard()
	var tcp layers.TCP
	var dec capture.TCPDecoder
	var pt reassembly.Plain
	for b := range in {
		sink.events = b.events[:0]
		for i := range b.segs {
			g := &b.segs[i]
			if g.flush {
				sink.at = stamp(g.seq, atFlush)
				asm.Flush(time.Unix(0, g.sec).UTC())
				continue
			}
			if g.plain > 0 {
				pl := &b.plains[g.plain-1]
				sink.at = stamp(g.seq, atPacket)
				pt = reassembly.Plain{Time: time.Unix(g.sec, int64(g.nsec)).UTC(), Src: pl.src, Dst: pl.dst, Off: pl.off,
					Start: pl.start, End: pl.end, Data: b.slab[g.off : g.off+g.n]}
				asm.Plaintext(&pt)
				continue
			}
			if dec.Decode(&tcp, b.slab[g.off:g.off+g.n]) != nil {
				continue // it decoded once already; cannot happen
			}
			sink.at = stamp(g.seq, atPacket)
			ts := time.Unix(g.sec, int64(g.nsec)).UTC()
			var tun *capture.Tunnel
			if g.tun > 0 {
				tun = &b.tuns[g.tun-1]
			}
			asm.PacketVia(g.net, &tcp, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: int(g.n), Length: int(g.n + g.cut)}, int(g.cut), tun)
		}
		if b.last {
			sink.at = atClose
			asm.Close()
		}
		b.events, sink.events = sink.events, nil
		out <- b
	}
}

// apply owns the Analyzer: it takes each round's batches, one per worker,
// and applies their events and the round's decisions in stamp order.
func (s *sharded) apply() {
	defer s.guard()
	bs := make([]*batch, s.n)
	var m merger
	for {
		for w := range bs {
			bs[w] = <-s.done[w]
		}
		m.round(bs, s.an, s.obs)
		if bs[0].last {
			close(s.finish)
			return
		}
		for w, b := range bs {
			b.segs, b.slab, b.tuns, b.plains, b.events, b.decisions = b.segs[:0], b.slab[:0], b.tuns[:0], b.plains[:0], b.events[:0], b.decisions[:0]
			s.free[w] <- b
		}
	}
}

// merger applies a round's events in stamp order.
type merger struct {
	next  []int   // per batch, its next event
	group []event // the events of a flush or of the close, from every worker
}

func (m *merger) round(bs []*batch, an *analyze.Analyzer, obs Observer) {
	m.next = m.next[:0]
	for range bs {
		m.next = append(m.next, 0)
	}
	ds := bs[0].decisions
	for {
		// the lowest stamp among the batches' next events
		from, at := -1, uint64(0)
		for w, b := range bs {
			if i := m.next[w]; i < len(b.events) && (from < 0 || b.events[i].at < at) {
				from, at = w, b.events[i].at
			}
		}
		for len(ds) > 0 && (from < 0 || stamp(ds[0].seq, atDecide) < at) {
			an.Decide(ds[0].upTo)
			ds = ds[1:]
		}
		if from < 0 {
			break
		}
		if !grouped(at) {
			// one packet's events: all from the one worker that holds
			// its connection
			b := bs[from]
			for i := m.next[from]; i < len(b.events) && b.events[i].at == at; i++ {
				applyOne(&b.events[i], an, obs)
				m.next[from] = i + 1
			}
			continue
		}
		m.group = m.group[:0]
		for w, b := range bs {
			for i := m.next[w]; i < len(b.events) && b.events[i].at == at; i++ {
				m.group = append(m.group, b.events[i])
				m.next[w] = i + 1
			}
		}
		canonical(m.group)
		apply(m.group, an, obs)
	}
	for _, b := range bs {
		clear(b.events)
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
