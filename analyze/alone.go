package analyze

import (
	"fmt"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The client's leg alone: no upstream leg of the attempt is in the
// capture. The proxy answered itself, could not connect, refused it at
// the door, or the upstream leg went where the capture does not see; the
// client's leg, the proxy's connects and its other requests tell which.

// aloneFacts are what tells who answered a client's leg alone.
type aloneFacts struct {
	// offWire: no upstream leg of this proxy is in the capture at all (a
	// unix-socket backend, an interface not captured); upstreamSeen: the
	// capture shows upstream legs of some attempt.
	offWire, upstreamSeen bool
	// tooLarge: the answer says the request's header block was too large.
	tooLarge bool
	// relayed: the answer is the refusal of a correct handshake by a
	// backend's WebSocket library (refusedBy), relayed by a proxy.
	relayed bool
	// caddyEmpty: Caddy's empty 200 (no site or route matched).
	caddyEmpty bool
	// What the proxy's requests that did go upstream show: the same path
	// with another Host (otherHost), or the same Host with another path
	// (otherPath).
	otherHost, otherPath string
}

// connectFacts are the proxy's attempts to reach its backend that the
// capture shows beside a client's leg alone.
type connectFacts struct {
	// failed: connects that carried no data, while the proxy prepared its
	// own 5xx; tls, its TLS handshakes to the backend that failed then.
	failed []*reassembly.ConnEnd
	tls    []upstreamTLS
	// What the failed handshakes showed: a ClientHello without SNI, the
	// proxy refusing the backend's certificate.
	noSNI, certRefused bool
	// open: the encrypted upstream leg of an attempt that upgraded
	// (proxy_pass https:// without keys).
	open *tlsLeg
}

func (a *attempt) observeConnect() connectFacts {
	A := a.chain[0]
	var c connectFacts
	switch {
	case A.resp != nil && A.resp.Status >= 500:
		c.failed = a.an.failedConnects(A.req.Start, A.resp.End)
		c.tls, c.noSNI, c.certRefused = upstreamTLSOf(a.an.claimUpstreamTLS(A))
	case A.switched():
		c.open = a.an.openUpstreamTLS(A)
	}
	return c
}

func (a *attempt) observeAlone() aloneFacts {
	A := a.chain[0]
	f := aloneFacts{offWire: !a.proxy.proxied, upstreamSeen: a.an.hasUpstreamLegs}
	if r := A.resp; r != nil {
		f.tooLarge = tooLargePage(r)
		f.caddyEmpty = caddyEmpty(r)
		if !f.tooLarge && !A.req.Truncated && !r.Truncated && correctUpgrade(A.req) {
			_, f.relayed = refusedBy(r)
		}
		host, _ := A.req.Headers.Get("Host")
		f.otherHost, f.otherPath = a.an.otherRoute(A.req.Server, host, pathOf(A.req.Target))
	}
	return f
}

// aloneRule judges a client's leg that has no upstream leg in the
// capture. An extended CONNECT the proxy refused at the HTTP/2 layer was
// due none: then the missing leg is no finding.
func aloneRule(a *attempt, out []finding) []finding {
	if len(a.chain) != 1 {
		return out
	}
	n := len(out)
	out = a.whoAnswered(out)
	if !a.client.h2.refused() {
		return out
	}
	k := n
	for _, f := range out[n:] {
		if f.code != Unpaired {
			out[k] = f
			k++
		}
	}
	return out[:k]
}

// whoAnswered: the first case that holds says who answered the client.
func (a *attempt) whoAnswered(out []finding) []finding {
	A := a.chain[0]
	leg, rleg := a.legName(0)
	if A.resp == nil {
		return a.noResponse(out, leg, rleg)
	}
	if a.alone.tooLarge {
		return a.proxyTooLarge(out)
	}
	st := A.resp.Status
	sl := rleg + ": " + statusLine(A.resp)
	switch {
	case A.switched():
		return a.upgradedAlone(out, leg, sl)
	case len(a.connect.tls) > 0:
		return a.upstreamTLSRule(out, sl)
	case a.alone.relayed:
		return a.relayedRefusal(out)
	case len(a.connect.failed) > 0 && (st == 502 || st == 504 || st == 503):
		ev := []string{sl + a.generatedNote()}
		for _, c := range a.connect.failed {
			ev = append(ev, connectEvidence(c))
		}
		return append(out, found(UpstreamConnectFailed, 0, ev...))
	case st >= 300 && st < 400:
		ev := []string{sl}
		if loc, ok := A.resp.Headers.Get("Location"); ok {
			ev = append(ev, rleg+": Location: "+loc)
		}
		return append(out, found(Redirected, 0, ev...))
	case a.alone.caddyEmpty && !a.proxy.proxied:
		// No upstream leg of this Caddy anywhere in the capture, but an
		// empty 200 from Caddy to an upgrade is its own answer.
		return append(out, found(ProxyRejected, 0, append([]string{sl + " (Caddy's own empty answer: no site or route matched the request)",
			"proxy→backend: no request for this attempt"}, a.selfAnswerEvidence()...)...))
	case a.alone.offWire && strings.HasPrefix(a.proxy.generatedBy, "nginx") && st == 502 && A.resp.Start.Sub(A.req.End) < 50*time.Millisecond:
		// nginx's own 502 at once, and none of its upstream legs on the
		// wire: it could not connect (a unix socket that is missing,
		// refused or not writable is the common case).
		return append(out, found(UpstreamConnectFailed, 0, sl+a.generatedNote(),
			fmt.Sprintf("%s: the 502 came %s after the request: nginx did not wait for an upstream answer", rleg, dur(A.resp.Start.Sub(A.req.End))),
			"proxy→backend: not on the wire"+a.offWireNote()+"; judged from the client leg (medium confidence: an upstream that accepted and closed at once looks the same)"))
	}
	if st == 500 || st == 503 {
		if open, full := a.tunnelsOpen(); full {
			return append(out, a.atCapacity(open, statusLine(A.resp)+a.generatedNote()))
		}
	}
	return a.proxyOrUnseen(out, leg, sl)
}

// upgradedAlone: a 101 with no upstream leg in the capture: its Accept is
// checked, and the upstream leg is opaque TLS or missing.
func (a *attempt) upgradedAlone(out []finding, leg, sl string) []finding {
	out = a.acceptRule(out, 0)
	if l := a.connect.open; l != nil {
		return append(out, explains(EncryptedLeg, 0, fmt.Sprintf("proxy→backend: TLS from %s to %s (proxy_pass https://), no keys: the upstream leg cannot be read; judged from the client leg", l.conn.Client, l.conn.Server)))
	}
	if a.alone.upstreamSeen || a.proxyEvident() {
		out = append(out, found(Unpaired, 0, sl, leg+": no matching request on an upstream leg in the capture"+a.offWireNote()))
	}
	return out
}

// proxyOrUnseen: a proxy's own answer (its error page, a 5xx, or a proxy
// whose other requests went upstream), or one whose cause hides on the
// missing leg.
func (a *attempt) proxyOrUnseen(out []finding, leg, sl string) []finding {
	A := a.chain[0]
	st := A.resp.Status
	switch {
	case a.proxy.generatedBy != "" || st >= 500:
		ev := []string{sl + a.generatedNote(), "proxy→backend: no request for this attempt (no upstream leg, no connect attempt)"}
		if a.proxy.proxied {
			ev[1] = fmt.Sprintf("proxy→backend: no request for this attempt (no connect attempt), while other requests through %s show theirs", A.req.Server)
		}
		return append(out, found(ProxyRejected, 0, append(ev, a.selfAnswerEvidence()...)...))
	case a.proxy.proxied:
		// Other attempts through this proxy show their upstream legs in the
		// capture, this one has none: the proxy answered itself (with a
		// page of its own configuration, so no built-in signature).
		ev := []string{sl, fmt.Sprintf("proxy→backend: no request for this attempt, while other requests through %s show theirs", A.req.Server)}
		return append(out, found(ProxyRejected, 0, append(ev, a.selfAnswerEvidence()...)...))
	}
	// An answer that is not a proxy's own page, with no upstream leg to
	// compare: the cause hides on the missing leg.
	out = append(out, found(Unpaired, 0, sl, leg+": no matching request on an upstream leg in the capture"+a.offWireNote()))
	if st >= 200 && st < 300 {
		out = append(out, found(BackendNotWebSocket, 0, sl))
	}
	return out
}

func (a *attempt) generatedNote() string {
	if g := a.proxy.generatedBy; g != "" {
		return " (the " + g + " error page: generated by the proxy)"
	}
	return ""
}

// noResponse: the client's leg got no response.
func (a *attempt) noResponse(out []finding, leg, rleg string) []finding {
	A := a.chain[0]
	e := A.end
	if e != nil && e.Reason == reassembly.EndCapture {
		return out // the capture ended first: cutRule says what it cannot tell
	}
	if e == nil {
		return append(out, found(Unpaired, 0, leg+": request at "+ts(A.req.Start)+", no response before the capture ended"))
	}
	side, c := e.FirstClose()
	who := "the client"
	if side == reassembly.SideServer {
		who = "the proxy"
	}
	// The proxy closing at once, or the client giving up on a proxy
	// that neither answered nor forwarded.
	if side == reassembly.SideServer || c.Time.Sub(A.req.Start) >= time.Second {
		what := fmt.Sprintf("no response; %s closed the connection (%s) %s after the request", who, c.Kind, dur(c.Time.Sub(A.req.Start)))
		if side == reassembly.SideServer {
			what += fmt.Sprintf(", %s after accepting it", dur(c.Time.Sub(e.First)))
		}
		if open, full := a.tunnelsOpen(); full {
			return append(out, a.atCapacity(open, what))
		}
	}
	return append(out, found(ProxyRejected, 0, fmt.Sprintf("%s: no response; %s closed the connection (%s) %s after the request", rleg, who, c.Kind, dur(c.Time.Sub(A.req.Start)))))
}

func connectEvidence(c *reassembly.ConnEnd) string {
	switch {
	case c.ServerClose.Kind == reassembly.CloseRST && !c.SYNACK:
		return fmt.Sprintf("proxy→backend %s: SYN answered by RST (connection refused: nothing listens there)", c.Server)
	case !c.SYNACK:
		return fmt.Sprintf("proxy→backend %s: SYN never answered (%s until the proxy gave up)", c.Server, dur(c.Last.Sub(c.First)))
	}
	side, cl := c.FirstClose()
	return fmt.Sprintf("proxy→backend %s: connected, then %s sent %s before any request", c.Server, side, cl.Kind)
}
