package pipeline

import (
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
// the analyzer's goroutine. Exactly one field is set.
type event struct {
	req  *reassembly.Request
	resp *reassembly.Response
	end  *reassembly.ConnEnd
	tls  *reassembly.TLSStart
	recs *reassembly.TLSRecords
	cut  *reassembly.CloseOnly
}

// eventLog is a worker's Assembler's sink: it keeps the events, in order,
// until the analyzer's goroutine applies them.
type eventLog struct{ events []event }

func (l *eventLog) Request(r *reassembly.Request)       { l.events = append(l.events, event{req: r}) }
func (l *eventLog) Response(r *reassembly.Response)     { l.events = append(l.events, event{resp: r}) }
func (l *eventLog) ConnEnd(e *reassembly.ConnEnd)       { l.events = append(l.events, event{end: e}) }
func (l *eventLog) TLSStart(e *reassembly.TLSStart)     { l.events = append(l.events, event{tls: e}) }
func (l *eventLog) TLSRecords(e *reassembly.TLSRecords) { l.events = append(l.events, event{recs: e}) }
func (l *eventLog) CloseOnly(e *reassembly.CloseOnly)   { l.events = append(l.events, event{cut: e}) }

// apply hands events to an (and obs) in order and clears them, so that
// the slice is reused without holding on to the events.
func apply(events []event, an *analyze.Analyzer, obs Observer) {
	for _, e := range events {
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
	clear(events)
}
