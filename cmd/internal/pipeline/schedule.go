package pipeline

import "time"

// schedule places what a Pipeline does between packets: the Assemblers
// give up old holes and idle connections every second of capture time
// (flush), and the analyzer decides the attempts whose grace has passed
// as capture time advances (decide). Inline or over workers, the same
// schedule runs over the same packets, so both happen at the same packets
// and the analyzer is given the same events in the same order: the
// verdicts, and their order, do not depend on the number of workers.
type schedule struct {
	seq        uint64    // packets numbered so far
	now        time.Time // the latest capture time seen
	nextFlush  time.Time
	lastDecide time.Time
	since      int // packets since the last decision
	// behind is how far input may come out of time order (several
	// interfaces of a pcapng): decisions stay that far behind now.
	behind time.Duration
}

const (
	// flushEvery is the capture time between two flushes (as an
	// Assembler does by itself).
	flushEvery = time.Second
	// decideStep is the capture time between two decisions, and
	// decideEvery the fewest packets: deciding per step of time alone
	// would make a capture whose every packet is a step later decide
	// once per packet.
	decideStep  = 100 * time.Millisecond
	decideEvery = 4096
)

// step is what happens at one packet.
type step struct {
	seq    uint64
	flush  bool      // the Assemblers flush at now before it
	decide bool      // then the analyzer decides up to upTo
	now    time.Time // the capture time reached
	upTo   time.Time
}

// next numbers the packet at ts and says what happens before it.
func (s *schedule) next(ts time.Time) step {
	st := step{seq: s.seq}
	s.seq++
	if ts.After(s.now) {
		s.now = ts
	}
	st.now = s.now
	if s.nextFlush.IsZero() {
		s.nextFlush = s.now.Add(flushEvery)
		s.lastDecide = s.now
	} else if !s.now.Before(s.nextFlush) {
		st.flush = true
		s.nextFlush = s.now.Add(flushEvery)
	}
	s.since++
	if s.since >= decideEvery && s.now.Sub(s.lastDecide) >= decideStep {
		st.decide, st.upTo = true, s.now.Add(-s.behind)
		s.since, s.lastDecide = 0, s.now
	}
	return st
}
