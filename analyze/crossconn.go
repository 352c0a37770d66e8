package analyze

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// State across connections: what no single attempt shows. Every part is
// capped and evicts its oldest entries, so a capture of any length costs
// the same memory.

// Caps of the cross-connection state.
const (
	maxSessionIDs = 1 << 16 // engine.io sid / SignalR id → the servers that issued it
	maxTunnels    = 8192    // recent upgraded connections, for open-tunnel counts
	maxServers    = 4096    // servers with a close burst in progress
	maxCuts       = 1024    // recent client-side cuts, for lifetime siblings
	maxEvents     = 256     // recent events, for the verdicts that point to them
	maxHeld       = 4096    // verdicts waiting for a sibling or a burst to end
)

// Windows of the cross-connection rules.
const (
	// burstGap: closes this close together belong to one burst.
	burstGap = 250 * time.Millisecond
	// maxBurstSpan: a longer run of closes is a busy server's steady
	// stream (sessions ending, idle timeouts), not one event.
	maxBurstSpan = 5 * time.Second
	// burstMin tunnels closed in one burst make a mass close.
	burstMin = 3
	// holdFront: how long (capture time) a busy tunnel cut by the client
	// side waits for a sibling cut at the same age.
	holdFront = time.Minute
)

// Event is a finding about many attempts at once (type "event" in JSON).
type Event struct {
	Time   time.Time // the first close of the burst
	Code   Code
	Count  int
	Window time.Duration // first to last close
	// Server is who closed: the proxy's (or server's) address; ClosedBy
	// says which role it plays ("proxy", or "server" when it opened no
	// upstream legs at that moment).
	Server   netip.AddrPort
	ClosedBy string
	Cause    string
	Evidence []string
	Fix      string
	// relays are the proxies that passed the closes on (their tunnels
	// point to this event too).
	relays []relay
}

// Ref is how verdicts point to the event.
func (e *Event) Ref() string {
	return string(e.Code) + " event at " + ts(e.Time) + " (" + e.Server.String() + ")"
}

// sidEntry: the servers whose answers carried a session id (the backend
// and the proxies that relayed it), and the first server that refused it
// as unknown.
type sidEntry struct {
	servers   [2]netip.AddrPort
	refusedBy netip.AddrPort
	refusal   string // its status line and body
	refusedAt time.Time
}

// burst is a run of upgraded connections that one server closed without
// a close frame, each within burstGap of the previous.
type burst struct {
	first, last      time.Time
	count            int
	minIdle, maxIdle time.Duration // silence before each close
}

// cut is a client leg ended by its client side without a close frame
// while frames were flowing.
type cut struct {
	proxy netip.AddrPort
	at    time.Time
	age   time.Duration
}

// held is a verdict waiting for what other connections will show.
type held struct {
	a       *attempt
	release time.Time
}

type crossState struct {
	sids     map[string]*sidEntry
	sidOrder []string // FIFO for eviction
	sidNext  int

	upgraded map[reassembly.ConnID]int // open upgraded connections → their slot in ring
	ring     []tunnel
	ringNext int

	bursts map[netip.AddrPort]*burst
	// upCloses: times of upgraded connections closed by their client side
	// without a close frame (a proxy closing its upstream legs), a ring.
	upCloses []time.Time
	upNext   int

	events    []*Event
	eventNext int
	cuts      []cut
	cutNext   int
	held      []held
}

func newCrossState() *crossState {
	return &crossState{sids: map[string]*sidEntry{}, upgraded: map[reassembly.ConnID]int{},
		bursts: map[netip.AddrPort]*burst{}}
}

// ---------------------------------------------------------------- session ids

// sessionIDFrom finds the session id a handshake answer hands out:
// engine.io's `0{"sid":"…"` and SignalR negotiate's connectionToken/Id.
func sessionIDFrom(body string) string {
	for _, k := range []string{`"sid":"`, `"connectionToken":"`, `"connectionId":"`} {
		if i := strings.Index(body, k); i >= 0 {
			rest := body[i+len(k):]
			if j := strings.IndexByte(rest, '"'); j > 0 && j <= 128 {
				return rest[:j]
			}
		}
	}
	return ""
}

// sessionIDOf returns the session id a request names in its query
// (engine.io sid=, SignalR id=).
func sessionIDOf(target string) (string, string) {
	_, q, ok := strings.Cut(target, "?")
	if !ok {
		return "", ""
	}
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if (k == "sid" || k == "id") && v != "" && len(v) <= 128 {
			return k, v
		}
	}
	return "", ""
}

func (c *crossState) recordSID(id string, server netip.AddrPort) {
	if e := c.sids[id]; e != nil {
		if !e.servers[0].IsValid() {
			e.servers[0] = server
		} else if e.servers[0] != server && !e.servers[1].IsValid() {
			e.servers[1] = server
		}
		return
	}
	c.newSID(id).servers[0] = server
}

// unknownSession: a backend's words for a session id it never issued.
func unknownSession(body string) bool {
	return strings.Contains(body, "Session ID unknown") || strings.Contains(body, "No Connection with that ID")
}

// recordRefusal notes the first server that refused a session id as
// unknown (engine.io 400, SignalR 404); the proxy that relays it is told
// apart when the attempt is judged.
func (c *crossState) recordRefusal(r *reassembly.Response) {
	_, id := sessionIDOf(r.Request.Target)
	if id == "" {
		return
	}
	e := c.sids[id]
	if e == nil {
		e = c.newSID(id)
	}
	if !e.refusedBy.IsValid() || r.Start.Before(e.refusedAt) {
		e.refusedBy, e.refusedAt = r.Server, r.Start
		e.refusal = statusLine(r) + " " + quoteBody(r.Body)
	}
}

func (c *crossState) newSID(id string) *sidEntry {
	if len(c.sidOrder) < maxSessionIDs {
		c.sidOrder = append(c.sidOrder, id)
	} else {
		delete(c.sids, c.sidOrder[c.sidNext])
		c.sidOrder[c.sidNext] = id
		c.sidNext = (c.sidNext + 1) % maxSessionIDs
	}
	e := &sidEntry{}
	c.sids[id] = e
	return e
}

// issuer returns the server other than not1/not2 that handed out id.
func (c *crossState) issuer(id string, not1, not2 netip.AddrPort) (netip.AddrPort, bool) {
	e := c.sids[id]
	if e == nil {
		return netip.AddrPort{}, false
	}
	for _, s := range e.servers {
		if s.IsValid() && s != not1 && s != not2 {
			return s, true
		}
	}
	return netip.AddrPort{}, false
}

// ---------------------------------------------------------------- open tunnels

// tunnel is one upgraded connection's life at a server, in a ring: events
// of different connections may arrive out of time order, so the count at
// a moment is taken from the times when it is asked for.
type tunnel struct {
	server      netip.AddrPort
	id          reassembly.ConnID
	open, close time.Time // close zero: still open
}

func (c *crossState) tunnelOpened(r *reassembly.Response) {
	if _, ok := c.upgraded[r.ID]; ok {
		return
	}
	t := tunnel{server: r.Server, id: r.ID, open: r.End}
	if len(c.ring) < maxTunnels {
		c.upgraded[r.ID] = len(c.ring)
		c.ring = append(c.ring, t)
		return
	}
	delete(c.upgraded, c.ring[c.ringNext].id)
	c.ring[c.ringNext] = t
	c.upgraded[r.ID] = c.ringNext
	c.ringNext = (c.ringNext + 1) % maxTunnels
}

func (c *crossState) tunnelClosed(e *reassembly.ConnEnd) {
	i, ok := c.upgraded[e.ID]
	if !ok {
		return
	}
	delete(c.upgraded, e.ID)
	_, cl := e.FirstClose()
	if cl.Time.IsZero() {
		cl.Time = e.Last
	}
	c.ring[i].close = cl.Time
}

// openAt returns the tunnels open at server at t, and the most open at
// once among those the ring remembers.
func (c *crossState) openAt(server netip.AddrPort, t time.Time) (open, peak int) {
	type edge struct {
		t time.Time
		d int
	}
	var edges []edge
	for _, u := range c.ring {
		if u.server != server {
			continue
		}
		if !u.open.After(t) && (u.close.IsZero() || u.close.After(t)) {
			open++
		}
		edges = append(edges, edge{u.open, 1})
		if !u.close.IsZero() {
			edges = append(edges, edge{u.close, -1})
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		return edges[i].t.Before(edges[j].t) || edges[i].t.Equal(edges[j].t) && edges[i].d < edges[j].d
	})
	n := 0
	for _, e := range edges {
		n += e.d
		peak = max(peak, n)
	}
	return open, peak
}

// ---------------------------------------------------------------- mass close

// closed notes how an upgraded connection ended, for bursts.
func (c *crossState) closed(e *reassembly.ConnEnd, a *Analyzer) {
	ws := e.WS
	if ws == nil || !ws.C2S.CloseAt.IsZero() || !ws.S2C.CloseAt.IsZero() || e.Reason != reassembly.EndClosed {
		return
	}
	side, cl := e.FirstClose()
	cl.Time = e.Began(side)
	switch side {
	case reassembly.SideClient:
		if len(c.upCloses) < maxCuts {
			c.upCloses = append(c.upCloses, cl.Time)
		} else {
			c.upCloses[c.upNext] = cl.Time
			c.upNext = (c.upNext + 1) % maxCuts
		}
	case reassembly.SideServer:
		idle := cl.Time.Sub(maxTime(ws.C2S.Last, ws.S2C.Last, e.First))
		b := c.bursts[e.Server]
		if b != nil && cl.Time.Sub(b.last) > burstGap {
			a.flushBursts(cl.Time)
			b = nil
		}
		if b == nil {
			if len(c.bursts) >= maxServers {
				a.flushBursts(time.Time{}) // all of them: a flood of servers
			}
			b = &burst{first: cl.Time, last: cl.Time, minIdle: idle, maxIdle: idle}
			c.bursts[e.Server] = b
		}
		b.count++
		if cl.Time.Before(b.first) {
			b.first = cl.Time
		}
		if cl.Time.After(b.last) {
			b.last = cl.Time
		}
		b.minIdle, b.maxIdle = min(b.minIdle, idle), max(b.maxIdle, idle)
	}
}

// flushBursts turns the bursts that ended before now-burstGap (all, with
// a zero now) into events. Bursts that overlap are one: the earliest
// server closed, the others relayed its closes to their clients (a
// backend restarting behind a proxy).
func (a *Analyzer) flushBursts(now time.Time) {
	c := a.cross
	type due struct {
		server netip.AddrPort
		b      *burst
	}
	var ds []due
	for s, b := range c.bursts {
		if now.IsZero() || now.Sub(b.last) > burstGap {
			ds = append(ds, due{s, b})
			delete(c.bursts, s)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].b.first.Before(ds[j].b.first) })
	for i := 0; i < len(ds); {
		k := i + 1
		for k < len(ds) && !ds[k].b.first.After(ds[i].b.last.Add(relayLag)) {
			k++
		}
		root := ds[i]
		var relays []relay
		for _, d := range ds[i+1 : k] {
			if d.b.count >= burstMin {
				relays = append(relays, relay{d.server, d.b.first, d.b.last, d.b.count})
			}
		}
		a.flushBurst(root.server, root.b, relays)
		i = k
	}
}

// relayLag: a proxy passes a backend's close on within this.
const relayLag = 50 * time.Millisecond

// relay is a burst that passed another's closes on.
type relay struct {
	server      netip.AddrPort
	first, last time.Time
	count       int
}

// eventFor returns the mass close of server that includes a close at t.
func (c *crossState) eventFor(server netip.AddrPort, t time.Time) *Event {
	in := func(first, last time.Time) bool {
		return !t.Before(first.Add(-time.Millisecond)) && !t.After(last.Add(time.Millisecond))
	}
	for _, e := range c.events {
		if e.Server == server && in(e.Time, e.Time.Add(e.Window)) {
			return e
		}
		for _, r := range e.relays {
			if r.server == server && in(r.first, r.last) {
				return e
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------- cuts and held verdicts

func (c *crossState) addCut(k cut) {
	for _, o := range c.cuts {
		if o == k {
			return
		}
	}
	if len(c.cuts) < maxCuts {
		c.cuts = append(c.cuts, k)
	} else {
		c.cuts[c.cutNext] = k
		c.cutNext = (c.cutNext + 1) % maxCuts
	}
}

// ageTolerance: cuts this close in age count as the same limit.
func ageTolerance(age time.Duration) time.Duration {
	return max(100*time.Millisecond, age.Abs()/50)
}

// outlived reports whether a tunnel through k's proxy lived longer than
// k's age: then no fixed lifetime cut k.
func (c *crossState) outlived(k cut) bool {
	limit := k.age + ageTolerance(k.age)
	for _, u := range c.ring {
		if u.server == k.proxy && !u.close.IsZero() && u.close.Sub(u.open) > limit {
			return true
		}
	}
	return false
}

// siblings returns the other cuts through proxy at the same age as k.
func (c *crossState) siblings(k cut) []cut {
	tol := ageTolerance(k.age)
	var out []cut
	for _, o := range c.cuts {
		if o.proxy == k.proxy && o.at != k.at && (o.age-k.age).Abs() <= tol {
			out = append(out, o)
		}
	}
	return out
}

// hold keeps j's verdict until release (capture time).
func (a *Analyzer) hold(at *attempt, release time.Time) {
	c := a.cross
	if len(c.held) >= maxHeld {
		a.release(c.held[0])
		c.held = c.held[1:]
	}
	c.held = append(c.held, held{at, release})
}

// releaseHeld puts out the held verdicts due at now (all, with a zero now).
func (a *Analyzer) releaseHeld(now time.Time) {
	c := a.cross
	keep := c.held[:0]
	for _, h := range c.held {
		if now.IsZero() || !h.release.After(now) {
			a.release(h)
			continue
		}
		keep = append(keep, h)
	}
	for i := len(keep); i < len(c.held); i++ {
		c.held[i] = held{}
	}
	c.held = keep
}

func (a *Analyzer) release(h held) {
	v := h.a.release()
	a.count(v)
	a.out(v)
}
