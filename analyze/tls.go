package analyze

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// TLS on a leg. With the keys, its HTTP arrives decrypted and the leg is
// judged like any other. Without them the leg is opaque: it is paired with
// the upstream request the proxy made for it (tlspair.go), and the verdict
// comes from that upstream leg. A TLS connection whose handshake failed is a verdict of its
// own.

// tlsLeg is a TLS connection seen from its first record.
type tlsLeg struct {
	conn      reassembly.Conn
	start     time.Time
	end       *reassembly.ConnEnd
	decrypted bool   // HTTP came out of it: an ordinary leg
	claimed   bool   // paired with an upstream leg
	why       string // how it was paired (evidence)
	// failed is its tls_handshake_failed verdict, held back while an
	// attempt's proxy may have opened it upstream (upstreamtls.go).
	failed *Verdict
	// recs: its application-data records so far, while it is open.
	recs *reassembly.TLSRecords
	// mem is what it was charged to the memory budget (tlsLegCost).
	mem int64
}

// before orders legs by start, then by connection: the pipeline numbers
// connections in the order they opened, whatever the number of workers,
// so the same capture gives the same order.
func (l *tlsLeg) before(m *tlsLeg) bool {
	return l.start.Before(m.start) || l.start.Equal(m.start) && l.conn.ID < m.conn.ID
}

// TLSStart implements reassembly.TLSSink.
func (a *Analyzer) TLSStart(e *reassembly.TLSStart) {
	if len(a.tlsLegs) >= 65536 {
		a.expireTLS(e.Time, true)
		if len(a.tlsLegs) >= 65536/2 {
			// Not a minute old, all of them (a flood of handshakes): the
			// oldest half goes, or every new leg would scan them all.
			a.dropOldestTLS(false)
		}
	}
	a.tlsLegs[e.ID] = &tlsLeg{conn: e.Conn, start: e.Time, mem: tlsLegCost}
	a.tlsMem += tlsLegCost
	if a.opt.Memory != nil {
		a.account()
		a.shed(e.Time)
	}
}

// shedTLS forgets the oldest half of the TLS legs when the budget is
// reached and they hold more than the connections.
func (a *Analyzer) shedTLS(now time.Time) {
	a.expireTLS(now, false)
	a.dropOldestTLS(true)
	a.account()
}

// dropOldestTLS forgets the oldest half of the TLS legs, reporting the
// handshake failures held back among them; counted as evictions for the
// memory budget when forMem.
func (a *Analyzer) dropOldestTLS(forMem bool) {
	ls := make([]*tlsLeg, 0, len(a.tlsLegs))
	for _, l := range a.tlsLegs {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].before(ls[j]) })
	for _, l := range ls[:len(ls)/2] {
		if l.failed != nil && !l.claimed {
			a.count(l.failed)
			a.out(l.failed)
		}
		a.dropTLS(l.conn.ID)
		if forMem {
			a.opt.Memory.Evicted(tlsLegCost)
			a.stats.MemEvicted++
		}
	}
}

// TLSRecords implements reassembly.TLSSink.
func (a *Analyzer) TLSRecords(e *reassembly.TLSRecords) {
	if l := a.tlsLegs[e.ID]; l != nil {
		l.recs = e
	}
}

// tlsEnded records the end of a TLS connection and judges a failed
// handshake.
func (a *Analyzer) tlsEnded(e *reassembly.ConnEnd) {
	l := a.tlsLegs[e.ID]
	if l == nil || e.TLSInfo == nil {
		return
	}
	l.end = e
	if in := e.TLSInfo; in.DecryptErr != "" {
		a.stats.TLSErrors++
		if len(a.stats.TLSErrorSamples) < 3 {
			a.stats.TLSErrorSamples = append(a.stats.TLSErrorSamples, fmt.Sprintf("TLS %s → %s: %s", e.Client, e.Server, in.DecryptErr))
		}
	}
	if l.decrypted || l.claimed || e.HTTP {
		a.dropTLS(e.ID)
		return
	}
	a.tlsMem += tlsEndCost
	l.mem += tlsEndCost
	if e.TLSInfo.HandshakeDone && !e.TLSInfo.Decrypting {
		a.passthroughEnded(l)
		if l.claimed {
			a.dropTLS(e.ID)
			return
		}
	}
	if v := tlsFailure(l); v != nil {
		// Held until Decide: with several workers the request of the
		// attempt whose proxy opened it may still be on its way.
		l.failed = v
		a.tlsMem += verdictCost
		l.mem += verdictCost
	}
}

// expireTLS forgets ended TLS legs that no upstream leg can claim any more
// (or, when forced, the oldest half).
func (a *Analyzer) expireTLS(now time.Time, force bool) {
	for id, l := range a.tlsLegs {
		if l.end != nil && now.Sub(l.end.Last) > time.Minute || force && l.start.Before(now.Add(-time.Minute)) {
			a.dropTLS(id)
		}
	}
}

// dropTLS forgets a TLS leg.
func (a *Analyzer) dropTLS(id reassembly.ConnID) {
	if l := a.tlsLegs[id]; l != nil {
		a.unseen(l)
		a.tlsMem -= l.mem
		delete(a.tlsLegs, id)
	}
}

// tlsVersion names a TLS version number.
func tlsVersion(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	case 0x0302:
		return "TLS 1.1"
	case 0x0301:
		return "TLS 1.0"
	case 0x0300:
		return "SSL 3.0"
	}
	return fmt.Sprintf("version 0x%04x", v)
}

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow", 40: "handshake_failure",
	42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
	46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
	51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension", 110: "unsupported_extension",
	112: "unrecognized_name", 116: "certificate_required", 120: "no_application_protocol",
}

func alertText(al reassembly.TLSAlert) string {
	if al.Opaque {
		return "an encrypted alert (its kind needs the keys: --keylog)"
	}
	name := alertNames[al.Description]
	if name == "" {
		name = fmt.Sprintf("alert %d", al.Description)
	}
	level := "warning"
	if al.Level == 2 {
		level = "fatal"
	}
	return fmt.Sprintf("alert %d %s (%s)", al.Description, name, level)
}

// helloEvidence describes a TLS connection's handshake.
func helloEvidence(leg string, in *reassembly.TLSInfo) []string {
	var ev []string
	if in.ClientHello {
		parts := []string{"ClientHello"}
		if in.SNI != "" {
			parts = append(parts, "SNI "+in.SNI)
		}
		var vs []string
		for _, v := range in.OfferedVersions {
			vs = append(vs, tlsVersion(v))
		}
		if len(vs) > 0 {
			parts = append(parts, "offers "+strings.Join(vs, ", "))
		}
		if len(in.ALPNOffered) > 0 {
			parts = append(parts, "ALPN "+strings.Join(in.ALPNOffered, ","))
		}
		parts = append(parts, fmt.Sprintf("%d cipher suites", in.CipherSuites))
		ev = append(ev, leg+": "+strings.Join(parts, ", "))
	}
	if in.ServerHello {
		s := fmt.Sprintf("ServerHello %s, cipher 0x%04x", tlsVersion(in.Version), in.Cipher)
		if in.ALPN != "" {
			s += ", ALPN " + in.ALPN
		}
		ev = append(ev, reverseLeg(leg)+": "+s)
	} else if in.ClientHello {
		ev = append(ev, reverseLeg(leg)+": no ServerHello")
	}
	return ev
}

func reverseLeg(leg string) string {
	a, b, ok := strings.Cut(leg, "→")
	if !ok {
		return leg
	}
	return b + "→" + a
}

// tlsFailure judges a TLS connection that carried no HTTP: a verdict when
// its handshake failed, nil when it completed (an encrypted connection
// that was never paired says nothing about WebSocket).
func tlsFailure(l *tlsLeg) *Verdict {
	e := l.end
	in := e.TLSInfo
	var fatal *reassembly.TLSAlert
	for i := range in.Alerts {
		al := &in.Alerts[i]
		if al.Level == 2 || al.Opaque && !in.HandshakeDone || al.Description != 0 && al.Level != 1 {
			fatal = al
			break
		}
	}
	if in.HandshakeDone && fatal == nil {
		return nil
	}
	if !in.ClientHello {
		return nil // not a TLS handshake we saw start
	}
	v := &Verdict{Time: l.start, Code: TLSHandshakeFailed, Severity: SevError, Hop: HopClient, Findings: []Code{TLSHandshakeFailed},
		Client: e.Client, Proxy: e.Server, PairConfidence: ConfNone}
	v.Evidence = helloEvidence("client→proxy", in)
	who := ""
	switch {
	case fatal != nil:
		who = "the proxy"
		leg := "proxy→client"
		if fatal.FromClient {
			who, leg = "the client", "client→proxy"
		}
		v.Evidence = append(v.Evidence, fmt.Sprintf("%s: %s at %s", leg, alertText(*fatal), ts(fatal.Time)))
	default:
		side, c := e.FirstClose()
		who = "the " + side.String()
		if side == reassembly.SideServer {
			who = "the proxy"
		}
		v.Evidence = append(v.Evidence, fmt.Sprintf("the handshake never completed: %s closed the connection (%s) at %s", who, c.Kind, ts(c.Time)))
		if sniRefused(v, l) {
			return v
		}
	}
	v.Fix = tlsFix(fatal, who)
	return v
}

func tlsFix(al *reassembly.TLSAlert, who string) string {
	if al == nil {
		return who + " gave up during the TLS handshake: check the proxy's ssl_protocols/ssl_ciphers against what the client offers, and the proxy's error log"
	}
	if al.Opaque {
		return who + " ended the handshake with an encrypted alert; TLS 1.3 encrypts alerts, so its kind needs the keys (--keylog). The commonest cause is a client that refuses the proxy's certificate"
	}
	switch alertNames[al.Description] {
	case "bad_certificate", "unknown_ca", "certificate_unknown", "unsupported_certificate":
		return "the client refuses the proxy's certificate (self-signed, an untrusted CA, a missing intermediate, or a wrong name): serve a certificate from a CA the clients trust, with the full chain (nginx: ssl_certificate with the intermediates); browsers refuse silently, so wss:// just fails"
	case "certificate_expired":
		return "the proxy's certificate has expired: renew it"
	case "protocol_version", "insufficient_security", "handshake_failure":
		return "client and proxy share no TLS version or cipher suite: widen the proxy's ssl_protocols / ssl_ciphers (or update the client)"
	case "unrecognized_name":
		return "the proxy has no certificate for the client's SNI name: add a server block (server_name) for it"
	case "no_application_protocol":
		return "client and proxy share no ALPN protocol: check the proxy's http2/ALPN settings"
	}
	return who + " aborted the TLS handshake: see the alert in the evidence and the proxy's error log"
}

// encryptedEvidence describes the opaque client leg of an attempt judged
// from its upstream leg.
func encryptedEvidence(l *tlsLeg) []string {
	leg := "client→proxy"
	ev := []string{fmt.Sprintf("%s: TLS from %s to %s, no keys: the verdict comes from the upstream leg (decrypt with --keylog FILE)", leg, l.conn.Client, l.conn.Server)}
	if l.end != nil && l.end.TLSInfo != nil {
		ev = append(ev, helloEvidence(leg, l.end.TLSInfo)...)
	}
	if l.why != "" {
		ev = append(ev, l.why)
	}
	return ev
}
