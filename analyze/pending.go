package analyze

import (
	"sort"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// This file keeps the exchanges that wait to be paired and decided, and
// finds pairing candidates without scanning all of them: by
// Sec-WebSocket-Key when there is one, otherwise by time window (an
// upstream leg starts after the client's request and before its answer).

// insert adds x keeping xs sorted by request start. Requests arrive in
// capture order, so x almost always goes at the end.
func (a *Analyzer) insert(x *exchange) {
	i := len(a.xs)
	for i > 0 && a.xs[i-1].req.Start.After(x.req.Start) {
		i--
	}
	a.xs = append(a.xs, nil)
	copy(a.xs[i+1:], a.xs[i:])
	a.xs[i] = x
	if k := keyOf(x); k != "" {
		a.byKey[k] = append(a.byKey[k], x)
	}
}

func (a *Analyzer) unindex(x *exchange) {
	k := keyOf(x)
	if k == "" {
		return
	}
	if xs := removeX(a.byKey[k], x); len(xs) > 0 {
		a.byKey[k] = xs
	} else {
		delete(a.byKey, k)
	}
}

func keyOf(x *exchange) string { return x.key }

// firstFrom returns the index of the first pending exchange whose request
// started at or after t.
func (a *Analyzer) firstFrom(t time.Time) int {
	return sort.Search(len(a.xs), func(i int) bool { return !a.xs[i].req.Start.Before(t) })
}

// maxScan bounds how many pending exchanges one pairing question looks at
// by time window: hostile time stamps can make the window hold everything
// pending, and the analyzer must stay linear on any capture.
const maxScan = 2048

// claimUpstream finds the best upstream leg for x among undecided
// exchanges and claims it.
func (a *Analyzer) claimUpstream(x *exchange) *exchange {
	var best *exchange
	bestScore := 0
	consider := func(y *exchange) {
		if y == x || y.decided || y.down != nil || !a.upstreamAllowed(y) {
			return
		}
		s := pairScore(x, y)
		if s > bestScore || s == bestScore && s > 0 && y.req.Start.Before(best.req.Start) {
			best, bestScore = y, s
		}
	}
	if k := keyOf(x); k != "" {
		for _, y := range a.byKey[k] {
			consider(y)
		}
	}
	if bestScore < scoreExact {
		// Fallback: a proxy that strips the key. Its upstream request
		// starts between x's request and x's answer.
		end, bounded := x.answeredAt()
		for i, lim := a.firstFrom(x.req.Start), 0; i < len(a.xs) && lim < maxScan; i, lim = i+1, lim+1 {
			y := a.xs[i]
			if bounded && y.req.Start.After(end) {
				break
			}
			if keyOf(y) == "" || h2WebSocket(x.req) {
				consider(y)
			}
		}
	}
	if best == nil {
		return nil
	}
	best.down = x
	x.up = best
	x.conf = confidence(bestScore)
	return best
}

// answeredAt is when x's own connection answered or ended: no upstream leg
// for x starts later. A connection the capture ended while it waited was
// not answered: its upstream leg may have started after its last packet.
func (x *exchange) answeredAt() (time.Time, bool) {
	switch {
	case x.resp != nil:
		return x.resp.Start, true
	case x.end != nil && x.end.Reason != reassembly.EndCapture:
		return x.end.Last, true
	}
	return time.Time{}, false
}

// waitingSet describes the undecided exchanges that cannot be decided yet
// in a Decide pass: those still open (no answer), and how far back a
// settled one's request may lie while its answer is still pending grace.
type waitingSet struct {
	open    []*exchange
	maxSpan time.Duration
}

func (a *Analyzer) waiting() waitingSet {
	var w waitingSet
	for _, x := range a.xs {
		if x.decided {
			continue
		}
		t, ok := x.answeredAt()
		if !ok {
			w.open = append(w.open, x)
			continue
		}
		if d := t.Sub(x.req.Start); d > w.maxSpan {
			w.maxSpan = d
		}
	}
	return w
}

// mayBeUpstream reports whether an undecided exchange that started before
// x could still claim x as its upstream leg: then x must wait for it.
// Earlier exchanges that could be decided were decided before x in
// Decide's loop, so any candidate found is one that is still waiting.
func (a *Analyzer) mayBeUpstream(x *exchange, w waitingSet) bool {
	onlyH2 := false
	could := func(v *exchange) bool {
		return v != x && !v.decided && v.up == nil && !v.req.Start.After(x.req.Start) &&
			(!onlyH2 || h2WebSocket(v.req)) && pairScore(v, x) > 0
	}
	if k := keyOf(x); k != "" {
		// Only an exchange with the same key can claim a keyed one, or an
		// HTTP/2 client leg, which has none.
		for _, v := range a.byKey[k] {
			if could(v) {
				return true
			}
		}
		if !a.sawH2WS {
			return false
		}
		onlyH2 = true
	}
	for k, v := range w.open {
		if k == maxScan {
			break
		}
		if could(v) {
			return true
		}
	}
	// A settled exchange claims x only if its answer came after x started,
	// so it started at most maxSpan before x; the nearest ones are the
	// likely ones, and at most maxScan of them are looked at.
	lo := max(a.firstFrom(x.req.Start.Add(-w.maxSpan)), a.firstFrom(x.req.Start)-maxScan)
	for i := lo; i < len(a.xs) && !a.xs[i].req.Start.After(x.req.Start); i++ {
		if could(a.xs[i]) {
			return true
		}
	}
	return false
}
