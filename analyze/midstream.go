package analyze

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Sessions whose handshake is not in the capture (tcpdump started while
// they were open, a rotated file): reassembly found WebSocket frames on a
// connection without a SYN or a request (ConnEnd.WS.MidStream). Such legs
// are paired by their frames, since a proxy tunnels each frame byte for
// byte: a client frame leaves on the upstream leg with the same header
// (masking key included) and payload a few hundred µs after it arrived on
// the client's leg, and a server frame goes the other way. Each chain is
// judged by the session rules alone, with handshake_not_captured among
// its findings.

// midRelayMax is the longest a proxy may take to relay a frame.
const midRelayMax = time.Second

// midWait is how long (capture time) after a leg ended its partner may
// still end, at least: a proxy closes its two legs at about the same
// time. Reading a file the analyzer's Grace is longer (a pcapng's
// interfaces may be written in blocks).
const midWait = 2 * time.Second

// midMaxPending bounds the legs waiting to be paired.
const midMaxPending = 4096

// midLeg is a connection carrying frames without its handshake.
type midLeg struct {
	end      *reassembly.ConnEnd
	up, down *midLeg
	// score of the link to up, and what matched
	score          int
	masked, server int              // client and server frames matched
	relay          [2]time.Duration // fastest and slowest relay seen
	decided        bool
}

// midState is the Analyzer's record of such legs.
type midState struct {
	legs []*midLeg // waiting, in the order their connections ended
	// products: what handshakes through a proxy address told of it, for
	// the sessions through it whose own handshake is missing.
	products map[netip.AddrPort]string
	paired   bool // some chain of such legs had two legs or more
}

// midEnded takes the end of a connection found carrying frames mid-stream.
func (a *Analyzer) midEnded(e *reassembly.ConnEnd) {
	m := &a.mid
	m.legs = append(m.legs, &midLeg{end: e})
	if len(m.legs) > midMaxPending {
		a.decideMid(time.Time{}, true) // pairs what is there, then forgets it
	}
}

// noteProduct remembers what a verdict told of its proxy.
func (a *Analyzer) noteProduct(v *Verdict) {
	if v.ProxyProduct == "" || !v.Proxy.IsValid() {
		return
	}
	m := &a.mid
	if m.products == nil {
		m.products = map[netip.AddrPort]string{}
	}
	if len(m.products) < 4096 {
		m.products[v.Proxy] = v.ProxyProduct
	}
}

// decideMid judges the chains of waiting legs whose every leg ended long
// enough before now (all of them when final).
func (a *Analyzer) decideMid(now time.Time, final bool) {
	m := &a.mid
	if len(m.legs) == 0 {
		return
	}
	cut := now.Add(-max(a.opt.Grace, midWait))
	if !final && !m.legs[0].end.Last.Before(cut) {
		return // legs wait in the order they ended: none is due
	}
	linkMid(m.legs)
	for _, l := range m.legs {
		if l.decided || l.down != nil {
			continue
		}
		var chain []*midLeg
		ready := true
		for c := l; c != nil; c = c.up {
			chain = append(chain, c)
			ready = ready && (final || c.end.Last.Before(cut))
		}
		if !ready {
			continue
		}
		for _, c := range chain {
			c.decided = true
		}
		if v := a.judgeMid(chain); v != nil {
			a.count(v)
			a.out(v)
		}
	}
	keep := m.legs[:0]
	for _, l := range m.legs {
		if !l.decided {
			l.up, l.down = nil, nil
			keep = append(keep, l)
		}
	}
	for i := len(keep); i < len(m.legs); i++ {
		m.legs[i] = nil
	}
	m.legs = keep
}

// linkMid pairs waiting legs one to one, best relay evidence first. A
// proxy chain relays the same bytes over every hop, so the client's leg
// matches the backend's as well as the next one's: of equal evidence the
// quickest relay wins (one hop is quicker than two). Remaining ties go to
// the earlier connection, so the same capture pairs the same way.
func linkMid(legs []*midLeg) {
	type cand struct {
		x, y                  *midLeg
		score, masked, server int
		relay                 [2]time.Duration
		mean                  time.Duration
	}
	// Candidates share a print: a client frame's, or a server frame's for
	// a leg without client frames. Each print indexes a bounded number of
	// legs, so a mass close of thousands of sessions stays cheap.
	const perPrint = 64
	byPrint := map[uint64][]*midLeg{}
	index := func(l *midLeg, ps []reassembly.WSPrint) {
		for _, p := range ps {
			if ls := byPrint[p.Hash]; len(ls) < perPrint && (len(ls) == 0 || ls[len(ls)-1] != l) {
				byPrint[p.Hash] = append(ls, l)
			}
		}
	}
	for _, l := range legs {
		if !l.decided {
			index(l, l.end.WS.C2S.Prints)
			index(l, l.end.WS.S2C.Prints)
		}
	}
	var cs []cand
	seen := map[[2]*midLeg]bool{}
	for _, x := range legs {
		if x.decided {
			continue
		}
		for _, ps := range [][]reassembly.WSPrint{x.end.WS.C2S.Prints, x.end.WS.S2C.Prints} {
			for _, p := range ps {
				for _, y := range byPrint[p.Hash] {
					if y == x || seen[[2]*midLeg{x, y}] {
						continue
					}
					seen[[2]*midLeg{x, y}] = true
					if s, mk, sv, r, mean := relayScore(x.end, y.end); s > 0 {
						cs = append(cs, cand{x, y, s, mk, sv, r, mean})
					}
				}
			}
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].score != cs[j].score {
			return cs[i].score > cs[j].score
		}
		if cs[i].mean != cs[j].mean {
			return cs[i].mean < cs[j].mean
		}
		if cs[i].x.end.ID != cs[j].x.end.ID {
			return cs[i].x.end.ID < cs[j].x.end.ID
		}
		return cs[i].y.end.ID < cs[j].y.end.ID
	})
	for _, c := range cs {
		if c.x.up != nil || c.y.down != nil || reaches(c.y, c.x) || revisits(c.x, c.y.end.Server) {
			continue
		}
		c.x.up, c.y.down = c.y, c.x
		c.x.score, c.x.masked, c.x.server, c.x.relay = c.score, c.masked, c.server, c.relay
	}
}

// reaches reports whether following up links from a gets to b (a link
// from b to a would close a loop).
func reaches(a, b *midLeg) bool {
	for c := a; c != nil; c = c.up {
		if c == b {
			return true
		}
	}
	return false
}

// revisits reports whether x or a leg below it already goes to server: a
// chain of proxies never passes the same server twice.
func revisits(x *midLeg, server netip.AddrPort) bool {
	for c := x; c != nil; c = c.down {
		if c.end.Server == server {
			return true
		}
	}
	return false
}

// relayScore rates y as the upstream leg a proxy opened for x, from the
// frames both carried: each client frame of x that left on y (same print,
// up to midRelayMax later) and each server frame of y that left on x. A
// client frame's print holds its random masking key, so one match is
// strong; server frames are only counted when two or more match. 0: not
// a pair. relay is the quickest and slowest relay, mean their mean.
func relayScore(x, y *reassembly.ConnEnd) (score, masked, server int, relay [2]time.Duration, mean time.Duration) {
	if y.Server == x.Server || y.ID == x.ID {
		return 0, 0, 0, relay, 0
	}
	var sum time.Duration
	note := func(d time.Duration) {
		if relay[0] == 0 || d < relay[0] {
			relay[0] = d
		}
		relay[1] = max(relay[1], d)
		sum += d
	}
	masked = matchPrints(x.WS.C2S.Prints, y.WS.C2S.Prints, note)
	server = matchPrints(y.WS.S2C.Prints, x.WS.S2C.Prints, note)
	if masked+server > 0 {
		mean = sum / time.Duration(masked+server)
	}
	switch {
	case masked > 0:
		return 4*masked + server, masked, server, relay, mean
	case server >= 2 && (len(x.WS.C2S.Prints) == 0 || len(y.WS.C2S.Prints) == 0) &&
		(y.Client.Addr() == x.Server.Addr() || bothLoopback(x.Server.Addr(), y.Client.Addr())):
		// Server frames alone, when a leg has no client frame to compare
		// (where both have, their keys must match): concurrent sessions
		// often send alike, so the upstream leg must at least leave from
		// the proxy's address.
		return server, 0, server, relay, mean
	}
	return 0, 0, 0, relay, 0
}

// bothLoopback: on lo a proxy may use any 127/8 address for its legs.
func bothLoopback(a, b netip.Addr) bool { return a.IsLoopback() && b.IsLoopback() }

// matchPrints counts the prints of from that reappear in to, in order,
// each 0 to midRelayMax later.
func matchPrints(from, to []reassembly.WSPrint, note func(time.Duration)) int {
	n, k := 0, 0
	for _, p := range from {
		for j := k; j < len(to); j++ {
			q := to[j]
			d := q.At.Sub(p.At)
			if d > midRelayMax {
				break
			}
			if q.Hash == p.Hash && q.Len == p.Len && d >= 0 {
				n++
				note(d)
				k = j + 1
				break
			}
		}
	}
	return n
}

// midFacts are the legs of a session whose handshake came before the
// capture, paired by their frames; lone: one leg, while the capture
// shows other legs paired, so its partner is missing.
type midFacts struct {
	legs []*midLeg
	lone bool
}

// judgeMid judges a chain of legs, the client's first; nil when a lone
// leg is not evidence enough.
func (a *Analyzer) judgeMid(legs []*midLeg) *Verdict {
	A := legs[0].end
	if len(legs) == 1 && (A.WS.C2S.Frames == 0 || A.WS.S2C.Frames == 0) {
		// frames in one direction only, and no leg relaying them: too
		// little to tell WebSocket from another binary protocol
		return nil
	}
	at := a.observeMid(legs)
	at.runRules(onWire)
	if len(legs) > 1 {
		a.mid.paired = true
	}
	a.stats.NoHandshake++
	return at.midVerdict()
}

// observeMid makes an attempt of a chain of legs without a handshake:
// each leg stands as an exchange whose 101 came with its first packet.
func (a *Analyzer) observeMid(legs []*midLeg) *attempt {
	chain := make([]*exchange, len(legs))
	for i, l := range legs {
		e := l.end
		chain[i] = &exchange{end: e,
			req:  &reassembly.Request{Conn: e.Conn, Start: e.First, End: e.First},
			resp: &reassembly.Response{Conn: e.Conn, Status: 101, Start: e.First, End: e.First}}
	}
	at := newAttempt(chain, a, midSession)
	at.proxy.product = a.mid.products[legs[0].end.Server]
	at.proxy.evident = at.proxy.product != ""
	at.mid = &midFacts{legs: legs, lone: len(legs) == 1 && (a.hasUpstreamLegs || a.mid.paired)}
	at.observeLegs()
	return at
}

// midVerdict is the verdict of a session without its handshake: no path,
// no status, the legs keeping their frames' and ends' times (the report's
// ladder) and nothing of a request or response.
func (a *attempt) midVerdict() *Verdict {
	legs := a.mid.legs
	v := a.verdict()
	v.Path, v.StatusBackend, v.StatusClient = "", 0, 0
	v.PairConfidence = ConfNone
	if len(legs) > 1 {
		v.PairConfidence = midConfidence(legs[0])
	}
	for i := range v.Legs {
		l := &v.Legs[i]
		l.Proto, l.RequestLine, l.RequestHeaders, l.RequestCut = "", "", nil, false
		l.StatusLine, l.Status, l.ResponseHeaders, l.ResponseCut = "", 0, nil, false
		l.Times.Request, l.Times.Response = time.Time{}, time.Time{}
	}
	if v.Code == OK {
		_, v.Fix = adviceHandshakeNotCaptured(v, a, nil)
	}
	return v
}

// midSessionRule says the session began before the capture
// (handshake_not_captured), how its legs were paired, and that a lone
// leg's partner is missing (unpaired).
func midSessionRule(a *attempt, out []finding) []finding {
	legs := a.mid.legs
	A := legs[0].end
	leg, _ := a.legName(0)
	ev := []string{fmt.Sprintf("%s %s→%s: no handshake in the capture; its first packet at %s already carries WebSocket frames (%d masked from the client, %d from the server): the session began before the capture",
		leg, A.Client, A.Server, ts(A.First), A.WS.C2S.Frames, A.WS.S2C.Frames)}
	for i := 1; i < len(legs); i++ {
		l, up := legs[i-1], legs[i].end
		name, _ := a.legName(i)
		ev = append(ev, fmt.Sprintf("%s %s→%s relays the same frames: %d client frames with the same masking keys, %d server frames, %s–%s apart",
			name, up.Client, up.Server, l.masked, l.server, dur(l.relay[0]), dur(l.relay[1])))
	}
	out = append(out, explains(HandshakeNotCaptured, 0, ev...))
	if a.mid.lone {
		out = append(out, explains(Unpaired, 0, leg+": no other leg in the capture relays its frames"))
	}
	return out
}

// midConfidence: two client frames with the same masking keys are as good
// as a shared Sec-WebSocket-Key; one is strong; server frames alone (no
// key in them) are only sizes and timing.
func midConfidence(l *midLeg) Confidence {
	switch {
	case l.masked >= 2:
		return ConfHigh
	case l.masked == 1:
		return ConfMedium
	}
	return ConfLow
}

func adviceHandshakeNotCaptured(*Verdict, *attempt, *finding) (string, string) {
	return "", "nothing to fix in what the capture shows; the session began before the capture, so its handshake was not checked: start the capture before the clients connect to see it"
}
