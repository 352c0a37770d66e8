package tlsplain

import (
	"testing"
	"time"
)

// TestController drives the sampling share with the figures measured on
// this project's VM (12 µs a captured call, 0.06 ns a byte, 11 µs a call
// left out).
func TestController(t *testing.T) {
	costs := Costs{Call: 12 * time.Microsecond, Skip: 11 * time.Microsecond, Byte: 0.06}
	c := newController(costs, 0.05)
	var now counts
	// Each call traps twice.
	step := func(calls, bytes, skipped uint64) float64 {
		now.traps += 2 * (calls + skipped)
		now.calls += calls
		now.bytes += bytes
		now.skipped += skipped
		return c.step(now, time.Second)
	}
	// 1000 calls a second: 1.2 % of a CPU, all captured.
	if k := step(1000, 1e6, 0); k != 1 || c.cost < 0.011 || c.cost > 0.013 {
		t.Fatalf("light load: keep %v, cost %v", k, c.cost)
	}
	// 20000 calls a second: 24 %, four times the budget: the share
	// drops to what fits beside nothing left out yet (0.8·0.05/0.24).
	k := step(20000, 2e7, 0)
	if k < 0.1 || k > 0.2 {
		t.Fatalf("heavy load: keep %v (cost %v)", k, c.cost)
	}
	// Once most new connections are left out, their calls still trap:
	// 2000 captured, 18000 left out = 2.4 % + 19.8 %: over the budget,
	// and the traps alone are: nothing is captured any more.
	k2 := step(2000, 2e6, 18000)
	if k2 != 0 || c.cost < 0.2 {
		t.Fatalf("traps alone over budget: keep %v → %v (cost %v)", k, k2, c.cost)
	}
	for i := 0; i < 20; i++ {
		step(0, 0, 20000)
	}
	if c.keep != 0 {
		t.Errorf("keep %v after 20 s over budget with nothing captured", c.keep)
	}
	// The traps alone over the budget, every second: time to pause.
	if c.over < pauseAfter {
		t.Errorf("over %d after 20 s of traps alone over the budget", c.over)
	}
	step(0, 0, 100)
	if c.over != 0 {
		t.Errorf("over %d once the traps fit", c.over)
	}
	if c.peak < 0.2 {
		t.Errorf("peak %v", c.peak)
	}
	// Quiet again: the share climbs back to all.
	for i := 0; i < 30; i++ {
		step(10, 1000, 0)
	}
	if c.keep != 1 {
		t.Errorf("keep %v after a quiet half minute", c.keep)
	}
	// No budget: everything, always.
	u := newController(costs, -1)
	if k := u.step(counts{traps: 2e6, calls: 1e6}, time.Second); k != 1 {
		t.Errorf("no budget: keep %v", k)
	}
}
