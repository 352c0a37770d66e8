package analyze

import (
	"fmt"
	"strconv"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The session phase: what happened after a 101, judged from the frame
// figures of every upgraded leg and how each TCP connection ended.

// sessionFacts are an attempt's upgraded legs and what their ends show,
// when the client's leg (its first) is one of them.
type sessionFacts struct {
	// legs are the legs whose connections upgraded and ended, in chain
	// order, leg 0 first.
	legs []wsLeg
	// first is the close frame that started the closing handshake.
	first closeFrame
	// lastFrame is the last frame on any leg (the 101 when none), frames
	// and pings their counts on every leg.
	lastFrame time.Time
	frames    uint64
	pings     uint32
	idle      idleFacts
}

// wsLeg is one upgraded leg of a chain.
type wsLeg struct {
	i   int
	end *reassembly.ConnEnd
	ws  *reassembly.WSSession
}

// closeFrame is a direction's close frame: on leg i, from its client
// when c2s. d is nil when there was none.
type closeFrame struct {
	d   *reassembly.WSDir
	i   int
	c2s bool
}

// idleFacts: byProxy, the proxy ended every upgraded leg (the client's
// and the backend's) without a close frame; silence is how long no frame
// had passed in either direction then.
type idleFacts struct {
	byProxy          bool
	silence          time.Duration
	client, upstream reassembly.Close // the proxy's ends of the client's and the backend's legs
}

func (a *attempt) observeSession() *sessionFacts {
	if A := a.chain[0]; !A.switched() || A.end == nil || A.end.WS == nil {
		return nil
	}
	s := &sessionFacts{legs: make([]wsLeg, 0, len(a.chain))}
	for i, x := range a.chain {
		if x.switched() && x.end != nil && x.end.WS != nil {
			s.legs = append(s.legs, wsLeg{i, x.end, x.end.WS})
		}
	}
	s.first = firstCloseFrame(s.legs[0], s.legs[len(s.legs)-1])
	s.lastFrame = a.chain[0].resp.End
	for _, l := range s.legs {
		for _, d := range [...]*reassembly.WSDir{&l.ws.C2S, &l.ws.S2C} {
			s.lastFrame = maxTime(s.lastFrame, d.Last)
			s.frames += d.Frames
			s.pings += d.Pings
		}
	}
	s.idle = a.idleFactsOf(s)
	return s
}

// firstCloseFrame finds the close frame that started the closing
// handshake: the client's on leg 0 or the backend's on the last leg (a
// proxy relays the other ends' close frames).
func firstCloseFrame(A, L wsLeg) closeFrame {
	cands := [...]closeFrame{{&A.ws.C2S, A.i, true}, {&L.ws.S2C, L.i, false}, {&A.ws.S2C, A.i, false}}
	var f closeFrame
	for _, c := range cands {
		if c.d.CloseAt.IsZero() {
			continue
		}
		if f.d == nil || c.d.CloseAt.Before(f.d.CloseAt) {
			f = c
		}
	}
	return f
}

// closedBy names who sent a close frame.
func (a *attempt) closedBy(f closeFrame) string {
	if a.kind == fromUpstream && f.c2s {
		return "client" // relayed by the proxy from the unseen client leg
	}
	return a.sender(f.i, f.c2s)
}

func noCloseFrame(ws *reassembly.WSSession) bool {
	return ws.C2S.CloseAt.IsZero() && ws.S2C.CloseAt.IsZero()
}

func (a *attempt) idleFactsOf(s *sessionFacts) idleFacts {
	legs := s.legs
	A, L := legs[0], legs[len(legs)-1]
	n := len(a.chain)
	var f idleFacts
	if !(n > 1 || a.enc != nil && a.enc.end != nil) || len(legs) != n {
		return f
	}
	sa, ca := A.end.FirstClose()
	proxyA := sa == reassembly.SideServer && noCloseFrame(A.ws)
	if a.enc != nil {
		// the client's TLS leg: who closed it, frames unseen
		if a.enc.end == nil {
			return f // still open: not closed by the proxy
		}
		sa, ca = a.enc.end.FirstClose()
		proxyA = sa == reassembly.SideServer
	}
	sl, cl := L.end.FirstClose()
	proxyL := sl == reassembly.SideClient && noCloseFrame(L.ws)
	if !proxyA || !proxyL {
		return f
	}
	f.byProxy, f.client, f.upstream = true, ca, cl
	first := cl.Time
	if ca.Time.Before(first) {
		first = ca.Time
	}
	f.silence = first.Sub(s.lastFrame)
	return f
}

func normalClose(code uint16) bool { return code == 1000 || code == 1001 || code == 1005 }

func closeText(d *reassembly.WSDir) string {
	s := "close (no code)"
	if d.CloseCode != 1005 {
		s = "close " + strconv.Itoa(int(d.CloseCode))
	}
	if d.CloseReason != "" {
		// As sent: each view escapes what it must (text its control and
		// bidi characters, JSON and HTML by their own rules).
		s += ` "` + d.CloseReason + `"`
	}
	return s
}

func dirOf(ws *reassembly.WSSession, c2s bool) reassembly.WSDir {
	if c2s {
		return ws.C2S
	}
	return ws.S2C
}

// protocolErrorRule: frames that break the protocol
// (frame_protocol_error). In the session rules legs are the upgraded
// legs, the client's first (with an encrypted client leg: the first
// upstream leg).
func protocolErrorRule(a *attempt, out []finding) []finding {
	if a.session == nil {
		return out
	}
	for _, l := range a.session.legs {
		for _, c2s := range []bool{true, false} {
			if d := dirOf(l.ws, c2s); d.ProtocolError != "" {
				return append(out, found(FrameProtocolError, l.i, fmt.Sprintf("%s: %s sent an invalid frame at %s: %s", a.dirName(l.i, c2s), a.sender(l.i, c2s), ts(d.ErrorAt), d.ProtocolError)))
			}
		}
	}
	return out
}

// tooBigRule: a message too big for the receiver (message_too_big):
// close 1009, or the backend dropping the connection in the middle of a
// large message. The backend's leg first: a proxy only relays the 1009.
func tooBigRule(a *attempt, out []finding) []finding {
	if a.session == nil {
		return out
	}
	legs := a.session.legs
	A, L := legs[0], legs[len(legs)-1]
	for k := len(legs) - 1; k >= 0; k-- {
		l := legs[k]
		for _, c2s := range []bool{false, true} {
			d, other := dirOf(l.ws, c2s), dirOf(l.ws, !c2s)
			if d.CloseCode != 1009 {
				continue
			}
			ev := []string{fmt.Sprintf("%s: %s sent %s at %s, after a %s frame from the %s", a.dirName(l.i, c2s), a.sender(l.i, c2s),
				closeText(&d), ts(d.CloseAt), sizeText(other.MaxFrame), a.sender(l.i, !c2s))}
			if l.i > 0 && !c2s {
				// did the close reach the client?
				if s := A.ws.S2C; s.CloseCode == 1009 {
					ev = append(ev, a.dirName(0, false)+": relayed to the client (close 1009)")
				} else if side, c := A.end.FirstClose(); side == reassembly.SideServer {
					ev = append(ev, fmt.Sprintf("%s: not relayed: the proxy ended the client's connection (%s) instead, so the client sees 1006", a.dirName(0, false), c.Kind))
				}
			}
			return append(out, found(MessageTooBig, l.i, ev...))
		}
	}
	if side, c := L.end.FirstClose(); side == reassembly.SideServer && L.ws.C2S.InMessage && L.ws.S2C.CloseAt.IsZero() && L.ws.C2S.MaxFrame >= 64<<10 {
		out = append(out, found(MessageTooBig, L.i, fmt.Sprintf("%s: the %s ended the connection (%s) in the middle of a %s message, without a close frame",
			a.dirName(L.i, false), a.sender(L.i, false), c.Kind, sizeText(L.ws.C2S.MaxFrame))))
	}
	return out
}

// idleRule: the proxy closed an idle tunnel (idle_timeout): both legs
// ended by the proxy, with no close frame, after a silence in every
// direction.
func idleRule(a *attempt, out []finding) []finding {
	if a.session == nil {
		return out
	}
	s := a.session
	f := &s.idle
	if !f.byProxy || f.silence < time.Second {
		return out
	}
	ping := "no pings were sent"
	if s.pings > 0 {
		ping = fmt.Sprintf("%d pings were sent, but none in the last %s", s.pings, dur(f.silence))
	}
	return append(out, found(IdleTimeout, 0, fmt.Sprintf("no frame in either direction for %s (last at %s); then the proxy closed the backend leg (%s) at %s and the client leg (%s) at %s, without close frames",
		dur(f.silence), ts(s.lastFrame), f.upstream.Kind, ts(f.upstream.Time), f.client.Kind, ts(f.client.Time)), ping))
}

// relayRule: frames in on one leg that never left on the other
// (frames_not_relayed).
func relayRule(a *attempt, out []finding) []finding {
	if a.session == nil {
		return out
	}
	legs := a.session.legs
	n := len(a.chain)
	if n < 2 || len(legs) != n {
		return out
	}
	A, L := legs[0], legs[len(legs)-1]
	if A.end.Reason == reassembly.EndCapture || L.end.Reason == reassembly.EndCapture {
		return out
	}
	slack := uint64(1)
	if a.kind == midSession {
		slack = 2 // a frame in flight as the capture began counts on one leg only
	}
	check := func(in *reassembly.WSDir, inName string, out *reassembly.WSDir, outName string) (string, bool) {
		if in.Degraded || out.Degraded || in.ProtocolError != "" || in.Frames <= out.Frames+slack {
			return "", false
		}
		return fmt.Sprintf("%s: %d frames (%s); %s: %d frames (%s)", inName, in.Frames, sizeText(in.Bytes), outName, out.Frames, sizeText(out.Bytes)), true
	}
	if ev, ok := check(&A.ws.C2S, a.dirName(0, true), &L.ws.C2S, a.dirName(L.i, true)); ok {
		return append(out, found(FramesNotRelayed, 0, ev))
	}
	if ev, ok := check(&L.ws.S2C, a.dirName(L.i, false), &A.ws.S2C, a.dirName(0, false)); ok {
		return append(out, found(FramesNotRelayed, 0, ev))
	}
	return out
}

// abnormalRule: a connection that ended with RST, or FIN without a close
// frame from the side that ended it (abnormal_close); an idle timeout
// explains that already.
func abnormalRule(a *attempt, out []finding) []finding {
	if a.session == nil || a.has(IdleTimeout) {
		return out
	}
	legs := a.session.legs
	for _, l := range [...]wsLeg{legs[0], legs[len(legs)-1]} {
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
			return append(out, found(AbnormalClose, l.i, fmt.Sprintf("%s: the %s %s at %s", a.dirName(l.i, c2s), a.sender(l.i, c2s), what, ts(c.Time))))
		}
	}
	return out
}

// closeFrameRule: who sent the first close frame, and with which code
// (closed_by_client, closed_by_backend). A normal code explains; an
// unusual one is the verdict, unless a too-big message explains it.
func closeFrameRule(a *attempt, out []finding) []finding {
	if a.session == nil || a.session.first.d == nil {
		return out
	}
	f := a.session.first
	by := a.closedBy(f)
	code := ClosedByClient
	if by != "client" {
		code = ClosedByBackend
	}
	ev := a.dirName(f.i, f.c2s) + ": " + by + " sent " + closeText(f.d) + " at " + ts(f.d.CloseAt)
	switch {
	case normalClose(f.d.CloseCode):
		out = append(out, explains(code, f.i, ev))
	case !a.has(MessageTooBig):
		out = append(out, found(code, f.i, ev))
	}
	return out
}

// sessionFigures summarises the client's leg of an upgraded attempt.
func (a *attempt) sessionFigures() *Session {
	A := a.chain[0]
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
	if ss := a.session; ss != nil && ss.first.d != nil {
		f := ss.first
		s.ClosedBy, s.CloseCode, s.CloseReason = a.closedBy(f), f.d.CloseCode, f.d.CloseReason
		return s
	}
	s.ClosedBy = a.tcpCloser(side)
	return s
}

// tcpCloser names who ended the client's upgraded leg, without a close
// frame: its client, or behind the proxy the end whose leg closed first.
func (a *attempt) tcpCloser(side reassembly.Side) string {
	n := len(a.chain)
	switch side {
	case reassembly.SideClient:
		return "client"
	case reassembly.SideServer:
		if n == 1 {
			return a.sender(n-1, false)
		}
		// the proxy ended the client's leg; the backend's leg tells who
		// started it
		if L := a.chain[n-1]; L.end != nil {
			if ls, _ := L.end.FirstClose(); ls == reassembly.SideServer {
				return "backend"
			}
		}
		return "proxy"
	}
	return ""
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
