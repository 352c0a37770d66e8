package metrics

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// Tunnels are timed from the analyzer's verdicts: when an attempt is
// decided after its session (Options.WaitSession, what live does today),
// the verdict's Session says how old the tunnel got and who ended it; when
// it is decided at the handshake, tunnels follows the upgraded client leg
// (and the proxy's upstream leg, to tell a backend's close from the
// proxy's) from the verdict to its connection's end, and times it.
//
// wsdiag_tunnels_open cannot wait for a verdict: it counts the
// Sec-WebSocket-Keys of upgraded connections still open, from the 101s and
// the connections' ends as reassembly reports them. A tunnel through a
// proxy is one key on two connections, open until both ended.

// closedBy values of wsdiag_tunnel_duration_seconds, the analyzer's
// Session.ClosedBy (unknown: no FIN, RST or close frame, the flow was
// evicted idle).
var closedByValues = []string{"client", "proxy", "backend", "server", "unknown"}

// upstreamWait is how long (capture time) a tunnel whose client leg ended
// from the proxy's side waits for its upstream leg's end before it is
// blamed on the proxy.
const upstreamWait = 2 * time.Second

type connKey struct{ client, server netip.AddrPort }

// hash folds k into the tracking maps' key: a uint64 hashes in a few
// nanoseconds where the two AddrPorts take ten times that. The tunnel
// stored under it holds the full key; a collision only leaves a tunnel
// untracked.
func (k connKey) hash() uint64 {
	const prime = 0x100000001b3
	h := uint64(0xcbf29ce484222325)
	for _, a := range [2]netip.AddrPort{k.client, k.server} {
		b := a.Addr().As16()
		h = (h ^ binary.LittleEndian.Uint64(b[:8])) * prime
		h = (h ^ binary.LittleEndian.Uint64(b[8:])) * prime
		h = (h ^ uint64(a.Port())) * prime
	}
	return h ^ h>>29
}

// connEnd is what a tunnel's timing needs of a leg's ConnEnd.
type connEnd struct {
	side   reassembly.Side // who closed the TCP connection first
	at     time.Time       // when (the last packet when nobody did)
	frame  reassembly.Side // who sent the first close frame (SideNone: nobody)
	s2c    bool            // the server→client direction carried a close frame
	reason reassembly.EndReason
}

func endOf(e *reassembly.ConnEnd) connEnd {
	side, c := e.FirstClose()
	ce := connEnd{side: side, at: c.Time, reason: e.Reason}
	if ce.at.IsZero() {
		ce.at = e.Last
	}
	if ws := e.WS; ws != nil {
		c2s, s2c := ws.C2S.CloseAt, ws.S2C.CloseAt
		ce.s2c = !s2c.IsZero()
		switch {
		case !c2s.IsZero() && (s2c.IsZero() || !s2c.Before(c2s)):
			ce.frame = reassembly.SideClient
		case !s2c.IsZero():
			ce.frame = reassembly.SideServer
		}
	}
	return ce
}

type recentEnd struct {
	k connKey
	e connEnd
}

type tunnel struct {
	start            time.Time // the client's 101
	client, up       connKey
	proxied          bool // up is the last proxy's leg to the backend
	clientEnd, upEnd connEnd
	// ended: clientEnd and upEnd hold the legs' ends
	clientEnded, upEnded bool
	waitUntil            time.Time
	done                 bool
}

// closedBy names who ended the tunnel, as the analyzer's sessionFigures
// would: the first close frame, else the first FIN or RST; a close from the
// proxy's side of the client leg is the backend's when the backend's leg
// was closed from its side first.
func (t *tunnel) closedBy() string {
	c := t.clientEnd
	from := c.side
	if c.frame != reassembly.SideNone {
		from = c.frame
	}
	switch {
	case from == reassembly.SideClient:
		return "client"
	case from == reassembly.SideNone:
		return "unknown"
	case !t.proxied:
		return "server"
	case !t.upEnded:
		return "proxy"
	case c.frame == reassembly.SideServer && t.upEnd.s2c, c.frame == reassembly.SideNone && t.upEnd.side == reassembly.SideServer:
		return "backend"
	}
	return "proxy"
}

type tunnels struct {
	mu       sync.Mutex
	max      int
	byClient map[uint64]*tunnel // by the client leg's connKey.hash
	byUp     map[uint64]*tunnel // by the upstream leg's
	waiting  []*tunnel          // client leg ended, waiting for the upstream leg's
	// recent holds ends of upgraded legs no tracked tunnel claimed: an
	// upstream leg may end before its attempt's verdict (live decides
	// 500 ms after the handshake). A ring, so it stays bounded.
	recent    map[uint64]recentEnd
	recentKey []uint64
	recentAt  int

	// openKeys counts the open upgraded connections of each key; openConns
	// is the key of each (a connection's own name when it had no key).
	openKeys  map[uint64]int32 // by keyHash
	openConns map[reassembly.ConnID]uint64
	// tracking: some verdict came at the handshake, so ends of legs no
	// tunnel claims yet are worth keeping in recent.
	tracking bool

	open     prometheus.Gauge
	duration *prometheus.HistogramVec
	by       map[string]prometheus.Observer
}

// tunnelBuckets resolve the usual idle and lifetime cuts (nginx 60 s,
// haproxy 30 s–1 h, load balancers 350 s / 1 h) from seconds to a day.
var tunnelBuckets = []float64{1, 5, 10, 30, 55, 60, 65, 120, 300, 350, 600, 900, 1800, 3600, 7200, 14400, 86400}

func (ts *tunnels) init(max int) {
	ts.max = max
	ts.byClient = map[uint64]*tunnel{}
	ts.byUp = map[uint64]*tunnel{}
	ts.recent = map[uint64]recentEnd{}
	ts.recentKey = make([]uint64, 256)
	ts.openKeys = map[uint64]int32{}
	ts.openConns = map[reassembly.ConnID]uint64{}
	ts.open = prometheus.NewGauge(prometheus.GaugeOpts{Name: "wsdiag_tunnels_open",
		Help: "Upgraded client connections (tunnels) open now."})
	ts.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wsdiag_tunnel_duration_seconds",
		Help:    "Age of tunnels when they ended, from the client's 101, by who ended them: a peak at one age is a timeout.",
		Buckets: tunnelBuckets}, []string{"closed_by"})
	ts.by = map[string]prometheus.Observer{}
	for _, c := range closedByValues {
		ts.by[c] = ts.duration.WithLabelValues(c)
	}
}

func (ts *tunnels) observe(closedBy string, d time.Duration) {
	o := ts.by[closedBy]
	if o == nil {
		o = ts.by["unknown"]
	}
	o.Observe(max(d, 0).Seconds())
}

// verdict starts following an attempt's tunnel, or times it at once when
// it already ended (a tunnel shorter than live's decision delay).
func (ts *tunnels) verdict(v *analyze.Verdict) {
	n := len(v.Legs)
	if v.StatusClient != 101 || n == 0 || v.Legs[0].Status != 101 {
		return
	}
	if s := v.Session; s != nil {
		if !s.Open {
			by := s.ClosedBy
			if by == "" {
				by = "unknown"
			}
			ts.observe(by, s.Duration)
		}
		return
	}
	A, L := v.Legs[0], v.Legs[n-1]
	t := &tunnel{start: A.Times.Response, client: connKey{A.Client, A.Server}}
	if n > 1 && L.Status == 101 {
		t.proxied, t.up = true, connKey{L.Client, L.Server}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.tracking = true
	ck := t.client.hash()
	if len(ts.byClient) >= ts.max || ts.byClient[ck] != nil {
		return
	}
	if t.proxied {
		uk := t.up.hash()
		if r, ok := ts.recent[uk]; ok && r.k == t.up {
			delete(ts.recent, uk)
			t.upEnd, t.upEnded = r.e, true
		} else if ts.byUp[uk] == nil {
			ts.byUp[uk] = t
		}
	}
	ts.byClient[ck] = t
}

// keyHash is FNV-1a of a Sec-WebSocket-Key, made even and non-zero (odd
// numbers name keyless connections). Two keys colliding only merge two
// tunnels in the gauge.
func keyHash(k string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(k); i++ {
		h = (h ^ uint64(k[i])) * 0x100000001b3
	}
	return h<<1 | 2
}

// upgraded counts the tunnel a 101 opened.
func (ts *tunnels) upgraded(r *reassembly.Response) {
	var key uint64
	if r.Request != nil {
		if k, ok := r.Request.Headers.Get("Sec-WebSocket-Key"); ok {
			key = keyHash(k)
		}
	}
	if key == 0 {
		key = uint64(r.ID)<<1 | 1 // its own tunnel (key hashes are even)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.openConns[r.ID]; ok || len(ts.openConns) >= 2*ts.max {
		return
	}
	ts.openConns[r.ID] = key
	ts.openKeys[key]++
	ts.open.Set(float64(len(ts.openKeys)))
}

// connEnd closes and times the tunnel an upgraded leg belonged to.
func (ts *tunnels) connEnd(e *reassembly.ConnEnd) {
	if !e.Upgraded {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if key, ok := ts.openConns[e.ID]; ok {
		delete(ts.openConns, e.ID)
		if ts.openKeys[key]--; ts.openKeys[key] <= 0 {
			delete(ts.openKeys, key)
		}
		ts.open.Set(float64(len(ts.openKeys)))
	}
	if !ts.tracking {
		return // every verdict so far came with its session: nothing to follow
	}
	k := connKey{e.Client, e.Server}
	h := k.hash()
	if t := ts.byClient[h]; t != nil && t.client == k {
		delete(ts.byClient, h)
		if e.Reason == reassembly.EndCapture {
			// still open when live stopped: no age to report
			t.done = true
			ts.forgetUp(t)
			return
		}
		ce := endOf(e)
		t.clientEnd, t.clientEnded = ce, true
		if !t.proxied || t.upEnded || ce.side == reassembly.SideClient || ce.frame == reassembly.SideClient {
			ts.finish(t)
			return
		}
		t.waitUntil = e.Last.Add(upstreamWait)
		ts.waiting = append(ts.waiting, t)
		return
	}
	if t := ts.byUp[h]; t != nil && t.up == k {
		delete(ts.byUp, h)
		if t.done {
			return
		}
		t.upEnd, t.upEnded = endOf(e), true
		if t.clientEnded {
			ts.finish(t)
		}
		return
	}
	if e.Reason == reassembly.EndCapture {
		return
	}
	// maybe an upstream leg whose verdict is yet to come
	if old := ts.recentKey[ts.recentAt]; old != 0 {
		delete(ts.recent, old)
	}
	ts.recentKey[ts.recentAt] = h
	ts.recentAt = (ts.recentAt + 1) % len(ts.recentKey)
	ts.recent[h] = recentEnd{k, endOf(e)}
}

// forgetUp stops waiting for t's upstream leg.
func (ts *tunnels) forgetUp(t *tunnel) {
	if !t.proxied {
		return
	}
	if h := t.up.hash(); ts.byUp[h] == t {
		delete(ts.byUp, h)
	}
}

// finish times t. A proxied tunnel whose upstream leg is still open stays
// under that leg's key, done, so that the leg's end is recognised rather
// than kept as a stray in recent (unless too many are open).
func (ts *tunnels) finish(t *tunnel) {
	t.done = true
	if t.proxied && !t.upEnded && len(ts.byUp) > 2*ts.max {
		ts.forgetUp(t)
	}
	ts.observe(t.closedBy(), t.clientEnd.at.Sub(t.start))
}

// tick blames the proxy for tunnels whose upstream leg did not end within
// upstreamWait of the client's (capture time now).
func (ts *tunnels) tick(now time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	keep := ts.waiting[:0]
	for _, t := range ts.waiting {
		switch {
		case t.done:
		case now.After(t.waitUntil):
			ts.finish(t)
		default:
			keep = append(keep, t)
		}
	}
	for i := len(keep); i < len(ts.waiting); i++ {
		ts.waiting[i] = nil
	}
	ts.waiting = keep
}
