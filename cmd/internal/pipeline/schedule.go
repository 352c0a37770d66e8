package pipeline

import (
	"math"
	"time"
)

// schedule places what a Pipeline does between packets: the Assemblers
// give up old holes and idle connections every second of capture time
// (flush), and the analyzer decides the attempts whose grace has passed
// as capture time advances (decide). Inline or over workers, the same
// schedule runs over the same packets, so both happen at the same packets
// and the analyzer is given the same events in the same order: the
// verdicts, and their order, do not depend on the number of workers.
type schedule struct {
	seq uint64 // packets numbered so far
	// Capture times in nanoseconds (clamped: see nanos): the latest seen,
	// the next flush, the last decision.
	now, nextFlush, lastDecide int64
	started                    bool
	since                      int // packets since the last decision
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
	flush  bool // the Assemblers flush at now before it
	decide bool // then the analyzer decides up to now-behind
	now    int64
}

// next numbers the packet at ts and says what happens before it.
func (s *schedule) next(ts time.Time) step {
	st := step{seq: s.seq}
	s.seq++
	if t := nanos(ts); t > s.now || !s.started {
		s.now = t
	}
	st.now = s.now
	if !s.started {
		s.started = true
		s.nextFlush = s.now + int64(flushEvery)
		s.lastDecide = s.now
	} else if s.now >= s.nextFlush {
		st.flush = true
		s.nextFlush = s.now + int64(flushEvery)
	}
	s.since++
	if s.since >= decideEvery && s.now-s.lastDecide >= int64(decideStep) {
		st.decide = true
		s.since, s.lastDecide = 0, s.now
	}
	return st
}

// time is a capture time of the schedule as a time.
func (s *schedule) time(t int64) time.Time { return time.Unix(0, t).UTC() }

// upTo is how far a decision at now decides.
func (s *schedule) upTo(now int64) time.Time { return s.time(now).Add(-s.behind) }

// nanos is t in nanoseconds since 1970, clamped to what an int64 holds
// (a hostile capture's time stamps may lie centuries away).
func nanos(t time.Time) int64 {
	const maxSec = math.MaxInt64/int64(time.Second) - 1
	switch sec := t.Unix(); {
	case sec > maxSec:
		return math.MaxInt64
	case sec < -maxSec:
		return math.MinInt64
	}
	return t.UnixNano()
}
