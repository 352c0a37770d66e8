package analyze

import (
	"time"
	"unsafe"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Memory is the analyzer's share of a byte budget (--max-memory): it
// charges what it holds, and when told to, decides its oldest waiting
// exchanges early to give bytes back. The analyzer knows nothing of how
// the budget is kept.
type Memory interface {
	// Charge adds n bytes held (negative: released).
	Charge(n int64)
	// Excess is how many bytes the analyzer should give up now (0: none).
	Excess() int64
	// Evicted counts one exchange decided early for the budget.
	Evicted(bytes int64)
}

// Estimated costs of what the analyzer holds: an exchange (its struct, its
// map entries, the request and response it keeps) and a TLS leg.
const (
	exchangeCost = int64(unsafe.Sizeof(exchange{})) + 3*48
	messageCost  = int64(unsafe.Sizeof(reassembly.Request{}))
	tlsLegCost   = int64(unsafe.Sizeof(tlsLeg{})) + 64
	// A leg that ended keeps its ConnEnd and TLS facts; one whose
	// handshake failed, its verdict (evidence lines) until it is flushed.
	tlsEndCost  = int64(unsafe.Sizeof(reassembly.ConnEnd{})+unsafe.Sizeof(reassembly.TLSInfo{})) + 256
	verdictCost = int64(unsafe.Sizeof(Verdict{})) + 1024
)

// headersCost estimates a header block's bytes.
func headersCost(h reassembly.Headers) int64 {
	n := int64(cap(h)) * int64(unsafe.Sizeof(reassembly.Header{}))
	for _, f := range h {
		n += int64(len(f.Name) + len(f.Value))
	}
	return n
}

// cost estimates what x holds now.
func (x *exchange) cost() int64 {
	n := exchangeCost + messageCost + headersCost(x.req.Headers) + int64(len(x.req.Target)+len(x.key)+len(x.path)+len(x.ua)+len(x.origin))
	if x.resp != nil {
		n += messageCost + headersCost(x.resp.Headers) + int64(len(x.resp.Body))
	}
	if x.end != nil {
		n += tlsEndCost
	}
	return n
}

// recost updates x's charge after it changed.
func (a *Analyzer) recost(x *exchange) {
	if a.opt.Memory == nil {
		return
	}
	c := x.cost()
	a.xsMem += c - x.mem
	x.mem = c
}

// account brings the budget up to date: what the undecided exchanges and
// the TLS legs hold. It runs when they change in number, not per event.
func (a *Analyzer) account() {
	if a.opt.Memory == nil {
		return
	}
	n := a.xsMem + a.tlsMem + int64(cap(a.xs))*8
	if d := n - a.charged; d != 0 {
		a.opt.Memory.Charge(d)
		a.charged = n
	}
}

// shed gives the analyzer's excess back: the oldest half of the TLS legs
// when they hold more than the exchanges, then the oldest waiting
// exchanges, decided early (unpaired if their partner has not come).
func (a *Analyzer) shed(now time.Time) {
	x := a.opt.Memory.Excess()
	if x <= 0 {
		return
	}
	for x > 0 && a.tlsMem > a.xsMem && len(a.tlsLegs) > 0 {
		a.shedTLS(now)
		x = a.opt.Memory.Excess()
	}
	if x <= 0 {
		return
	}
	// At most half of the exchanges at a time, so that the newest, whose
	// partners are on their way, are still there to be paired.
	var freed int64
	for i, y := range a.xs {
		if freed >= x || i >= len(a.xs)/2 {
			break
		}
		if y.decided {
			continue
		}
		c := y.mem
		a.decide(y, true)
		a.stats.MemEvicted++
		a.opt.Memory.Evicted(c)
		freed += c
	}
	a.compact()
	a.account()
}
