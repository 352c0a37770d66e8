package analyze

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// TLS passed through: a proxy routing by SNI without terminating TLS
// (haproxy mode tcp with req.ssl_sni, nginx stream with ssl_preread) puts
// no HTTP on either leg. Its two legs share the ClientHello, random and
// all: they pair exactly, and the verdict says the WebSocket handshake is
// end-to-end encrypted. A ClientHello the proxy closed at once, without a
// ServerHello or an alert, found no route for its name: the proxy refused.

// passthroughEnded pairs l, a TLS leg whose handshake completed without
// keys, with the leg of the same ClientHello, and reports the pair.
func (a *Analyzer) passthroughEnded(l *tlsLeg) {
	in := l.end.TLSInfo
	if !in.ClientHello || in.ClientRandom == ([32]byte{}) {
		return
	}
	other, ok := a.byRandom[in.ClientRandom]
	if !ok {
		if a.byRandom == nil {
			a.byRandom = make(map[[32]byte]*tlsLeg)
		}
		if len(a.byRandom) >= 65536 {
			clear(a.byRandom) // a flood of handshakes nobody relays: start again
		}
		a.byRandom[in.ClientRandom] = l
		return
	}
	delete(a.byRandom, in.ClientRandom)
	if other.conn.ID == l.conn.ID {
		return
	}
	c, u := other, l // the client's leg began first
	if l.start.Before(other.start) {
		c, u = l, other
	}
	c.claimed, u.claimed = true, true
	v := passthroughVerdict(c, u)
	a.count(v)
	a.out(v)
}

func passthroughVerdict(c, u *tlsLeg) *Verdict {
	ci, ui := c.end.TLSInfo, u.end.TLSInfo
	v := &Verdict{Time: c.start, End: u.end.Last, Code: EncryptedLeg, Severity: SevInfo, Hop: HopNone, Findings: []Code{EncryptedLeg},
		Client: c.conn.Client, Proxy: c.conn.Server, Backend: u.conn.Server, PairConfidence: ConfExact}
	v.Evidence = append(v.Evidence, helloEvidence("client→proxy", ci)...)
	v.Evidence = append(v.Evidence,
		fmt.Sprintf("proxy→backend %s→%s: the same ClientHello (random %s…), %s after the client's: the proxy passes TLS through without terminating it",
			u.conn.Client, u.conn.Server, hex.EncodeToString(ci.ClientRandom[:6]), dur(u.start.Sub(c.start))),
		fmt.Sprintf("the WebSocket handshake is end-to-end encrypted between %s and %s (%s): it cannot be judged without keys", c.conn.Client, u.conn.Server, tlsVersion(ui.Version)))
	if n := ci.Records; n[0]+n[1] > 0 {
		v.Evidence = append(v.Evidence, fmt.Sprintf("client→proxy: %d TLS records from the client, %d from the server; %s", n[0], n[1], closedHow(c.end)))
	}
	v.Fix = "nothing to fix in what the capture shows: run wsdiag where TLS ends (on the backend " + u.conn.Server.String() + "'s host), or give it the client's TLS key log (--keylog FILE, e.g. SSLKEYLOGFILE)"
	return v
}

// closedHow says which side of a connection closed first, and how.
func closedHow(e *reassembly.ConnEnd) string {
	side, c := e.FirstClose()
	if side == reassembly.SideNone {
		return "still open when the capture ended"
	}
	return fmt.Sprintf("the %s closed first (%s) at %s", side, c.Kind, ts(c.Time))
}

// sniRefused turns an abandoned handshake into the proxy's refusal when
// the proxy closed right after the ClientHello, with neither a ServerHello
// nor an alert: an SNI router with no route (and no default) for the name.
func sniRefused(v *Verdict, l *tlsLeg) bool {
	e, in := l.end, l.end.TLSInfo
	side, c := e.FirstClose()
	if side != reassembly.SideServer || in.ServerHello || len(in.Alerts) > 0 || c.Time.Sub(l.start) > time.Second || e.BytesS2C > 0 {
		return false
	}
	name := in.SNI
	if name == "" {
		name = "(no SNI)"
	}
	v.Code, v.Hop, v.Findings = ProxyRejected, HopProxy, []Code{ProxyRejected}
	v.Evidence = append(v.Evidence[:len(v.Evidence)-1],
		fmt.Sprintf("proxy→client: the proxy closed the connection (%s) %s after the ClientHello, with neither a ServerHello nor an alert: it routes TLS by name (SNI) and has no route for %s", c.Kind, dur(c.Time.Sub(l.start)), name))
	v.Fix = "the proxy passes TLS through by SNI and no route matches " + name + ": add one (haproxy: use_backend … if { req.ssl_sni -i " + name + " }, or a default_backend; nginx stream: an entry for " + name + " in the map of $ssl_preread_server_name, or a default), or have the client connect with a name the proxy routes"
	return true
}
