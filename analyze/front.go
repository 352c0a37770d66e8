package analyze

import (
	"fmt"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

var spf = fmt.Sprintf

// crossRules are the rules that look at other connections: a tunnel cut
// in front of the proxy (alone when idle, with its siblings when at a
// fixed age) and a mass close. final: no more waiting.
func (j *judgement) crossRules(final bool) {
	j.holdUntil = time.Time{}
	if j.upstreamOnly || j.encrypted != nil {
		return
	}
	j.massCloseRule(final)
	j.frontRule(final)
	j.stickyTunnelRule()
}

// stickyTunnelRule: an upgrade that reached the backend holding its
// session, but whose tunnel ended without a close frame while another
// backend refused the same session's other requests (socket.io's client
// polls alongside the upgrade and drops the session when a poll fails).
func (j *judgement) stickyTunnelRule() {
	n := len(j.chain)
	A, L := j.chain[0], j.chain[n-1]
	if n < 2 || A.resp == nil || A.resp.Status != 101 || A.end == nil || A.end.WS == nil || j.has(StickySessionMissing) {
		return
	}
	if ws := A.end.WS; !ws.C2S.CloseAt.IsZero() || !ws.S2C.CloseAt.IsZero() {
		return
	}
	k, id := sessionIDOf(L.req.Target)
	e := j.a.cross.sids[id]
	if id == "" || e == nil || !e.refusedBy.IsValid() || e.refusedBy == L.req.Server || e.refusedBy == A.req.Server {
		return
	}
	_, c := A.end.FirstClose()
	j.add(StickySessionMissing, n-2, spf("session %s=%s reached %s for this upgrade, but its other requests went to %s, which refused them at %s: %s; the tunnel then ended at %s without a close frame",
		k, id, L.req.Server, e.refusedBy, ts(e.refusedAt), e.refusal, ts(c.Time)))
}

// massCloseRule points a tunnel that the proxy closed together with many
// others to the mass_close event.
func (j *judgement) massCloseRule(final bool) {
	A := j.chain[0]
	if A.resp == nil || A.resp.Status != 101 || A.end == nil || A.end.WS == nil {
		return
	}
	side, c := A.end.FirstClose()
	if side != reassembly.SideServer || !A.end.WS.S2C.CloseAt.IsZero() || !A.end.WS.C2S.CloseAt.IsZero() {
		return
	}
	c.Time = A.end.Began(side)
	cs := j.a.cross
	e := cs.eventFor(A.req.Server, c.Time)
	if e == nil {
		if b := cs.bursts[A.req.Server]; b != nil && !final && !c.Time.Before(b.first) {
			j.holdUntil = b.last.Add(burstGap + time.Millisecond) // the burst is still open
		}
		return
	}
	_, rleg := j.legName(0)
	j.event = e
	how := "FIN"
	if c.Kind == reassembly.CloseRST {
		how = "RST"
		if c.Time != A.end.ServerClose.Time {
			how = "FIN, then RST"
		}
	}
	if e.Server != A.req.Server {
		j.add(MassClose, 0, spf("%s: the proxy closed this tunnel (%s) at %s without a close frame, passing on the %s's close of %d tunnels within %s: see the %s",
			rleg, how, ts(c.Time), e.ClosedBy, e.Count, dur(e.Window), e.Ref()))
		return
	}
	j.add(MassClose, 0, spf("%s: the %s closed this tunnel (%s) at %s without a close frame, one of %d it closed within %s: see the %s",
		rleg, e.ClosedBy, how, ts(c.Time), e.Count, dur(e.Window), e.Ref()))
}

// frontRule: the client's leg ended by its client side without a close
// frame while the proxy's upstream leg was open, so the proxy closed that
// one afterwards. What is in front of the proxy (a load balancer, a
// relay) cut it: after a silence (front_idle_timeout), or at the same
// age as other tunnels through this proxy despite traffic
// (lifetime_limit).
func (j *judgement) frontRule(final bool) {
	legs := j.upgradedLegs()
	n := len(j.chain)
	if n < 2 || len(legs) != n || legs[0].i != 0 {
		return
	}
	A, L := legs[0], legs[n-1]
	sa, ca := A.end.FirstClose()
	if sa != reassembly.SideClient || A.end.Reason != reassembly.EndClosed || !A.ws.C2S.CloseAt.IsZero() || !A.ws.S2C.CloseAt.IsZero() {
		return
	}
	sl, cl := L.end.FirstClose()
	if sl != reassembly.SideClient || cl.Time.Before(ca.Time) || !L.ws.C2S.CloseAt.IsZero() || !L.ws.S2C.CloseAt.IsZero() {
		return
	}
	start := j.chain[0].resp.End
	last := start
	var frames uint64
	for _, l := range legs {
		for _, c2s := range []bool{true, false} {
			d := dirOf(l.ws, c2s)
			last = maxTime(last, d.Last)
			frames += d.Frames
		}
	}
	// The age counts from the connection's first packet: what is in front
	// opened it when its own connection began, before the handshake.
	silence, age := ca.Time.Sub(last), ca.Time.Sub(A.end.First)
	leg, _ := j.legName(0)
	front := j.chain[0].req.Client
	what := "closed it (FIN)"
	if ca.Kind == reassembly.CloseRST {
		what = "reset it (RST)"
	}
	cutEv := spf("%s: the client side (%s: what is in front of the proxy) %s at %s without a close frame, while the proxy's leg to the backend was open; the proxy closed that one (%s) %s later",
		leg, front, what, ts(ca.Time), cl.Kind, dur(cl.Time.Sub(ca.Time)))
	if silence >= time.Second {
		j.idle = silence
		ev := []string{spf("no frame in either direction for %s (last at %s), then the cut", dur(silence), ts(last)), cutEv}
		k := cut{proxy: j.chain[0].req.Server, at: ca.Time, age: -silence} // idle cuts: negative, apart from lifetimes
		j.a.cross.addCut(k)
		if sib := j.a.cross.siblings(k); len(sib) > 0 {
			ev = append(ev, spf("the same cut after the same silence on %d other tunnel(s) through %s", len(sib), k.proxy))
		}
		j.add(FrontIdleTimeout, 0, ev...)
		return
	}
	if age < time.Second || frames == 0 {
		return
	}
	k := cut{proxy: j.chain[0].req.Server, at: ca.Time, age: age}
	j.a.cross.addCut(k)
	sib := j.a.cross.siblings(k)
	if len(sib) > 0 && j.a.cross.outlived(k) {
		return // a fixed lifetime cuts every tunnel: one lived longer
	}
	if len(sib) == 0 {
		if !final {
			j.holdUntil = ca.Time.Add(holdFront)
		}
		return
	}
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
	j.cutAge = age
	j.add(LifetimeLimit, 0, spf("cut at %s of age, %s after the last frame (traffic was flowing): %d other tunnel(s) through %s were cut at the same age (%s)",
		dur(age), dur(silence), len(sib), k.proxy, ages), cutEv)
}
