package analyze

import (
	"fmt"
	"strconv"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The session phase: what happened after a 101, judged from the frame
// figures of every upgraded leg and how each TCP connection ended.

// wsLeg is one upgraded leg of a chain.
type wsLeg struct {
	i   int
	end *reassembly.ConnEnd
	ws  *reassembly.WSSession
}

// upgradedLegs returns the legs whose connections upgraded and ended.
func (j *judgement) upgradedLegs() []wsLeg {
	var out []wsLeg
	for i, x := range j.chain {
		if x.switched() && x.end != nil && x.end.WS != nil {
			out = append(out, wsLeg{i, x.end, x.end.WS})
		}
	}
	return out
}

// sender names who sends in a direction of leg i.
func (j *judgement) sender(i int, c2s bool) string {
	n := len(j.chain)
	if j.upstreamOnly {
		i, n = i+1, n+1
	}
	switch {
	case c2s && i == 0:
		return "client"
	case c2s:
		return "proxy"
	case i < n-1:
		return "proxy"
	case n == 1 && !j.proxyEvident():
		return "server"
	case n == 1:
		return "proxy"
	}
	return "backend"
}

func (j *judgement) dirName(i int, c2s bool) string {
	req, resp := j.legName(i)
	if c2s {
		return req
	}
	return resp
}

func normalClose(code uint16) bool { return code == 1000 || code == 1001 || code == 1005 }

func closeText(d *reassembly.WSDir) string {
	s := "close (no code)"
	if d.CloseCode != 1005 {
		s = "close " + strconv.Itoa(int(d.CloseCode))
	}
	if d.CloseReason != "" {
		s += " " + strconv.Quote(d.CloseReason) // as %q
	}
	return s
}

func sizeText(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// sessionRules judge an attempt whose client got a 101, in steps ordered
// by cause: a later step may look at what an earlier one found.
func (j *judgement) sessionRules() {
	legs := j.upgradedLegs()
	if len(legs) == 0 || legs[0].i != 0 {
		return
	}
	j.protocolErrorRule(legs)
	j.tooBigRule(legs)
	j.idleRule(legs)
	j.relayRule(legs)
	if !j.has(IdleTimeout) {
		j.abnormal(legs[0], legs[len(legs)-1])
	}
	j.closeFrameRule(legs)
}

// protocolErrorRule: frames that break the protocol. In these rules legs
// are the upgraded legs, the client's first (with an encrypted client leg:
// the first upstream leg).
func (j *judgement) protocolErrorRule(legs []wsLeg) {
	for _, l := range legs {
		for _, c2s := range []bool{true, false} {
			d := dirOf(l.ws, c2s)
			if d.ProtocolError != "" {
				j.add(FrameProtocolError, l.i, fmt.Sprintf("%s: %s sent an invalid frame at %s: %s", j.dirName(l.i, c2s), j.sender(l.i, c2s), ts(d.ErrorAt), d.ProtocolError))
			}
		}
	}
}

// tooBigRule: a message too big for the receiver: close 1009, or the
// backend dropping the connection in the middle of a large message. The
// backend's leg first: a proxy only relays the 1009.
func (j *judgement) tooBigRule(legs []wsLeg) {
	A, L := legs[0], legs[len(legs)-1]
	for k := len(legs) - 1; k >= 0 && !j.has(MessageTooBig); k-- {
		l := legs[k]
		for _, c2s := range []bool{false, true} {
			d, other := dirOf(l.ws, c2s), dirOf(l.ws, !c2s)
			if d.CloseCode != 1009 || j.has(MessageTooBig) {
				continue
			}
			ev := []string{fmt.Sprintf("%s: %s sent %s at %s, after a %s frame from the %s", j.dirName(l.i, c2s), j.sender(l.i, c2s),
				closeText(&d), ts(d.CloseAt), sizeText(other.MaxFrame), j.sender(l.i, !c2s))}
			if l.i > 0 && !c2s {
				// did the close reach the client?
				if a := A.ws.S2C; a.CloseCode == 1009 {
					ev = append(ev, j.dirName(0, false)+": relayed to the client (close 1009)")
				} else if side, c := A.end.FirstClose(); side == reassembly.SideServer {
					ev = append(ev, fmt.Sprintf("%s: not relayed: the proxy ended the client's connection (%s) instead, so the client sees 1006", j.dirName(0, false), c.Kind))
				}
			}
			j.add(MessageTooBig, l.i, ev...)
		}
	}
	if side, c := L.end.FirstClose(); side == reassembly.SideServer && L.ws.C2S.InMessage && L.ws.S2C.CloseAt.IsZero() && L.ws.C2S.MaxFrame >= 64<<10 {
		j.add(MessageTooBig, L.i, fmt.Sprintf("%s: the %s ended the connection (%s) in the middle of a %s message, without a close frame",
			j.dirName(L.i, false), j.sender(L.i, false), c.Kind, sizeText(L.ws.C2S.MaxFrame)))
	}
}

// idleRule: the proxy closed an idle tunnel: both legs ended by the proxy,
// with no close frame, after a silence in every direction.
func (j *judgement) idleRule(legs []wsLeg) {
	A, L := legs[0], legs[len(legs)-1]
	n := len(j.chain)
	if !(n > 1 || j.encrypted != nil && j.encrypted.end != nil) || len(legs) != n {
		return
	}
	sa, ca := A.end.FirstClose()
	proxyA := sa == reassembly.SideServer && A.ws.S2C.CloseAt.IsZero() && A.ws.C2S.CloseAt.IsZero()
	if j.encrypted != nil {
		// the client's TLS leg: who closed it, frames unseen
		sa, ca = j.encrypted.end.FirstClose()
		proxyA = sa == reassembly.SideServer
	}
	sl, cl := L.end.FirstClose()
	proxyL := sl == reassembly.SideClient && L.ws.C2S.CloseAt.IsZero() && L.ws.S2C.CloseAt.IsZero()
	if !proxyA || !proxyL {
		return
	}
	last := j.chain[0].resp.End
	pings := uint32(0)
	for _, l := range legs {
		for _, c2s := range []bool{true, false} {
			d := dirOf(l.ws, c2s)
			if d.Last.After(last) {
				last = d.Last
			}
			pings += d.Pings
		}
	}
	first := cl.Time
	if ca.Time.Before(first) {
		first = ca.Time
	}
	idle := first.Sub(last)
	if idle < time.Second {
		return
	}
	ping := "no pings were sent"
	if pings > 0 {
		ping = fmt.Sprintf("%d pings were sent, but none in the last %s", pings, dur(idle))
	}
	j.idle = idle
	j.add(IdleTimeout, 0, fmt.Sprintf("no frame in either direction for %s (last at %s); then the proxy closed the backend leg (%s) at %s and the client leg (%s) at %s, without close frames",
		dur(idle), ts(last), cl.Kind, ts(cl.Time), ca.Kind, ts(ca.Time)), ping)
}

// relayRule: frames in on one leg that never left on the other.
func (j *judgement) relayRule(legs []wsLeg) {
	A, L := legs[0], legs[len(legs)-1]
	n := len(j.chain)
	if n < 2 || len(legs) != n || A.end.Reason == reassembly.EndCapture || L.end.Reason == reassembly.EndCapture {
		return
	}
	check := func(in *reassembly.WSDir, inName string, out *reassembly.WSDir, outName string) {
		if in.Degraded || out.Degraded || in.ProtocolError != "" {
			return
		}
		slack := uint64(1)
		if j.midstream {
			slack = 2 // a frame in flight as the capture began counts on one leg only
		}
		if in.Frames > out.Frames+slack {
			j.add(FramesNotRelayed, 0, fmt.Sprintf("%s: %d frames (%s); %s: %d frames (%s)", inName, in.Frames, sizeText(in.Bytes), outName, out.Frames, sizeText(out.Bytes)))
		}
	}
	check(&A.ws.C2S, j.dirName(0, true), &L.ws.C2S, j.dirName(L.i, true))
	check(&L.ws.S2C, j.dirName(L.i, false), &A.ws.S2C, j.dirName(0, false))
}

// closeFrameRule: who sent the first close frame, and with which code. A
// normal code is a note; an unusual one the verdict, unless a too-big
// message explains it.
func (j *judgement) closeFrameRule(legs []wsLeg) {
	by, d, i, c2s := j.firstCloseFrame(legs[0], legs[len(legs)-1])
	if d == nil {
		return
	}
	code := ClosedByClient
	if by != "client" {
		code = ClosedByBackend
	}
	ev := j.dirName(i, c2s) + ": " + by + " sent " + closeText(d) + " at " + ts(d.CloseAt)
	if normalClose(d.CloseCode) {
		j.addNote(code, i, ev)
	} else if !j.has(MessageTooBig) {
		j.add(code, i, ev)
	}
}

func dirOf(ws *reassembly.WSSession, c2s bool) reassembly.WSDir {
	if c2s {
		return ws.C2S
	}
	return ws.S2C
}

// firstCloseFrame finds the close frame that started the closing
// handshake: the client's on leg 0 or the backend's on the last leg (a
// proxy relays the other ends' close frames).
func (j *judgement) firstCloseFrame(A, L wsLeg) (by string, d *reassembly.WSDir, leg int, c2s bool) {
	cands := []struct {
		d   *reassembly.WSDir
		i   int
		c2s bool
	}{{&A.ws.C2S, A.i, true}, {&L.ws.S2C, L.i, false}, {&A.ws.S2C, A.i, false}}
	for _, c := range cands {
		if c.d.CloseAt.IsZero() {
			continue
		}
		if d == nil || c.d.CloseAt.Before(d.CloseAt) {
			by, d, leg, c2s = j.sender(c.i, c.c2s), c.d, c.i, c.c2s
			if j.upstreamOnly && c.c2s {
				by = "client" // relayed by the proxy from the unseen client leg
			}
		}
	}
	return
}

// abnormal reports a connection that ended with RST, or FIN without a
// close frame from the side that ended it.
func (j *judgement) abnormal(A, L wsLeg) {
	for _, l := range []wsLeg{A, L} {
		side, c := l.end.FirstClose()
		if side == reassembly.SideNone {
			continue
		}
		c2s := side == reassembly.SideClient
		d := dirOf(l.ws, c2s)
		// Whether that side sent a close frame at all, not before its FIN
		// by time stamp: data behind a hole in the capture is delivered
		// later, with a later packet's time.
		sentClose := !d.CloseAt.IsZero()
		// A reset after close frames went both ways ends a completed
		// closing handshake (Go's TLS client does this): not abnormal.
		handshakeDone := !l.ws.C2S.CloseAt.IsZero() && !l.ws.S2C.CloseAt.IsZero()
		if c.Kind == reassembly.CloseRST && !handshakeDone || !sentClose {
			what := "closed the connection (FIN) without a close frame"
			if c.Kind == reassembly.CloseRST {
				what = "reset the connection (RST)"
				if sentClose {
					what += " after its close frame"
				}
			}
			j.add(AbnormalClose, l.i, fmt.Sprintf("%s: the %s %s at %s", j.dirName(l.i, c2s), j.sender(l.i, c2s), what, ts(c.Time)))
			return
		}
	}
}

// sessionFigures summarises the client's leg of an upgraded attempt.
func (j *judgement) sessionFigures() *Session {
	A := j.chain[0]
	if !A.switched() || A.end == nil {
		return nil
	}
	e := A.end
	s := &Session{BytesC2S: e.BytesC2S, BytesS2C: e.BytesS2C}
	start := A.resp.End
	s.Duration = e.Last.Sub(start)
	if ws := e.WS; ws != nil {
		s.FramesC2S, s.FramesS2C = ws.C2S.Frames, ws.S2C.Frames
		s.BytesC2S, s.BytesS2C = ws.C2S.Bytes, ws.S2C.Bytes
		s.LongestSilence = max(ws.C2S.LongestSilence, ws.S2C.LongestSilence)
		s.Pings = ws.C2S.Pings + ws.S2C.Pings
		// the silence before the end counts too
		last := maxTime(ws.C2S.Last, ws.S2C.Last, start)
		if gap := e.Last.Sub(last); gap > s.LongestSilence {
			s.LongestSilence = gap
		}
	}
	if e.Reason == reassembly.EndCapture {
		s.Open = true
		return s
	}
	side, c := e.FirstClose()
	s.CloseKind = c.Kind.String()
	if !c.Time.IsZero() {
		s.Duration = c.Time.Sub(start)
	}
	if legs := j.upgradedLegs(); len(legs) > 0 && legs[0].i == 0 {
		if by, d, _, _ := j.firstCloseFrame(legs[0], legs[len(legs)-1]); d != nil {
			s.ClosedBy, s.CloseCode, s.CloseReason = by, d.CloseCode, d.CloseReason
			return s
		}
	}
	switch side {
	case reassembly.SideClient:
		s.ClosedBy = "client"
	case reassembly.SideServer:
		s.ClosedBy = j.sender(len(j.chain)-1, false)
		if len(j.chain) > 1 {
			// the proxy ended the client's leg; the backend's leg tells who
			// started it
			s.ClosedBy = "proxy"
			if L := j.chain[len(j.chain)-1]; L.end != nil {
				if ls, _ := L.end.FirstClose(); ls == reassembly.SideServer {
					s.ClosedBy = "backend"
				}
			}
		}
	}
	return s
}

func maxTime(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// timeoutName names the proxy setting an idle timeout matches.
func timeoutName(product string) string {
	switch family(product) {
	case "nginx":
		return "proxy_read_timeout"
	case "haproxy":
		return `"timeout tunnel" (or "timeout client"/"timeout server" when no tunnel timeout is set)`
	case "apache":
		return "ProxyTimeout / the ProxyPass timeout= parameter"
	case "caddy":
		return "reverse_proxy's stream_timeout"
	}
	return "the proxy's idle timeout"
}
