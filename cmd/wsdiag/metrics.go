package main

import (
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/metrics"
	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
	"github.com/wsdiag/wsdiag/reassembly"
)

// liveMetrics is live's hook into cmd/internal/metrics. A nil
// *liveMetrics (no --metrics) does nothing, so live calls it
// unconditionally.
type liveMetrics struct {
	m   *metrics.Metrics
	srv *metrics.Server
}

// startMetrics serves Prometheus metrics on addr ("": none).
func startMetrics(addr string) (*liveMetrics, error) {
	if addr == "" {
		return nil, nil
	}
	ver, rev := buildVersion()
	opt := metrics.DefaultOptions
	opt.Version, opt.Revision = ver, rev
	m := metrics.New(opt)
	srv, err := m.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &liveMetrics{m, srv}, nil
}

func (lm *liveMetrics) close() {
	if lm != nil {
		lm.srv.Close()
	}
}

func (lm *liveMetrics) verdict(v *analyze.Verdict) {
	if lm != nil {
		lm.m.Verdict(v)
	}
}

// observer is what the pipeline shows the events to: the metrics, which
// time tunnels to their end (nil without --metrics).
func (lm *liveMetrics) observer() pipeline.Observer {
	if lm == nil {
		return nil
	}
	return lm.m
}

// tick hands over the capture loop's figures (its goroutine only).
func (lm *liveMetrics) tick(now time.Time, ls sockFigures, as reassembly.Stats, an *analyze.Analyzer, plain *plainInput) {
	if lm == nil {
		return
	}
	st := an.Stats()
	f := metrics.Figures{Packets: ls.received, KernelDrops: ls.kernelDrops, OpenFlows: as.Open,
		Evicted: as.Evicted, QuietEvicted: as.QuietEvicted, MemEvicted: as.MemEvicted, PendingEvicted: st.Evicted, TLSUndecrypted: st.TLSErrors}
	if p := plain.figures(); p != nil {
		f.Plain = &metrics.PlainFigures{Captured: p.Conns, Skipped: p.SkippedConns, RingDrops: p.Drops, Cost: p.Cost, Paused: p.Paused}
	}
	lm.m.Capture(now, f)
}
