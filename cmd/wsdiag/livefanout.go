package main

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/reassembly"
)

// Live capture over every core: one AF_PACKET socket per worker in one
// PACKET_FANOUT hash group (each socket gets whole connections, both
// directions), each worker with its own Assembler, their events merged
// into the one Analyzer on the calling goroutine, as the sharded read
// pipeline does. The analyzer decides only up to the slowest worker's
// time, so a leg's events never come after its attempt was judged.

// liveEvent is one reassembly event on its way to the analyzer.
type liveEvent struct {
	req  *reassembly.Request
	resp *reassembly.Response
	end  *reassembly.ConnEnd
	tls  *reassembly.TLSStart
	recs *reassembly.TLSRecords
}

// eventSink collects a worker's events until they are sent.
type eventSink struct{ ev []liveEvent }

func (s *eventSink) Request(r *reassembly.Request)       { s.ev = append(s.ev, liveEvent{req: r}) }
func (s *eventSink) Response(r *reassembly.Response)     { s.ev = append(s.ev, liveEvent{resp: r}) }
func (s *eventSink) ConnEnd(e *reassembly.ConnEnd)       { s.ev = append(s.ev, liveEvent{end: e}) }
func (s *eventSink) TLSStart(e *reassembly.TLSStart)     { s.ev = append(s.ev, liveEvent{tls: e}) }
func (s *eventSink) TLSRecords(e *reassembly.TLSRecords) { s.ev = append(s.ev, liveEvent{recs: e}) }

// liveBatch is what a worker sends: its events since the last batch and
// the time it has reached (a packet's, or the clock's when idle).
type liveBatch struct {
	worker int
	events []liveEvent
	upTo   time.Time
	asm    reassembly.Stats // the worker's Assembler's counters
	err    error            // a read error ended the worker
	last   bool             // the worker has ended (after its Assembler's Close)
}

// liveTap is -w and --write-failing, shared by the workers.
type liveTap struct {
	mu   sync.Mutex
	pw   *pcapOut
	ring *packetRing
}

func (t *liveTap) packet(p *capture.Packet, raw []byte) {
	if t.pw == nil {
		return
	}
	t.mu.Lock()
	if t.ring != nil {
		t.ring.add(p, raw)
	} else {
		t.pw.write(p.CI, raw)
	}
	t.mu.Unlock()
}

func (t *liveTap) failed() bool {
	if t.pw == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pw.err != nil
}

func (t *liveTap) flush() {
	if t.pw != nil {
		t.mu.Lock()
		t.pw.flush()
		t.mu.Unlock()
	}
}

// liveWorkers runs one worker per socket.
type liveWorkers struct {
	socks []*capture.Live
	asms  []*reassembly.Assembler
	out   chan liveBatch
	free  []chan []liveEvent // each worker's emptied event slices
	tap   *liveTap
	last  []reassembly.Stats // each worker's Assembler's counters, as last sent
}

func startLiveWorkers(socks []*capture.Live, ropt reassembly.Options, tap *liveTap) *liveWorkers {
	n := len(socks)
	f := &liveWorkers{socks: socks, out: make(chan liveBatch, 64*n), tap: tap, last: make([]reassembly.Stats, n)}
	ropt.MaxFlows = max(100, ropt.MaxFlows/n)
	sinks := make([]*eventSink, n)
	for w := range socks {
		o := ropt
		o.IDBase, o.IDStride = reassembly.ConnID(w), reassembly.ConnID(n)
		sinks[w] = &eventSink{}
		f.asms = append(f.asms, reassembly.New(sinks[w], o))
		f.free = append(f.free, make(chan []liveEvent, 64))
	}
	for w, l := range socks {
		go f.work(w, l, f.asms[w], sinks[w])
	}
	return f
}

// work reads one socket. Events go out as soon as a packet made some (a
// verdict waits for them), and the worker's time at least every 100 ms.
func (f *liveWorkers) work(w int, l *capture.Live, asm *reassembly.Assembler, sink *eventSink) {
	defer exitOnPanic()
	var upTo, sent time.Time
	send := func(last bool, err error) {
		f.out <- liveBatch{worker: w, events: sink.ev, upTo: upTo, asm: asm.Stats(), last: last, err: err}
		select {
		case s := <-f.free[w]:
			sink.ev = s
		default:
			sink.ev = make([]liveEvent, 0, 16)
		}
		sent = upTo
	}
	for {
		p, err := l.Next()
		switch {
		case err == nil:
			f.tap.packet(p, l.Raw())
			asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
			if p.CI.Timestamp.After(upTo) {
				upTo = p.CI.Timestamp
			}
		case errors.Is(err, capture.ErrTimeout):
			upTo = time.Now()
			asm.Flush(upTo)
		default: // closed (io.EOF), or a read error
			asm.Close()
			if errors.Is(err, io.EOF) {
				err = nil
			}
			send(true, err)
			return
		}
		if len(sink.ev) > 0 || upTo.Sub(sent) >= 100*time.Millisecond {
			send(false, nil)
		}
	}
}

// close ends the capture: each worker's Next returns io.EOF within 100 ms.
func (f *liveWorkers) close() {
	for _, l := range f.socks {
		l.Close()
	}
}

// run applies the workers' events to sink (an, or a wrapper of it) on the
// calling goroutine until
// every worker has ended, deciding up to the slowest worker's time; tick
// is called after each decision and ends the capture when it returns
// true. It returns the first read error.
func (f *liveWorkers) run(sink reassembly.Sink, an *analyze.Analyzer, stop *atomic.Bool, tick func(now time.Time) bool) error {
	tls, _ := sink.(reassembly.TLSSink)
	n := len(f.socks)
	upTo := make([]time.Time, n)
	ended := make([]bool, n)
	var lastDecide time.Time
	var readErr error
	closed := false
	for left := n; left > 0; {
		b := <-f.out
		for _, e := range b.events {
			switch {
			case e.req != nil:
				sink.Request(e.req)
			case e.resp != nil:
				sink.Response(e.resp)
			case e.end != nil:
				sink.ConnEnd(e.end)
			case e.tls != nil && tls != nil:
				tls.TLSStart(e.tls)
			case e.recs != nil && tls != nil:
				tls.TLSRecords(e.recs)
			}
		}
		clear(b.events)
		select {
		case f.free[b.worker] <- b.events[:0]:
		default:
		}
		f.last[b.worker] = b.asm
		if b.upTo.After(upTo[b.worker]) {
			upTo[b.worker] = b.upTo
		}
		if b.last {
			ended[b.worker] = true
			left--
			if b.err != nil && readErr == nil {
				readErr = b.err
			}
		}
		now, any := time.Time{}, false
		for w, t := range upTo {
			if !ended[w] && (!any || t.Before(now)) {
				now, any = t, true
			}
		}
		stopNow := stop.Load() || b.err != nil
		if any && now.Sub(lastDecide) >= 100*time.Millisecond {
			an.Decide(now)
			lastDecide = now
			stopNow = tick(now) || stopNow
		}
		if stopNow && !closed {
			closed = true
			f.close()
		}
	}
	return readErr
}

// asmStats sums the workers' Assembler counters as last reported (the
// calling goroutine's view while they run).
func (f *liveWorkers) asmStats() reassembly.Stats {
	return sumStats(f.last)
}

// liveStats sums the sockets' counters; safe while the workers run.
func (f *liveWorkers) liveStats() capture.LiveStats {
	var ls capture.LiveStats
	for _, l := range f.socks {
		x := l.Stats()
		ls.Packets += x.Packets
		ls.KernelDrops += x.KernelDrops
		ls.QueueFreezes += x.QueueFreezes
		ls.Received += x.Received
		ls.TCP += x.TCP
		ls.Bytes += x.Bytes
	}
	return ls
}

// stats sums the sockets' and the assemblers' counters (after run).
func (f *liveWorkers) stats() (capture.LiveStats, reassembly.Stats) {
	ls := f.liveStats()
	st := make([]reassembly.Stats, len(f.asms))
	for i, a := range f.asms {
		st[i] = a.Stats()
	}
	return ls, sumStats(st)
}

func sumStats(st []reassembly.Stats) reassembly.Stats {
	var as reassembly.Stats
	for _, x := range st {
		as.Add(x)
	}
	return as
}
