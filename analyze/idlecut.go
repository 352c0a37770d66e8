package analyze

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
	silence, measured := cutSilence(ac, aa, bc, ba)
	cutEv := fmt.Sprintf("the proxy (%s, %s) closed both legs within %s, without close frames: its idle timeout cut the tunnel", ac.From.Addr(), bc.From.Addr(), dur((ac.Time.Sub(bc.Time)).Abs()))
	if measured == "" {
		cutEv += " (the silence before it is not in the capture, so this is inferred, not measured)"
	}
	v.Evidence = []string{
		"no handshake and no frame of these two connections in the capture, only their ends: the tunnel was open and silent from before the capture began",
		legEv("proxy→client", ac, aa),
		legEv("proxy→backend", bc, ba),
		cutEv,
	}
	if measured != "" {
		v.Evidence = append(v.Evidence, fmt.Sprintf("TCP timestamps: %s (a timestamp tick taken for 1 ms, as on Linux): the tunnel had been silent about %s when the proxy cut it", measured, dur(silence)))
	}
	if ev, agrees := a.cutConfig(v, ac.From, bc.To, silence, measured != ""); ev != "" {
		v.Evidence = append(v.Evidence, ev)
		if agrees {
			v.PairConfidence = ConfMedium
		}
	}
	v.Legs = []Leg{cutLeg(ac.To, ac.From, aa, ac), cutLeg(bc.From, bc.To, bc, ba)}
	v.Fix = configFix(v, "the proxy closes a tunnel that carried no frame for its idle timeout (nginx proxy_read_timeout, 60 s by default; haproxy timeout tunnel; --nginx-config names the configured value): send pings more often than that from the client or the server, or raise the timeout above the longest silence; start the capture before the clients connect to see the session")
	a.count(v)
	a.out(v)
}

// peerSilence is how long before its answer the peer of a cut leg had
// last sent to the proxy, by TCP timestamps: the proxy's cut echoes the
// TSval of the last segment it got from the peer, the peer's answer
// carries the peer's clock then. A tick is taken for a millisecond
// (Linux's); ok when both segments carry timestamps.
func peerSilence(cut, ans *reassembly.CloseOnly) (time.Duration, bool) {
	if ans == nil || !cut.TS || !ans.TS || cut.TSecr == 0 {
		return 0, false
	}
	d := int32(ans.TSval - cut.TSecr)
	if d < 0 {
		return 0, false
	}
	return time.Duration(d) * time.Millisecond, true
}

// cutSilence is how long the tunnel had been silent when the proxy cut
// it, from the peers' TCP timestamps: the more recent of the two peers'
// last segments (each leg's peer sends, or acknowledges, each frame the
// leg carries). measured says it ("the client had last sent to the proxy
// 4.96s before its FIN, the backend 5.00s"), "" when neither peer tells.
func cutSilence(ac, aa, bc, ba *reassembly.CloseOnly) (silence time.Duration, measured string) {
	var parts []string
	for _, l := range []struct {
		who      string
		cut, ans *reassembly.CloseOnly
	}{{"the client", ac, aa}, {"the backend", bc, ba}} {
		d, ok := peerSilence(l.cut, l.ans)
		if !ok {
			continue
		}
		if len(parts) == 0 || d < silence {
			silence = d
		}
		if len(parts) == 0 {
			parts = append(parts, l.who+" had last sent to the proxy "+dur(d)+" before its FIN")
		} else {
			parts = append(parts, l.who+" "+dur(d))
		}
	}
	return silence, strings.Join(parts, ", ")
}

// cutConfig is the evidence the proxy's configuration (--nginx-config)
// gives a tunnel cut on idle between proxy and backend: the read timeout
// of the locations that pass there, compared with the measured silence
// (agrees: they match). It sets v.Config when one timeout is in force.
func (a *Analyzer) cutConfig(v *Verdict, proxy, backend netip.AddrPort, silence time.Duration, measured bool) (ev string, agrees bool) {
	ul, ok := a.opt.Config.(UpstreamLocator)
	if !ok {
		return "", false
	}
	bs := ul.LocateUpstream(proxy, backend)
	if len(bs) == 0 {
		return fmt.Sprintf("config: no location passes what arrives at %s to %s", proxy, backend), false
	}
	b := bs[0]
	for _, o := range bs[1:] {
		if o.ReadTimeout != b.ReadTimeout {
			var ts []string
			for _, o := range bs {
				ts = append(ts, fmt.Sprintf("%s in %s", timeoutText(o), o.Where()))
			}
			return fmt.Sprintf("config: %d locations pass from %s to %s, with different read timeouts: %s", len(bs), proxy, backend, strings.Join(ts, "; ")), false
		}
	}
	v.Config = b
	where := b.Where()
	if len(bs) > 1 {
		where += fmt.Sprintf(", and %d more with the same timeout", len(bs)-1)
	}
	t := b.ReadTimeout
	switch {
	case t <= 0:
		return fmt.Sprintf("config: %s passes to %s; its read timeout is not known", where, backend), false
	case !measured:
		return fmt.Sprintf("config: %s in %s; without TCP timestamps on the closes the silence cannot be compared with it", timeoutText(b), where), false
	}
	tol := max(t/10, 250*time.Millisecond)
	switch {
	case silence < t-tol:
		return fmt.Sprintf("config: %s in %s, but the tunnel had been silent only %s: something else cut it, or this is not the configuration that ran", timeoutText(b), where, dur(silence)), false
	case silence > t+tol:
		return fmt.Sprintf("config: %s in %s, but the tunnel had been silent %s, longer: this is not the configuration that ran, or another timeout cut it", timeoutText(b), where, dur(silence)), false
	}
	return fmt.Sprintf("config: %s in %s: the measured silence, %s, is that timeout", timeoutText(b), where, dur(silence)), true
}

// timeoutText names a block's read timeout: "proxy_read_timeout 5s", or
// the default's value.
func timeoutText(b *ConfigBlock) string {
	if b.ReadTimeoutAt != "" {
		return b.ReadTimeoutAt
	}
	return "the default read timeout, " + dur(b.ReadTimeout)
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
