package pipeline

import "time"

// clock is the analyzer goroutine's view of its workers' capture times.
// Attempts are decided only up to the slowest worker still running: a
// worker that lags may still hold a leg of an attempt another worker has
// finished, and a leg's events must never come after its attempt was
// judged.
type clock struct {
	upTo    []time.Time // each worker's time, as far as its batches told
	ended   []bool
	decided time.Time // the time of the last decision
}

func newClock(workers int) clock {
	return clock{upTo: make([]time.Time, workers), ended: make([]bool, workers)}
}

// advance records that worker w has reached t.
func (c *clock) advance(w int, t time.Time) {
	if t.After(c.upTo[w]) {
		c.upTo[w] = t
	}
}

// end records that worker w will send nothing more.
func (c *clock) end(w int) { c.ended[w] = true }

// due returns the slowest running worker's time when at least every has
// passed since the last decision, and takes it as decided.
func (c *clock) due(every time.Duration) (time.Time, bool) {
	var now time.Time
	running := false
	for w, t := range c.upTo {
		if !c.ended[w] && (!running || t.Before(now)) {
			now, running = t, true
		}
	}
	if !running || now.Sub(c.decided) < every {
		return now, false
	}
	c.decided = now
	return now, true
}
