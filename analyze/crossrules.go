package analyze

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The rules that look at other connections: a tunnel that the proxy
// closed with many others (mass_close), one cut in front of the proxy
// (front_idle_timeout when idle, lifetime_limit when its siblings were
// cut at the same age), and a session's upgrade whose other requests
// another backend refused (sticky_session_missing). Their facts are
// observed when their turn comes, and again when a held verdict is
// released: what other connections show grows while an attempt waits.

// crossFacts are what other connections show of an attempt's tunnel.
type crossFacts struct {
	mass   massCloseFacts
	front  frontCutFacts
	sticky stickyFacts
}

// massCloseFacts: closed, the proxy (or server) closed the client's
// upgraded leg without a close frame, beginning at at, by kind (finFirst:
// a FIN came before that RST); event is the mass close the close was part
// of, or with none yet, burstEnd is until when the burst of closes it
// belongs to may still grow into one.
type massCloseFacts struct {
	closed   bool
	at       time.Time
	kind     reassembly.CloseKind
	finFirst bool
	event    *Event
	burstEnd time.Time
}

// frontCutFacts: the client's leg was ended by its client side (what is
// in front of the proxy) without a close frame, while the proxy's leg to
// the backend was open; the proxy closed that one afterwards.
type frontCutFacts struct {
	cut              bool
	client, upstream reassembly.Close // the ends of the client's and the backend's legs
	frames           uint64           // on every leg
	// silence is from the last frame to the cut, age from the client
	// leg's first packet (what is in front opened it when its own
	// connection began, before the handshake).
	silence, age time.Duration
	// siblings are other tunnels through the proxy cut after the same
	// silence (idle) or at the same age (lifetime); outlived, a tunnel
	// through it lived longer than this one's age.
	siblings []cut
	outlived bool
}

// idle: the cut came after a second or more without frames.
func (f *frontCutFacts) idle() bool { return f.cut && f.silence >= time.Second }

// lifetime: the cut came while frames flowed, on a tunnel old enough to
// compare ages.
func (f *frontCutFacts) lifetime() bool {
	return f.cut && f.silence < time.Second && f.age >= time.Second && f.frames > 0
}

// stickyFacts: the client's upgraded leg ended without a close frame,
// and the session it names (key=id) is one whose other requests a server
// refused (entry).
type stickyFacts struct {
	key, id string
	entry   *sidEntry
}

// observeCross computes the cross-connection facts, and records this
// tunnel's cut for the others to compare with; nil when the client's leg
// did not upgrade and end without a close frame: then other connections
// have nothing to say of it.
func (a *attempt) observeCross() *crossFacts {
	A := a.chain[0]
	if !A.switched() || A.end == nil || A.end.WS == nil || !noCloseFrame(A.end.WS) {
		return nil
	}
	c := &crossFacts{}
	upgraded := A.resp.Status == 101
	if upgraded {
		c.mass = a.massCloseFactsOf()
	}
	c.front = a.frontCutFactsOf()
	if n := len(a.chain); upgraded && n >= 2 && noCloseFrame(A.end.WS) {
		L := a.chain[n-1]
		c.sticky.key, c.sticky.id = sessionIDOf(L.req.Target)
		if c.sticky.id != "" {
			c.sticky.entry = a.an.cross.sids[c.sticky.id]
		}
	}
	return c
}

// wait is until when the verdict waits for other connections: the end
// of an open burst of closes, or a sibling cut at the same age.
func (c *crossFacts) wait() time.Time {
	if c == nil {
		return time.Time{}
	}
	if m := c.mass; m.closed && m.event == nil && !m.burstEnd.IsZero() {
		return m.burstEnd
	}
	if f := &c.front; f.lifetime() && len(f.siblings) == 0 {
		return f.client.Time.Add(holdFront)
	}
	return time.Time{}
}

func (a *attempt) massCloseFactsOf() massCloseFacts {
	A := a.chain[0]
	side, c := A.end.FirstClose()
	if side != reassembly.SideServer || !noCloseFrame(A.end.WS) {
		return massCloseFacts{}
	}
	m := massCloseFacts{closed: true, at: A.end.Began(side), kind: c.Kind}
	m.finFirst = m.at != A.end.ServerClose.Time
	cs := a.an.cross
	m.event = cs.eventFor(A.req.Server, m.at)
	if b := cs.bursts[A.req.Server]; m.event == nil && b != nil && !m.at.Before(b.first) {
		m.burstEnd = b.last.Add(burstGap + time.Millisecond) // the burst is still open
	}
	return m
}

func (a *attempt) frontCutFactsOf() frontCutFacts {
	var f frontCutFacts
	n := len(a.chain)
	if a.session == nil || n < 2 || len(a.session.legs) != n {
		return f
	}
	legs := a.session.legs
	A, L := legs[0], legs[n-1]
	sa, ca := A.end.FirstClose()
	if sa != reassembly.SideClient || A.end.Reason != reassembly.EndClosed || !noCloseFrame(A.ws) {
		return f
	}
	sl, cl := L.end.FirstClose()
	if sl != reassembly.SideClient || cl.Time.Before(ca.Time) || !noCloseFrame(L.ws) {
		return f
	}
	f.cut, f.client, f.upstream = true, ca, cl
	f.silence, f.age = ca.Time.Sub(a.session.lastFrame), ca.Time.Sub(A.end.First)
	f.frames = a.session.frames
	proxy := a.chain[0].req.Server
	switch {
	case f.idle():
		f.siblings = a.an.cross.recordCut(cut{proxy: proxy, at: ca.Time, age: -f.silence}) // idle cuts: negative, apart from lifetimes
	case f.lifetime():
		k := cut{proxy: proxy, at: ca.Time, age: f.age}
		f.siblings = a.an.cross.recordCut(k)
		f.outlived = len(f.siblings) > 0 && a.an.cross.outlived(k)
	}
	return f
}

// massCloseRule points a tunnel that the proxy closed together with many
// others to the mass_close event.
func massCloseRule(a *attempt, out []finding) []finding {
	if a.cross == nil {
		return out
	}
	m := &a.cross.mass
	if !m.closed || m.event == nil {
		return out
	}
	e := m.event
	_, rleg := a.legName(0)
	how := "FIN"
	if m.kind == reassembly.CloseRST {
		how = "RST"
		if m.finFirst {
			how = "FIN, then RST"
		}
	}
	if e.Server != a.chain[0].req.Server {
		return append(out, found(MassClose, 0, fmt.Sprintf("%s: the proxy closed this tunnel (%s) at %s without a close frame, passing on the %s's close of %d tunnels within %s: see the %s",
			rleg, how, ts(m.at), e.ClosedBy, e.Count, dur(e.Window), e.Ref())))
	}
	return append(out, found(MassClose, 0, fmt.Sprintf("%s: the %s closed this tunnel (%s) at %s without a close frame, one of %d it closed within %s: see the %s",
		rleg, e.ClosedBy, how, ts(m.at), e.Count, dur(e.Window), e.Ref())))
}

// frontCutRule: what is in front of the proxy (a load balancer, a relay)
// cut the client's leg: after a silence (front_idle_timeout), or at the
// same age as other tunnels through this proxy despite traffic
// (lifetime_limit).
func frontCutRule(a *attempt, out []finding) []finding {
	if a.cross == nil {
		return out
	}
	f := &a.cross.front
	if !f.idle() && !(f.lifetime() && len(f.siblings) > 0 && !f.outlived) {
		return out
	}
	leg, _ := a.legName(0)
	proxy := a.chain[0].req.Server
	what := "closed it (FIN)"
	if f.client.Kind == reassembly.CloseRST {
		what = "reset it (RST)"
	}
	cutEv := fmt.Sprintf("%s: the client side (%s: what is in front of the proxy) %s at %s without a close frame, while the proxy's leg to the backend was open; the proxy closed that one (%s) %s later",
		leg, a.chain[0].req.Client, what, ts(f.client.Time), f.upstream.Kind, dur(f.upstream.Time.Sub(f.client.Time)))
	if f.idle() {
		// A client that goes quiet and then leaves looks the same from the
		// proxy's side: a hop in front must show itself.
		front := frontEvidence(a, f)
		if front == "" {
			return out
		}
		ev := []string{fmt.Sprintf("no frame in either direction for %s (last at %s), then the cut", dur(f.silence), ts(a.session.lastFrame)), cutEv}
		if len(f.siblings) > 0 {
			ev = append(ev, fmt.Sprintf("the same cut after the same silence on %d other tunnel(s) through %s", len(f.siblings), proxy))
		}
		if front != "siblings" {
			ev = append(ev, front)
		}
		return append(out, found(FrontIdleTimeout, 0, ev...))
	}
	return append(out, found(LifetimeLimit, 0, fmt.Sprintf("cut at %s of age, %s after the last frame (traffic was flowing): %d other tunnel(s) through %s were cut at the same age (%s)",
		dur(f.age), dur(f.silence), len(f.siblings), proxy, cutAges(f.siblings)), cutEv))
}

// cutAges lists the ages of up to four cuts.
func cutAges(sib []cut) string {
	ages := ""
	for i, s := range sib {
		if i == 4 {
			ages += ", …"
			break
		}
		if i > 0 {
			ages += ", "
		}
		ages += dur(s.age)
	}
	return ages
}

// stickyTunnelRule: an upgrade that reached the backend holding its
// session, but whose tunnel ended without a close frame while another
// backend refused the same session's other requests (socket.io's client
// polls alongside the upgrade and drops the session when a poll fails).
func stickyTunnelRule(a *attempt, out []finding) []finding {
	if a.cross == nil {
		return out
	}
	s := &a.cross.sticky
	n := len(a.chain)
	if s.entry == nil || a.has(StickySessionMissing) {
		return out
	}
	A, L := a.chain[0], a.chain[n-1]
	e := s.entry
	if !e.refusedBy.IsValid() || e.refusedBy == L.req.Server || e.refusedBy == A.req.Server {
		return out
	}
	_, c := A.end.FirstClose()
	return append(out, found(StickySessionMissing, n-2, fmt.Sprintf("session %s=%s reached %s for this upgrade, but its other requests went to %s, which refused them at %s: %s; the tunnel then ended at %s without a close frame",
		s.key, s.id, L.req.Server, e.refusedBy, ts(e.refusedAt), e.refusal, ts(c.Time))))
}

// recordCut adds k to the cuts and returns the others through its proxy
// at the same age.
func (c *crossState) recordCut(k cut) []cut {
	c.addCut(k)
	return c.siblings(k)
}

// flushBurst makes a burst of closes by server, with the bursts of the
// proxies that relayed them, a mass_close event: one line for all its
// tunnels, which the verdict of each points to.
func (a *Analyzer) flushBurst(server netip.AddrPort, b *burst, relays []relay) {
	c := a.cross
	if b.count < burstMin || b.last.Sub(b.first) > maxBurstSpan {
		return
	}
	// Idle timeouts of tunnels opened together close together too: one
	// silence, of at least a second, on every tunnel is an idle timeout.
	if b.minIdle >= time.Second && b.maxIdle-b.minIdle <= b.maxIdle/10 {
		return
	}
	up := 0
	for _, t := range c.upCloses {
		if !t.Before(b.first.Add(-10*time.Millisecond)) && !t.After(b.last.Add(100*time.Millisecond)) {
			up++
		}
	}
	e := &Event{Time: b.first, Code: MassClose, Count: b.count, Window: b.last.Sub(b.first), Server: server, ClosedBy: "server", relays: relays}
	e.Evidence = append(e.Evidence, fmt.Sprintf("%s closed %d WebSocket connections within %s (%s to %s), without close frames",
		server, b.count, dur(e.Window), ts(b.first), ts(b.last)))
	switch {
	case len(relays) > 0:
		e.ClosedBy = "backend"
		for _, r := range relays {
			e.Evidence = append(e.Evidence, fmt.Sprintf("%s (a proxy) then closed %d of its clients' connections within %s, %s after the first: it relayed the backend's closes",
				r.server, r.count, dur(r.last.Sub(r.first)), dur(r.first.Sub(b.first))))
		}
		e.Cause = "the backend ended every tunnel at once: a restart, a deploy or a crash of " + server.String()
		e.Fix = "tunnels end with their backend process: deploy with a drain (stop taking new tunnels, close the open ones with close 1001 \"going away\" over a while), and make clients reconnect with backoff and jitter"
	case up > 0:
		e.ClosedBy = "proxy"
		e.Evidence = append(e.Evidence, fmt.Sprintf("at the same moment %d upstream WebSocket connections were closed by their client side (the proxy), also without close frames", up))
		e.Cause = "the proxy ended every tunnel at once: a reload (nginx -s reload with worker_shutdown_timeout, Caddy reload), a restart or a deploy"
		e.Fix = "tunnels do not survive a proxy restart; an nginx reload keeps old workers serving open tunnels unless worker_shutdown_timeout is set (then they are cut when it expires): reload less often, or make clients reconnect with backoff and jitter so the reconnect wave does not hit at once"
	default:
		e.Cause = "the server ended every tunnel at once: a restart, a deploy or a crash"
		e.Fix = "clients must reconnect with backoff and jitter; check the server's logs and deploy times at that moment"
	}
	if b.minIdle >= time.Second {
		e.Evidence = append(e.Evidence, fmt.Sprintf("silence before the close: %s to %s (different on each tunnel: not an idle timeout)", dur(b.minIdle), dur(b.maxIdle)))
	}
	if len(c.events) < maxEvents {
		c.events = append(c.events, e)
	} else {
		c.events[c.eventNext] = e
		c.eventNext = (c.eventNext + 1) % maxEvents
	}
	if a.opt.Events != nil {
		a.opt.Events(e)
	}
}
