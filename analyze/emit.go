package analyze

import "sync"

// Verdicts and events leave the analyzer in the order they were decided,
// through its emitter. With Options.Assemblers > 0 an attempt's verdict is
// only begun where it is decided (its code, severity and the ends the
// analyzer counts and remembers: head); the rest (evidence, advice, the
// legs: body), which reads nothing but the attempt, is assembled by
// Assemblers goroutines, and one more goroutine hands verdicts and events
// to Options' callbacks in the order they were decided. Judging thus
// overlaps reading, and the body of many attempts is assembled on every
// core while the analyzer goes on pairing.

// emitted is one verdict or event on its way out.
type emitted struct {
	v  *Verdict
	ev *Event
	// at and p, when set, are the attempt whose body is still to be
	// assembled into v and its primary finding; ready is closed once it
	// is.
	at    *attempt
	p     *finding
	ready chan struct{}
}

// emitter puts out verdicts and events: inline, or through the goroutines
// (async).
type emitter struct {
	verdicts func(*Verdict)
	events   func(*Event)
	async    bool
	queue    chan *emitted // in order, to the goroutine that calls back
	work     chan *emitted // to the assemblers
	done     sync.WaitGroup
}

// emitBuffer bounds the verdicts between the analyzer and its callbacks.
const emitBuffer = 256

func newEmitter(verdicts func(*Verdict), events func(*Event), assemblers int) *emitter {
	e := &emitter{verdicts: verdicts, events: events}
	if assemblers <= 0 {
		return e
	}
	e.async = true
	e.queue = make(chan *emitted, emitBuffer)
	e.work = make(chan *emitted, emitBuffer)
	e.done.Add(assemblers + 1)
	for i := 0; i < assemblers; i++ {
		go func() {
			defer e.done.Done()
			for x := range e.work {
				x.at.body(x.v, x.p)
				close(x.ready)
			}
		}()
	}
	go func() {
		defer e.done.Done()
		for x := range e.queue {
			if x.ready != nil {
				<-x.ready
			}
			e.put(x)
		}
	}()
	return e
}

func (e *emitter) put(x *emitted) {
	switch {
	case x.ev != nil:
		if e.events != nil {
			e.events(x.ev)
		}
	default:
		e.verdicts(x.v)
	}
}

// verdict puts out a whole verdict.
func (e *emitter) verdict(v *Verdict) { e.send(&emitted{v: v}) }

// event puts out an event.
func (e *emitter) event(ev *Event) { e.send(&emitted{ev: ev}) }

// attempt puts out at's verdict, of which v is the head and p the primary
// finding: its body is assembled on an assembler when at reads nothing
// that the analyzer goes on changing (the TLS leg of an attempt judged
// from its upstream side does), here otherwise.
func (e *emitter) attempt(at *attempt, v *Verdict, p *finding) {
	if !e.async || at.kind != fromClient || at.enc != nil {
		at.body(v, p)
		e.verdict(v)
		return
	}
	x := &emitted{v: v, at: at, p: p, ready: make(chan struct{})}
	e.queue <- x
	e.work <- x
}

func (e *emitter) send(x *emitted) {
	if e.async {
		e.queue <- x
		return
	}
	e.put(x)
}

// drain waits until everything sent is out, and ends the goroutines:
// what comes after is put out inline.
func (e *emitter) drain() {
	if !e.async {
		return
	}
	e.async = false
	close(e.work)
	close(e.queue)
	e.done.Wait()
}
