// Package metrics exposes live capture's verdicts and capture figures to
// Prometheus, which does the collection, storage and alerting across a
// fleet of proxy hosts; wsdiag only counts. Every label value is bounded:
// codes and hops come from the catalogue, proxies and backends are the first
// few seen (then "other"), so a scan cannot explode the series count.
package metrics

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wsdiag/wsdiag/analyze"
)

// Options bound the label values.
type Options struct {
	// MaxProxies and MaxBackends are how many distinct proxy and backend
	// addresses get a label value of their own; later ones are "other".
	MaxProxies, MaxBackends int
	// MaxTunnels caps the upgraded connections followed to their end.
	MaxTunnels int
	// Version and Revision label wsdiag_build_info.
	Version, Revision string
}

// DefaultOptions are live's.
var DefaultOptions = Options{MaxProxies: 16, MaxBackends: 32, MaxTunnels: 100000}

// Other is the label value of every proxy or backend past the first few.
const Other = "other"

// The handshake legs of wsdiag_handshake_duration_seconds.
const (
	LegClient     = "client"      // client's request → the 101 the client got
	LegUpstream   = "upstream"    // the last proxy's request → the backend's 101
	LegProxyAdded = "proxy_added" // the difference: the delay the proxies added
)

// Metrics holds wsdiag's collectors. Its methods are safe for concurrent
// use (live may run one analyzer per worker).
type Metrics struct {
	opt Options
	reg *prometheus.Registry

	attempts  *prometheus.CounterVec
	handshake [3]prometheus.Observer // client, upstream, proxy_added

	mu sync.Mutex
	// children caches the counter of each label set: WithLabelValues
	// hashes four strings, this an integer.
	children map[uint32]prometheus.Counter
	// proxies and backends are the addresses with a label value of their
	// own, in the order seen: a handful, scanned faster than hashed.
	proxies, backends []netip.AddrPort

	tunnels tunnels
	capture captureFigures
	// lastTick is when the capture loop last reported (Unix nanoseconds),
	// for /healthz.
	lastTick atomic.Int64
}

// codeIndex numbers the catalogue's codes for the children key.
var codeIndex = func() map[analyze.Code]uint32 {
	m := map[analyze.Code]uint32{}
	for i, c := range analyze.Codes {
		m[c] = uint32(i) + 1
	}
	return m
}()

func hopIndex(h analyze.Hop) uint32 {
	switch h {
	case analyze.HopNone:
		return 1
	case analyze.HopClient:
		return 2
	case analyze.HopProxy:
		return 3
	case analyze.HopConnect:
		return 4
	case analyze.HopBackend:
		return 5
	case analyze.HopSession:
		return 6
	}
	return 7
}

// handshakeBuckets span a loopback handshake (100 µs) to a proxy that
// waits for a slow backend (30 s).
var handshakeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New returns Metrics registered in a registry of their own, with Go
// runtime and process collectors (CPU, memory) beside them.
func New(opt Options) *Metrics {
	if opt.MaxProxies <= 0 {
		opt.MaxProxies = DefaultOptions.MaxProxies
	}
	if opt.MaxBackends <= 0 {
		opt.MaxBackends = DefaultOptions.MaxBackends
	}
	if opt.MaxTunnels <= 0 {
		opt.MaxTunnels = DefaultOptions.MaxTunnels
	}
	m := &Metrics{opt: opt, reg: prometheus.NewRegistry(),
		children: map[uint32]prometheus.Counter{}}
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsdiag_attempts_total",
		Help: "WebSocket attempts judged, by primary verdict code, blamed hop, proxy and backend (the first few addresses, then \"other\"; \"\" when none was seen).",
	}, []string{"code", "hop", "proxy", "backend"})
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wsdiag_handshake_duration_seconds",
		Help:    "Upgrade handshakes that got a 101: client = client's request to the 101 it got; upstream = the proxy's request to the backend's 101; proxy_added = the difference.",
		Buckets: handshakeBuckets,
	}, []string{"leg"})
	for i, leg := range []string{LegClient, LegUpstream, LegProxyAdded} {
		m.handshake[i] = hv.WithLabelValues(leg)
	}
	m.tunnels.init(opt.MaxTunnels)
	m.reg.MustRegister(m.attempts, hv, m.tunnels.open, m.tunnels.duration, &m.capture,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wsdiag_build_info", Help: "Always 1: the running wsdiag's version and VCS revision."},
		[]string{"version", "revision"})
	bi.WithLabelValues(opt.Version, opt.Revision).Set(1)
	m.reg.MustRegister(bi)
	return m
}

// Registry returns the registry the collectors live in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Verdict counts one verdict. Plain exchanges (--all) are not attempts
// and are not counted.
func (m *Metrics) Verdict(v *analyze.Verdict) {
	if !v.Attempt() {
		return
	}
	m.mu.Lock()
	p := bounded(&m.proxies, v.Proxy, m.opt.MaxProxies)
	b := bounded(&m.backends, v.Backend, m.opt.MaxBackends)
	code := codeIndex[v.Code] // 0: a code newer than this table
	k := code<<24 | hopIndex(v.Hop)<<16 | p<<8 | b
	c := m.children[k]
	if c == nil || code == 0 {
		c = m.attempts.WithLabelValues(string(v.Code), string(v.Hop), label(m.proxies, p), label(m.backends, b))
		m.children[k] = c
	}
	m.mu.Unlock()
	c.Inc()
	m.observeHandshake(v)
	m.tunnels.verdict(v)
}

// bounded numbers a among the first max addresses seen (from 2; 0: none,
// 1: Other past them).
func bounded(seen *[]netip.AddrPort, a netip.AddrPort, max int) uint32 {
	if !a.IsValid() {
		return 0
	}
	for i, s := range *seen {
		if s == a {
			return uint32(i) + 2
		}
	}
	if len(*seen) >= max || max > 250 {
		return 1
	}
	*seen = append(*seen, a)
	return uint32(len(*seen)) + 1
}

// label is the label value of bounded's number.
func label(seen []netip.AddrPort, i uint32) string {
	switch i {
	case 0:
		return ""
	case 1:
		return Other
	}
	return seen[i-2].String()
}

// observeHandshake times the handshake legs that ended in a 101.
func (m *Metrics) observeHandshake(v *analyze.Verdict) {
	n := len(v.Legs)
	if n == 0 {
		return
	}
	encrypted := false // then Legs[0] is not the client's leg
	for _, f := range v.Findings {
		if f == analyze.EncryptedLeg {
			encrypted = true
		}
	}
	var client, up time.Duration
	A, L := &v.Legs[0], &v.Legs[n-1]
	if !encrypted && A.Status == 101 && !A.Times.Response.IsZero() {
		client = max(A.Times.Response.Sub(A.Times.Request), 0)
		m.handshake[0].Observe(client.Seconds())
	}
	if (n > 1 || encrypted) && L.Status == 101 && !L.Times.Response.IsZero() {
		up = max(L.Times.Response.Sub(L.Times.Request), 0)
		m.handshake[1].Observe(up.Seconds())
		if client > 0 && n > 1 {
			m.handshake[2].Observe(max(client-up, 0).Seconds())
		}
	}
}
