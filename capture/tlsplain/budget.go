package tlsplain

import "time"

// The budget: every traced call costs the proxy a trap on entry and one on
// return, and a captured one also the copy of its bytes. From the counters
// and the measured costs the controller estimates what the probes cost the
// traced processes each second, and sets the share of new connections that
// are captured (BPF draws for each connection when it is first seen; a
// connection is captured whole or not at all). A connection left out still
// pays its traps: sampling cannot go below that. When those traps alone
// exceed the budget for pauseAfter seconds, and no connection is being
// captured, the Probe takes its uprobes off for a while (a pause: nothing
// traps, nothing is read) and puts them back for new connections only.

// pauseAfter is how many seconds in a row the traps of the connections
// left out may exceed the budget before the probes come off; a pause
// lasts firstPause, twice as long each time it comes back within two
// minutes, at most a minute. (Variables: the tests shorten them.)
var (
	pauseAfter = 3
	firstPause = 5 * time.Second
)

// counts are the counters the estimate uses: traps (every probe hit),
// calls captured with their bytes, calls on connections left out.
type counts struct {
	traps, calls, bytes, skipped uint64
}

// controller holds the sampling share under the budget.
type controller struct {
	costs  Costs
	budget float64 // CPUs; ≤ 0: no limit
	keep   float64 // share of new connections captured
	last   counts
	cost   float64 // the last estimate, in CPUs
	peak   float64
	// over counts the seconds in a row over the budget with the share
	// at 0: what is left is the traps and the connections still open.
	over int
}

func newController(c Costs, budget float64) *controller {
	return &controller{costs: c, budget: budget, keep: 1}
}

// estimate is the CPU time the counts cost, in CPUs over dt: every trap
// (half a call left out), and for each captured call what capturing adds
// (its record) and its bytes; skipped is the part of the connections left
// out, which sampling cannot lower.
func (c *controller) estimate(d counts, dt time.Duration) (total, skipped float64) {
	if dt <= 0 {
		return 0, 0
	}
	s := dt.Seconds() * 1e9
	trap := float64(c.costs.Skip) / 2
	record := max(float64(c.costs.Call-c.costs.Skip), 0)
	total = (float64(d.traps)*trap + float64(d.calls)*record + float64(d.bytes)*c.costs.Byte) / s
	skipped = min(float64(2*d.skipped)*trap/s, total)
	return total, skipped
}

// step takes the counters now, dt after the last step, and returns the
// share of new connections to capture from now on.
func (c *controller) step(now counts, dt time.Duration) float64 {
	d := counts{now.traps - c.last.traps, now.calls - c.last.calls, now.bytes - c.last.bytes, now.skipped - c.last.skipped}
	c.last = now
	total, skipped := c.estimate(d, dt)
	captured := total - skipped
	c.cost = total
	c.peak = max(c.peak, c.cost)
	if c.budget > 0 && c.keep == 0 && c.cost > c.budget {
		c.over++
	} else {
		c.over = 0
	}
	if c.budget <= 0 {
		c.keep = 1
		return c.keep
	}
	switch {
	case c.cost > c.budget:
		// Shrink the captured part to what the budget leaves beside
		// the traps of the connections left out (new connections only
		// follow the share; the open ones go on being captured).
		// When those traps alone exceed it, capturing any connection
		// only adds: none is.
		room := c.budget - skipped
		switch {
		case room <= 0:
			c.keep = 0
		case captured > 0:
			c.keep *= 0.8 * room / captured
		default:
			c.keep /= 2
		}
		if c.keep < 1.0/65536 {
			c.keep = 0
		}
	case c.cost < c.budget/2:
		c.keep = min(1, c.keep*1.5+1.0/256)
	}
	return c.keep
}
