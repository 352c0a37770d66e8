package analyze

import (
	"fmt"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The proxy's upstream leg can be TLS (proxy_pass https://). When that
// handshake fails the proxy answers 502 itself, and the failed TLS
// connection from the proxy host is the evidence. It must not be reported
// on its own as a client's tls_handshake_failed: tlsEnded holds such a
// failure back while an undecided attempt through that host may claim it.

// mayBeProxyTLS reports whether an undecided attempt's proxy could have
// opened TLS leg l: the attempt's request came to l's client host before
// l started, and was not answered before l started.
func (a *Analyzer) mayBeProxyTLS(l *tlsLeg) bool {
	host := l.conn.Client.Addr()
	for i, k := a.firstFrom(l.start)-1, 0; i >= 0 && k < maxScan; i, k = i-1, k+1 {
		x := a.xs[i]
		if x.decided || x.req.Server.Addr() != host || x.req.ID == l.conn.ID {
			continue
		}
		if x.resp == nil || !x.resp.Start.Before(l.start) {
			return true
		}
	}
	// Attempts already paired, waiting for their opaque client leg.
	for _, w := range a.encWait {
		x := w.chain[0]
		if len(w.chain) == 1 && x.req.Server.Addr() == host && !x.req.Start.After(l.start) &&
			(x.resp == nil || !x.resp.Start.Before(l.start)) {
			return true
		}
	}
	return false
}

// claimUpstreamTLS takes the failed TLS legs that A's proxy opened while A
// waited for its answer (oldest first).
func (a *Analyzer) claimUpstreamTLS(A *exchange) []*tlsLeg {
	if A.resp == nil {
		return nil
	}
	var out []*tlsLeg
	for _, l := range a.tlsLegs {
		if l.claimed || l.decrypted || l.end == nil || l.end.HTTP || l.end.TLSInfo == nil ||
			l.start.Before(A.req.Start) || l.start.After(A.resp.Start) || l.end.Last.After(A.resp.End.Add(time.Second)) ||
			l.conn.Client.Addr() != A.req.Server.Addr() || l.conn.ID == A.req.ID {
			continue
		}
		// A handshake that failed, or one the proxy ended at once: a
		// connection that carried requests lasts past the answer.
		out = append(out, l)
	}
	for i := 1; i < len(out); i++ { // few: insertion sort by start
		for k := i; k > 0 && out[k].start.Before(out[k-1].start); k-- {
			out[k], out[k-1] = out[k-1], out[k]
		}
	}
	for _, l := range out {
		l.claimed = true
	}
	return out
}

// flushTLS reports held-back handshake failures that no attempt can claim
// any more: a grace after the connection ended (events of other workers
// arrive late), and no undecided attempt through its host (all of them
// when final).
func (a *Analyzer) flushTLS(now time.Time, final bool) {
	for id, l := range a.tlsLegs {
		if l.failed == nil || l.claimed {
			continue
		}
		if !final && (now.Sub(l.end.Last) < a.opt.Grace || a.mayBeProxyTLS(l)) {
			continue
		}
		a.dropTLS(id)
		a.count(l.failed)
		a.out(l.failed)
	}
}

// upstreamTLS is a TLS connection the proxy opened to its backend that
// carried no request, behind an answer of its own: the backend answered
// its ClientHello with bytes that are not TLS (plain), or one side sent a
// fatal alert (alert), or closed.
type upstreamTLS struct {
	l     *tlsLeg
	plain string
	alert *reassembly.TLSAlert
}

// upstreamTLSOf takes what the failed handshakes showed: a ClientHello
// without SNI, the proxy refusing the backend's certificate (the last
// handshake that tells decides).
func upstreamTLSOf(ls []*tlsLeg) (out []upstreamTLS, noSNI, certRefused bool) {
	for _, l := range ls {
		in := l.end.TLSInfo
		u := upstreamTLS{l: l}
		if in.SNI == "" && in.ClientHello {
			noSNI = true
		}
		if m := in.Malformed; strings.HasPrefix(m, "server") {
			u.plain = m
			out = append(out, u)
			continue
		}
		u.alert = fatalAlert(in)
		switch {
		case u.alert != nil && u.alert.FromClient:
			certRefused = true
		case u.alert == nil:
			if side, _ := l.end.FirstClose(); side != reassembly.SideServer {
				certRefused = in.ServerHello
			}
		}
		out = append(out, u)
	}
	return out, noSNI, certRefused
}

// upstreamTLSRule judges a proxy answer (5xx) given while its TLS
// handshake to the backend failed (upstream_tls_failed), or while the
// backend answered it in plain HTTP (upstream_scheme_mismatch).
func (a *attempt) upstreamTLSRule(out []finding, sl string) []finding {
	ev := []string{sl + a.generatedNote()}
	code := UpstreamTLSFailed
	for _, u := range a.connect.tls {
		in := u.l.end.TLSInfo
		ev = append(ev, helloEvidence("proxy→backend", in)...)
		if in.SNI == "" && in.ClientHello {
			ev = append(ev, "proxy→backend: the ClientHello names no server (no SNI)")
		}
		switch al := u.alert; {
		case u.plain != "":
			code = UpstreamSchemeMismatch
			ev = append(ev, "backend→proxy: answered the ClientHello with bytes that are not TLS ("+u.plain+"): the backend port speaks plain HTTP")
		case al != nil && !al.FromClient:
			ev = append(ev, fmt.Sprintf("backend→proxy: %s at %s: the backend refused the proxy's handshake", alertText(*al), ts(al.Time)))
		case al != nil:
			ev = append(ev, fmt.Sprintf("proxy→backend: %s at %s: the proxy refused the backend's certificate", alertText(*al), ts(al.Time)))
		default:
			side, c := u.l.end.FirstClose()
			who := "the proxy"
			if side == reassembly.SideServer {
				who = "the backend"
			}
			ev = append(ev, fmt.Sprintf("%s closed the TLS connection (%s) at %s without a request passing", who, c.Kind, ts(c.Time)))
		}
	}
	return append(out, found(code, 0, ev...))
}

func fatalAlert(in *reassembly.TLSInfo) *reassembly.TLSAlert {
	for i := range in.Alerts {
		al := &in.Alerts[i]
		if al.Level == 2 || al.Opaque && !in.HandshakeDone || al.Description != 0 && al.Level != 1 {
			return al
		}
	}
	return nil
}

// schemeMismatchBody recognises servers' answers to plain HTTP on a TLS
// port (Go, nginx, Apache).
func schemeMismatchBody(body string) bool {
	b := strings.ToLower(body)
	return strings.Contains(b, "http request to an https server") ||
		strings.Contains(b, "plain http request was sent to https port") ||
		strings.Contains(b, "speaking plain http to an ssl-enabled server")
}

func adviceUpstreamTLSFailed(v *Verdict, a *attempt, _ *finding) (string, string) {
	if a.connect.certRefused {
		return "upstream SSL certificate verify error", proxyName(v) + " refused the backend's certificate: with proxy_ssl_verify on, point proxy_ssl_trusted_certificate at the CA that signed it and set proxy_ssl_name to a name the certificate holds (or fix the backend's certificate chain)"
	}
	if a.connect.noSNI {
		return "SSL_do_handshake() failed … while SSL handshaking to upstream", proxyName(v) + " sent no SNI, and the backend refuses a handshake without one: add `proxy_ssl_server_name on;` and `proxy_ssl_name <the backend's host name>;` to the location (nginx sends no SNI upstream by default)"
	}
	return "SSL_do_handshake() failed … while SSL handshaking to upstream", "the backend refused the proxy's TLS handshake: compare proxy_ssl_protocols/proxy_ssl_ciphers and the client certificate it may require with the backend's TLS settings"
}

func adviceUpstreamSchemeMismatch(v *Verdict, a *attempt, _ *finding) (string, string) {
	if a.backend.plainToTLS {
		return "", "the proxy speaks plain HTTP to a backend port that expects TLS: use proxy_pass https://… (with proxy_ssl_server_name on), or point it at the backend's plain port"
	}
	return "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream", "the proxy speaks TLS to a backend port that speaks plain HTTP: use proxy_pass http://…, or point it at the backend's TLS port"
}

// openUpstreamTLS finds the encrypted connection that A's proxy opened to
// its backend while A waited (proxy_pass https:// without keys), and
// claims it so that it is not taken for a client leg.
func (a *Analyzer) openUpstreamTLS(A *exchange) *tlsLeg {
	if A.resp == nil {
		return nil
	}
	var best *tlsLeg
	for _, l := range a.tlsLegs {
		if l.claimed || l.decrypted || l.start.Before(A.req.Start) || l.start.After(A.resp.Start) ||
			l.conn.Client.Addr() != A.req.Server.Addr() || l.conn.ID == A.req.ID {
			continue
		}
		if best == nil || l.start.Before(best.start) {
			best = l
		}
	}
	if best != nil {
		best.claimed = true
	}
	return best
}
