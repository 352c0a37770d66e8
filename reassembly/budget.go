package reassembly

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// Budget is one byte budget for all the state wsdiag holds (--max-memory).
// Each subsystem accounts its bytes (an estimate per object: struct sizes
// plus buffer capacities, updated where they change, never per packet
// unless a buffer did) and, when the total reaches the limit, gives up its
// oldest idle state: quiet connections before HTTP and TLS ones. A Budget
// is safe for concurrent use (several workers share one); a nil *Budget
// bounds nothing.
type Budget struct {
	limit   int64
	state   int64 // what the state may hold: the limit less the runtime's share
	total   atomic.Int64
	used    [NumMem]atomic.Int64
	evicted [NumMem]atomic.Uint64
	evBytes atomic.Int64
}

// Mem names a subsystem of the budget.
type Mem uint8

const (
	MemQuiet   Mem = iota // connections that carried no HTTP or TLS yet
	MemConns              // connections and their parser buffers
	MemTLS                // TLS record state and key logs
	MemPending            // exchanges waiting to be paired and decided, TLS legs (analyze)
	MemPages              // gopacket's out-of-order pages (reserved)
	MemFixed              // batches between workers, the --write-failing arena (reserved)
	NumMem
)

var memNames = [NumMem]string{"quiet_conns", "conns", "tls", "pending", "pages", "fixed"}

func (m Mem) String() string { return memNames[m] }

// NewBudget returns a budget of limit bytes. The state accounted may take
// three quarters of it less 8 MiB: the rest is the process's own (its code,
// the Go runtime, the allocator's size classes, garbage not yet collected),
// which the estimates do not see; measured on the floods of
// cmd/wsbench/floods.sh, so that the process as a whole stays near limit.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, state: max(limit/4, limit-limit/4-8<<20)}
}

// Limit is the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Add charges n bytes (negative: releases) to subsystem m.
func (b *Budget) Add(m Mem, n int64) {
	if b == nil || n == 0 {
		return
	}
	b.used[m].Add(n)
	b.total.Add(n)
}

// Over reports whether the state held has reached the limit.
func (b *Budget) Over() bool { return b != nil && b.total.Load() > b.state }

// Excess is how many bytes must go to come back a little under the limit
// (a sixteenth of it), 0 when under it.
func (b *Budget) Excess() int64 {
	if b == nil {
		return 0
	}
	if t := b.total.Load(); t > b.state {
		return t - (b.state - b.limit/16)
	}
	return 0
}

// Used is the total charged, UsedBy what subsystem m holds.
func (b *Budget) Used() int64            { return b.total.Load() }
func (b *Budget) UsedBy(m Mem) int64     { return b.used[m].Load() }
func (b *Budget) EvictedBy(m Mem) uint64 { return b.evicted[m].Load() }

// EvictedBytes is the sum of the estimates of all evicted state.
func (b *Budget) EvictedBytes() int64 {
	if b == nil {
		return 0
	}
	return b.evBytes.Load()
}

// Evict counts one object of subsystem m given up for the budget.
func (b *Budget) Evict(m Mem, bytes int64) {
	if b == nil {
		return
	}
	b.evicted[m].Add(1)
	b.evBytes.Add(bytes)
}

// Account is one subsystem's view of the budget, for a package that must
// not depend on this one's types (analyze's Memory interface).
func (b *Budget) Account(m Mem) *Account { return &Account{b, m} }

// Account charges one subsystem of a Budget.
type Account struct {
	b *Budget
	m Mem
}

// Charge adds n bytes (negative: releases).
func (a *Account) Charge(n int64) { a.b.Add(a.m, n) }

// Excess is how many of this subsystem's bytes should go now: the
// budget's excess, when this subsystem holds more than the connections
// do, quiet ones included (otherwise reassembly gives up connections
// first).
func (a *Account) Excess() int64 {
	x := a.b.Excess()
	if x == 0 || a.b.UsedBy(a.m) < a.b.UsedBy(MemQuiet)+a.b.UsedBy(MemConns)+a.b.UsedBy(MemTLS) {
		return 0
	}
	return x
}

// Evicted counts one object given up for the budget.
func (a *Account) Evicted(bytes int64) { a.b.Evict(a.m, bytes) }

// Estimated costs of what a connection holds besides its buffers. The map
// holds each connection under both directions' keys; gopacket's
// connection, once it reassembles one, holds two half-connections and its
// own map entry; an HTTP/2 connection its HPACK tables. The figures are
// calibrated on the floods of cmd/wsbench/floods.sh against the heap in
// use: the map's tables run half full after growth and tombstones, and
// the allocator's size classes and the collector's lag add about half the
// stream again.
var (
	streamCost = int64(unsafe.Sizeof(stream{}))*3/2 + 4*int64(unsafe.Sizeof(connKey{})+unsafe.Sizeof(connRef{}))
)

const (
	slowCost = 1536
	wsCost   = 512
	h2Cost   = 12 << 10
)

// footprint estimates the bytes s holds and the subsystem they count in:
// a TLS connection's in MemTLS, an HTTP one's in MemConns, until then
// MemQuiet.
func (s *stream) footprint() (int64, Mem) {
	n := streamCost + int64(s.dir[0].Buffered()+s.dir[1].Buffered()+cap(s.body[0])+cap(s.body[1]))
	if s.slow {
		n += slowCost
	}
	if s.ws != nil {
		n += wsCost
	}
	if s.h2 != nil {
		n += h2Cost
	}
	if s.hasPlain {
		n += int64(unsafe.Sizeof(plainState{}))
	}
	m := MemQuiet
	switch {
	case s.tls != nil:
		n += int64(s.tls.Footprint())
		m = MemTLS
	case s.engaged:
		m = MemConns
	}
	return n, m
}

// account brings the budget up to date with what s holds now.
func (s *stream) account() {
	b := s.asm.opt.Budget
	if b == nil || s.forgotten {
		return
	}
	n, m := s.footprint()
	if m != s.memSub {
		b.Add(s.memSub, -int64(s.mem))
		b.Add(m, int64(s.mem))
		s.memSub = m
	}
	if d := n - int64(s.mem); d != 0 {
		b.Add(m, d)
		s.mem = int32(n)
	}
}

// release gives back what s was charged: it is forgotten.
func (s *stream) release() {
	b := s.asm.opt.Budget
	if b == nil || s.forgotten {
		return
	}
	b.Add(s.memSub, -int64(s.mem))
	s.mem = 0
	s.forgotten = true
}

// shed gives up connections until the budget has room: those ended by a
// RST first, then the quiet ones (no HTTP or TLS), least recently active
// first, then, while connections hold more than the analyzer, the
// HTTP and TLS ones; gopacket's last, the idlest first.
func (a *Assembler) shed() {
	b := a.opt.Budget
	for s := a.dead.oldest; s != nil && b.Excess() > 0; s = a.dead.oldest {
		a.forget(s)
	}
	for s := a.quiet.oldest; s != nil && b.Excess() > 0; s = a.quiet.oldest {
		a.evictFor(s)
	}
	connsHeavier := func() bool {
		return b.UsedBy(MemConns)+b.UsedBy(MemTLS) >= b.UsedBy(MemPending)
	}
	// HTTP and TLS connections: at most the excess seen now and a quarter
	// of them per call. Evicting one may not free its bytes at once (the
	// analyzer keeps what it reported until the verdict is out), and
	// chasing the total would evict the newest too.
	x, n := b.Excess(), a.live.n/4
	for s := a.live.oldest; s != nil && x > 0 && n > 0 && connsHeavier(); s = a.live.oldest {
		x -= int64(s.mem)
		n--
		a.evictFor(s)
	}
	if a.stats.Handovers > 0 && b.Excess() > 0 && connsHeavier() {
		before := a.stats.Open
		now := a.ctx.ci.Timestamp
		for _, idle := range []time.Duration{time.Minute, 10 * time.Second, time.Second, 100 * time.Millisecond, 0} {
			if b.Excess() == 0 {
				break
			}
			a.asm.FlushCloseOlderThan(now.Add(-idle))
		}
		a.stats.MemEvicted += uint64(before - a.stats.Open)
	}
}

func (a *Assembler) evictFor(s *stream) {
	m, bytes := s.memSub, int64(s.mem)
	s.finish()
	a.forget(s)
	a.stats.MemEvicted++
	a.opt.Budget.Evict(m, bytes)
}
