package pipeline

import (
	"net/netip"
	"slices"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// Observer watches the events the analyzer is given, after it has them:
// live's metrics time each tunnel from its 101 to its connections' ends.
type Observer interface {
	Response(*reassembly.Response)
	ConnEnd(*reassembly.ConnEnd)
}

// Tee returns the sink an Assembler feeds when events go straight to the
// analyzer: an itself, or, with an Observer, an followed by obs.
func Tee(an *analyze.Analyzer, obs Observer) reassembly.Sink {
	if obs == nil {
		return an
	}
	return tee{an, obs}
}

// tee keeps the analyzer's TLS and Decide methods by embedding it.
type tee struct {
	*analyze.Analyzer
	obs Observer
}

func (t tee) Response(r *reassembly.Response) {
	t.Analyzer.Response(r)
	t.obs.Response(r)
}

func (t tee) ConnEnd(e *reassembly.ConnEnd) {
	t.Analyzer.ConnEnd(e)
	t.obs.ConnEnd(e)
}

// event is one reassembly event on its way from a worker's Assembler to
// the analyzer's goroutine. Exactly one of the pointers is set. at is
// where in the pipeline's input it happened (stamp), so that the events
// of several workers are applied in one order, the one a single worker
// gives.
type event struct {
	at   uint64
	req  *reassembly.Request
	resp *reassembly.Response
	end  *reassembly.ConnEnd
	tls  *reassembly.TLSStart
	recs *reassembly.TLSRecords
	cut  *reassembly.CloseOnly
}

// Stamps order what happens at a packet of the pipeline's input: the
// Assemblers' flush at its time, then the analyzer's decision, then the
// packet itself; after the last packet, the Assemblers' Close.
const (
	atFlush = iota
	atDecide
	atPacket
	atClose = ^uint64(0)
)

// stamp is when kind happens at the seq'th packet.
func stamp(seq uint64, kind uint64) uint64 { return seq<<2 | kind }

// grouped reports whether the events at stamp at come from every worker
// at once (a flush, the close), not from one packet.
func grouped(at uint64) bool { return at == atClose || at&3 == atFlush }

// ends are the two ends of the connection an event is about.
func (e *event) ends() (a, b netip.AddrPort) {
	switch {
	case e.req != nil:
		return e.req.Client, e.req.Server
	case e.resp != nil:
		return e.resp.Client, e.resp.Server
	case e.end != nil:
		return e.end.Client, e.end.Server
	case e.tls != nil:
		return e.tls.Client, e.tls.Server
	case e.recs != nil:
		return e.recs.Client, e.recs.Server
	}
	return e.cut.From, e.cut.To
}

// canonical orders the events of a flush or of the close, which each
// worker gives for its own connections in an order of its own: by
// connection (its ends, unique among the connections open at once),
// each connection's events in the order they came.
func canonical(events []event) {
	slices.SortStableFunc(events, func(x, y event) int {
		xa, xb := x.ends()
		ya, yb := y.ends()
		if c := xa.Compare(ya); c != 0 {
			return c
		}
		return xb.Compare(yb)
	})
}

// eventLog is a worker's Assembler's sink: it keeps the events, in order,
// each stamped with where they happened, until the analyzer's goroutine
// applies them.
type eventLog struct {
	at     uint64 // the stamp of what the Assembler is doing now
	events []event
}

// newID numbers the connection the current packet opens by that packet:
// the same number whichever worker holds it (reassembly.Options.NewID).
func (l *eventLog) newID() reassembly.ConnID { return reassembly.ConnID(l.at>>2 + 1) }

func (l *eventLog) Request(r *reassembly.Request) {
	l.events = append(l.events, event{at: l.at, req: r})
}
func (l *eventLog) Response(r *reassembly.Response) {
	l.events = append(l.events, event{at: l.at, resp: r})
}
func (l *eventLog) ConnEnd(e *reassembly.ConnEnd) {
	l.events = append(l.events, event{at: l.at, end: e})
}
func (l *eventLog) TLSStart(e *reassembly.TLSStart) {
	l.events = append(l.events, event{at: l.at, tls: e})
}
func (l *eventLog) TLSRecords(e *reassembly.TLSRecords) {
	l.events = append(l.events, event{at: l.at, recs: e})
}
func (l *eventLog) CloseOnly(e *reassembly.CloseOnly) {
	l.events = append(l.events, event{at: l.at, cut: e})
}

// apply hands events to an (and obs) in order and clears them, so that
// the slice is reused without holding on to the events.
func apply(events []event, an *analyze.Analyzer, obs Observer) {
	for i := range events {
		applyOne(&events[i], an, obs)
	}
	clear(events)
}

func applyOne(e *event, an *analyze.Analyzer, obs Observer) {
	switch {
	case e.req != nil:
		an.Request(e.req)
	case e.resp != nil:
		an.Response(e.resp)
		if obs != nil {
			obs.Response(e.resp)
		}
	case e.end != nil:
		an.ConnEnd(e.end)
		if obs != nil {
			obs.ConnEnd(e.end)
		}
	case e.tls != nil:
		an.TLSStart(e.tls)
	case e.recs != nil:
		an.TLSRecords(e.recs)
	case e.cut != nil:
		an.CloseOnly(e.cut)
	}
}
