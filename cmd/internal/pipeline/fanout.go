package pipeline

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// A Feed is one worker's input in a Fanout: a capture socket of a
// PACKET_FANOUT group, or anything else that hands its worker's Assembler
// what it reads (packets, the plaintext of a TLS leg). Its methods but
// Stop are called from the worker's goroutine only.
type Feed interface {
	// Next hands asm what arrived next and returns the capture time
	// reached. When nothing arrived for a while it returns the clock's
	// time (having flushed asm up to it), so that the others' attempts
	// are still decided. It returns io.EOF once the feed has ended, and
	// any other error when reading failed (which ends the feed too).
	Next(asm *reassembly.Assembler) (time.Time, error)
	// Stop ends the feed: Next returns io.EOF soon after. It is called
	// from the analyzer's goroutine.
	Stop()
}

// Fanout runs one goroutine per Feed, each with its own Assembler (live
// capture over every core: the kernel deals whole connections to the
// sockets of a fanout group), and applies their events to one Analyzer
// on the goroutine that calls Run.
type Fanout struct {
	feeds []Feed
	asms  []*reassembly.Assembler
	out   chan fed
	free  []chan []event // each worker's emptied event slices
	last  []reassembly.Stats
	guard func()
}

// fed is what a worker sends: its events since the last time and the
// time it has reached (a packet's, or the clock's when idle).
type fed struct {
	worker int
	events []event
	upTo   time.Time
	asm    reassembly.Stats // the worker's Assembler's counters
	err    error            // a read error ended the worker
	last   bool             // the worker has ended (after its Assembler's Close)
}

// sendEvery is the most capture time a worker lets pass without telling
// the analyzer's goroutine how far it has come.
const sendEvery = 100 * time.Millisecond

// NewFanout starts a worker per feed; c.Workers is ignored. The
// connection budget (opt.MaxFlows) is shared out among the workers.
func NewFanout(feeds []Feed, opt reassembly.Options, c Config) *Fanout {
	n := len(feeds)
	f := &Fanout{feeds: feeds, out: make(chan fed, 64*n), last: make([]reassembly.Stats, n), guard: c.guard()}
	opt.MaxFlows = max(100, opt.MaxFlows/n)
	logs := make([]*eventLog, n)
	for w := range feeds {
		o := opt
		o.IDBase, o.IDStride = reassembly.ConnID(w), reassembly.ConnID(n)
		logs[w] = &eventLog{}
		f.asms = append(f.asms, reassembly.New(logs[w], o))
		f.free = append(f.free, make(chan []event, 64))
	}
	for w := range feeds {
		go f.work(w, logs[w])
	}
	return f
}

// work runs one feed. Events go out as soon as an input made some (a
// verdict waits for them), and the worker's time at least every sendEvery.
func (f *Fanout) work(w int, log *eventLog) {
	defer f.guard()
	asm := f.asms[w]
	var upTo, sent time.Time
	send := func(last bool, err error) {
		f.out <- fed{worker: w, events: log.events, upTo: upTo, asm: asm.Stats(), last: last, err: err}
		select {
		case s := <-f.free[w]:
			log.events = s
		default:
			log.events = make([]event, 0, 16)
		}
		sent = upTo
	}
	for {
		t, err := f.feeds[w].Next(asm)
		if err != nil {
			asm.Close()
			if errors.Is(err, io.EOF) {
				err = nil
			}
			send(true, err)
			return
		}
		if t.After(upTo) {
			upTo = t
		}
		if len(log.events) > 0 || upTo.Sub(sent) >= sendEvery {
			send(false, nil)
		}
	}
}

// Hooks are what Run calls besides the analyzer.
type Hooks struct {
	// Observer, if not nil, sees the events after the analyzer.
	Observer Observer
	// Stop, once true, stops every feed.
	Stop *atomic.Bool
	// Tick is called after each decision (every sendEvery of the slowest
	// worker's time) and stops every feed when it returns true.
	Tick func(now time.Time) bool
}

// Run applies the workers' events to an until every feed has ended,
// deciding up to the slowest worker's time, and returns the first read
// error.
func (f *Fanout) Run(an *analyze.Analyzer, h Hooks) error {
	clk := newClock(len(f.feeds))
	var readErr error
	stopped := false
	for left := len(f.feeds); left > 0; {
		b := <-f.out
		apply(b.events, an, h.Observer)
		select {
		case f.free[b.worker] <- b.events[:0]:
		default:
		}
		f.last[b.worker] = b.asm
		clk.advance(b.worker, b.upTo)
		if b.last {
			clk.end(b.worker)
			left--
			if readErr == nil {
				readErr = b.err
			}
		}
		stop := h.Stop != nil && h.Stop.Load() || b.err != nil
		if now, ok := clk.due(sendEvery); ok {
			an.Decide(now)
			stop = h.Tick != nil && h.Tick(now) || stop
		}
		if stop && !stopped {
			stopped = true
			for _, fd := range f.feeds {
				fd.Stop()
			}
		}
	}
	return readErr
}

// Stats sums the workers' Assembler counters as they last reported them:
// while Run runs, on its goroutine; after Run, the final counts.
func (f *Fanout) Stats() reassembly.Stats {
	var st reassembly.Stats
	for _, x := range f.last {
		st.Add(x)
	}
	return st
}
