package analyze

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// A capture started while tunnels sat idle holds nothing of them but
// their end: when the proxy's read timeout fires, it closes both legs of
// each tunnel within a millisecond (nginx: FIN upstream, then FIN to the
// client; haproxy: FIN to the client, RST upstream), and the peers answer.
// No SYN, no byte: reassembly reports each bare FIN or RST (CloseOnly).
// Two such cuts from one host within a millisecond, one on a connection it
// serves and one on a connection it opened, are a tunnel cut on idle: the
// commonest way a user catches "it drops after 60 s".

// closeOnlyMax bounds the cuts waiting to be judged.
const closeOnlyMax = 4096

// idleCutWindow is how close in time a proxy closes a tunnel's two legs.
const idleCutWindow = time.Millisecond

// CloseOnly implements reassembly.CloseSink.
func (a *Analyzer) CloseOnly(e *reassembly.CloseOnly) {
	for _, c := range a.closeOnly {
		if c.From == e.From && c.To == e.To && c.Kind == e.Kind && (e.Time.Sub(c.Time)).Abs() < idleCutWindow {
			return // the same packet seen on a second interface
		}
	}
	if len(a.closeOnly) >= closeOnlyMax {
		a.judgeIdleCuts(time.Time{}, true)
		if len(a.closeOnly) >= closeOnlyMax {
			a.closeOnly = a.closeOnly[:0]
		}
	}
	a.closeOnly = append(a.closeOnly, e)
}

// judgeIdleCuts reports the tunnels cut on idle among the closes older
// than now less the grace (all of them when final), and forgets those.
func (a *Analyzer) judgeIdleCuts(now time.Time, final bool) {
	if len(a.closeOnly) == 0 {
		return
	}
	cut := now.Add(-2 * a.opt.Grace)
	var ripe, keep []*reassembly.CloseOnly
	for _, c := range a.closeOnly {
		if final || c.Time.Before(cut) {
			ripe = append(ripe, c)
		} else {
			keep = append(keep, c)
		}
	}
	a.closeOnly = keep
	if len(ripe) == 0 {
		return
	}
	slices.SortStableFunc(ripe, func(x, y *reassembly.CloseOnly) int { return x.Time.Compare(y.Time) })
	// the first close of each connection is its cut; the second the peer's answer
	type leg struct {
		cut, answer *reassembly.CloseOnly
	}
	var legs []*leg
	byConn := map[[2]netip.AddrPort]*leg{}
	for _, c := range ripe {
		k := [2]netip.AddrPort{c.From, c.To}
		if c.To.Addr().Less(c.From.Addr()) || c.To.Addr() == c.From.Addr() && c.To.Port() < c.From.Port() {
			k = [2]netip.AddrPort{c.To, c.From}
		}
		if l := byConn[k]; l != nil {
			if l.answer == nil && l.cut.From != c.From {
				l.answer = c
			}
			continue
		}
		l := &leg{cut: c}
		byConn[k] = l
		legs = append(legs, l)
	}
	// serves: the cut came from the connection's listening end (its port
	// the lower), i.e. from the proxy to its client
	serves := func(l *leg) bool { return l.cut.From.Port() < l.cut.To.Port() }
	for i := 0; i < len(legs); i++ {
		l := legs[i]
		if i+1 < len(legs) {
			m := legs[i+1]
			if serves(l) != serves(m) && m.cut.Time.Sub(l.cut.Time) <= idleCutWindow {
				A, B := l, m
				if !serves(l) {
					A, B = m, l
				}
				a.idleCutVerdict(A.cut, A.answer, B.cut, B.answer)
				i++
			}
		}
	}
}

// idleCutVerdict reports one tunnel cut on idle: the proxy's cut of its
// client leg (A) and of its upstream leg (B), with the peers' answers.
func (a *Analyzer) idleCutVerdict(ac, aa, bc, ba *reassembly.CloseOnly) {
	first := ac.Time
	if bc.Time.Before(first) {
		first = bc.Time
	}
	v := &Verdict{Time: first, End: first, Code: IdleTimeout, Severity: SevWarn, Hop: HopSession,
		Findings: []Code{IdleTimeout, HandshakeNotCaptured}, Client: ac.To, Proxy: ac.From, Backend: bc.To, PairConfidence: ConfLow}
	legEv := func(name string, c, ans *reassembly.CloseOnly) string {
		s := fmt.Sprintf("%s %s→%s: the proxy closed it (%s) at %s", name, c.From, c.To, c.Kind, ts(c.Time))
		if ans != nil {
			s += fmt.Sprintf("; the %s answered (%s) %s later", map[bool]string{true: "client", false: "backend"}[name == "proxy→client"], ans.Kind, dur(ans.Time.Sub(c.Time)))
		}
		return s
	}
	v.Evidence = []string{
		"no handshake and no frame of these two connections in the capture, only their ends: the tunnel was open and silent from before the capture began",
		legEv("proxy→client", ac, aa),
		legEv("proxy→backend", bc, ba),
		fmt.Sprintf("the proxy (%s, %s) closed both legs within %s, without close frames: its idle timeout cut the tunnel (the silence before it is not in the capture, so this is inferred, not measured)", ac.From.Addr(), bc.From.Addr(), dur((ac.Time.Sub(bc.Time)).Abs())),
	}
	v.Legs = []Leg{cutLeg(ac.To, ac.From, aa, ac), cutLeg(bc.From, bc.To, bc, ba)}
	v.Fix = "the proxy closes a tunnel that carried no frame for its idle timeout (nginx proxy_read_timeout, 60 s by default; haproxy timeout tunnel; with --nginx-config the configured value is named in other verdicts): send pings more often than that from the client or the server, or raise the timeout above the longest silence; start the capture before the clients connect to see the session"
	a.count(v)
	a.out(v)
}

// cutLeg is a leg the capture holds only the end of: its client and
// server, and who closed when (the client's and the server's close, either
// may be nil).
func cutLeg(client, server netip.AddrPort, byClient, byServer *reassembly.CloseOnly) Leg {
	l := Leg{Client: client, Server: server}
	t := &l.Times
	for _, c := range []*reassembly.CloseOnly{byClient, byServer} {
		if c == nil {
			continue
		}
		if t.Open.IsZero() || c.Time.Before(t.Open) {
			t.Open = c.Time
		}
		if c.Time.After(t.Last) {
			t.Last = c.Time
		}
	}
	if byClient != nil {
		t.ClientEnd, t.ClientEndKind = byClient.Time, byClient.Kind.String()
	}
	if byServer != nil {
		t.ServerEnd, t.ServerEndKind = byServer.Time, byServer.Kind.String()
	}
	return l
}
