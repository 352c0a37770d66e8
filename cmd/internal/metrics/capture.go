package metrics

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Figures are live's running totals, handed over by its capture loop
// (the capture, reassembly and analyzer stats are not safe to read from
// the HTTP server's goroutines).
type Figures struct {
	Packets     uint64 // read from the capture ring
	KernelDrops uint64 // dropped by the kernel, ring full
	OpenFlows   int
	// Evicted are connections carrying HTTP or TLS ended early at
	// --max-flows; QuietEvicted the others, at a tenth of it.
	Evicted, QuietEvicted uint64
	// MemEvicted are connections ended early to stay within --max-memory.
	MemEvicted uint64
	// Analyzer warnings: exchanges dropped unpaired at --max-pending, TLS
	// connections the key log could not decrypt.
	PendingEvicted, TLSUndecrypted uint64
	// Plain is what live --tls-plaintext's probes counted (nil without).
	Plain *PlainFigures
}

// PlainFigures are the TLS plaintext probes' totals.
type PlainFigures struct {
	// Captured and Skipped are connections captured and left out by
	// sampling; RingDrops records lost for a full ring.
	Captured, Skipped, RingDrops uint64
	// Cost is the estimated share of one CPU the probes cost the proxies
	// over the last second; Paused, whether they are off now.
	Cost   float64
	Paused bool
}

// Capture records live's figures; now is capture time. Live calls it
// every 100 ms or so; /healthz fails when it stops.
func (m *Metrics) Capture(now time.Time, f Figures) {
	c := &m.capture
	c.packets.Store(f.Packets)
	c.drops.Store(f.KernelDrops)
	c.open.Store(int64(f.OpenFlows))
	c.evicted.Store(f.Evicted)
	c.quiet.Store(f.QuietEvicted)
	c.mem.Store(f.MemEvicted)
	c.pending.Store(f.PendingEvicted)
	c.tls.Store(f.TLSUndecrypted)
	if p := f.Plain; p != nil {
		c.plainOn.Store(true)
		c.plainCaptured.Store(p.Captured)
		c.plainSkipped.Store(p.Skipped)
		c.plainDrops.Store(p.RingDrops)
		c.plainCost.Store(math.Float64bits(p.Cost))
		c.plainPaused.Store(p.Paused)
	}
	m.tunnels.tick(now)
	m.lastTick.Store(time.Now().UnixNano())
}

// captureFigures exports the last Figures as they are, at scrape time.
type captureFigures struct {
	packets, drops, evicted, quiet, mem, pending, tls atomic.Uint64
	open                                              atomic.Int64
	// --tls-plaintext's, exported once plainOn (plainCost: float64 bits)
	plainOn, plainPaused                               atomic.Bool
	plainCaptured, plainSkipped, plainDrops, plainCost atomic.Uint64
}

var (
	descPackets = prometheus.NewDesc("wsdiag_capture_packets_total", "Packets read from the capture ring.", nil, nil)
	descDrops   = prometheus.NewDesc("wsdiag_capture_kernel_drops_total",
		"Packets the kernel filter accepted and dropped for lack of ring space: verdicts may be missing or wrong (raise -B or narrow the filter).", nil, nil)
	descOpen    = prometheus.NewDesc("wsdiag_flows_open", "TCP connections followed now.", nil, nil)
	descEvicted = prometheus.NewDesc("wsdiag_flows_evicted_total",
		"Connections ended early to stay within --max-flows: class http carried HTTP or TLS, quiet nothing yet (a tenth of the budget); class memory, within --max-memory.", []string{"class"}, nil)
	descWarnings = prometheus.NewDesc("wsdiag_warnings_total",
		"Analyzer warnings: pending_evicted = exchanges judged unpaired at --max-pending; tls_undecrypted = TLS connections the key log did not decrypt.", []string{"kind"}, nil)
	descPlainConns = prometheus.NewDesc("wsdiag_tls_plaintext_connections_total",
		"TLS connections the --tls-plaintext probes met: result captured, or skipped by sampling (their cost was over --tls-plaintext-budget).", []string{"result"}, nil)
	descPlainDrops = prometheus.NewDesc("wsdiag_tls_plaintext_ring_drops_total",
		"Plaintext records lost because the probes' ring was full: their connections are judged with a gap.", nil, nil)
	descPlainCost = prometheus.NewDesc("wsdiag_tls_plaintext_cost_ratio",
		"Estimated share of one CPU the --tls-plaintext probes cost the proxies over the last second.", nil, nil)
	descPlainPaused = prometheus.NewDesc("wsdiag_tls_plaintext_paused",
		"1 while the --tls-plaintext probes are off: even sampling nothing, their traps cost more than the budget.", nil, nil)
)

func (c *captureFigures) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descDrops, descOpen, descEvicted, descWarnings, descPlainConns, descPlainDrops, descPlainCost, descPlainPaused} {
		ch <- d
	}
}

func (c *captureFigures) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descPackets, c.packets.Load())
	counter(descDrops, c.drops.Load())
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(c.open.Load()))
	counter(descEvicted, c.evicted.Load(), "http")
	counter(descEvicted, c.quiet.Load(), "quiet")
	counter(descEvicted, c.mem.Load(), "memory")
	counter(descWarnings, c.pending.Load(), "pending_evicted")
	counter(descWarnings, c.tls.Load(), "tls_undecrypted")
	if c.plainOn.Load() {
		counter(descPlainConns, c.plainCaptured.Load(), "captured")
		counter(descPlainConns, c.plainSkipped.Load(), "skipped")
		counter(descPlainDrops, c.plainDrops.Load())
		ch <- prometheus.MustNewConstMetric(descPlainCost, prometheus.GaugeValue, math.Float64frombits(c.plainCost.Load()))
		paused := 0.0
		if c.plainPaused.Load() {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(descPlainPaused, prometheus.GaugeValue, paused)
	}
}

// Response and ConnEnd watch connections upgrade and end, for the tunnel
// metrics: Metrics is a pipeline.Observer, given every event after the
// analyzer.
func (m *Metrics) Response(r *reassembly.Response) {
	if r.Status == 101 {
		m.tunnels.upgraded(r)
	}
}

// ConnEnd: see Response.
func (m *Metrics) ConnEnd(e *reassembly.ConnEnd) { m.tunnels.connEnd(e) }
