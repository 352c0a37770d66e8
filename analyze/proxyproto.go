package analyze

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The PROXY protocol set up on one end only. A balancer that sends the
// header to a listener that does not expect it: nginx reads "PROXY TCP4 …"
// as a request line and answers 400 itself, at once, before the request
// that follows. A listener that expects it and gets a request line: nginx
// logs "broken header" and closes without a byte (haproxy's accept-proxy
// does the same).

// proxyProtocolRule: the proxy's client leg, alone (no upstream leg),
// shows one of the two.
func proxyProtocolRule(a *attempt, out []finding) []finding {
	if len(a.chain) != 1 {
		return out
	}
	x := a.chain[0]
	leg, rleg := a.legName(0)
	if n := x.req.Node; n != nil && n.Proxy != nil {
		st, reason, at := 0, "", time.Time{}
		switch {
		case n.ProxyAnswer != nil:
			st, reason, at = n.ProxyAnswer.Status, n.ProxyAnswer.Reason, n.ProxyAnswer.At
		case x.resp != nil:
			st, reason, at = x.resp.Status, x.resp.Reason, x.resp.Start
		}
		if st != 400 || at.Sub(n.ProxyAt) > 50*time.Millisecond {
			return out
		}
		when := dur(at.Sub(n.ProxyAt)) + " after the header"
		if at.Before(x.req.Start) {
			when += ", before the request had come"
		}
		return append(out, found(ProxyProtocolMismatch, 0,
			leg+": the connection began with a "+n.String(),
			rleg+": "+strconv.Itoa(st)+" "+reason+" at "+ts(at)+", "+when,
			"the proxy read the PROXY header as a request line: its listener does not expect the PROXY protocol"))
	}
	if x.resp != nil || x.end == nil || x.end.BytesS2C > 0 || x.req.Node != nil && x.req.Node.ProxyBroken != "" {
		return out
	}
	side, c := x.end.FirstClose()
	began := x.end.Began(side)
	if side != reassembly.SideServer || began.Before(x.req.End) || began.Sub(x.req.End) > time.Second {
		return out
	}
	ls := a.an.listeners[x.req.Server]
	if _, peak := a.an.cross.openAt(x.req.Server, x.req.Start); peak > 0 || ls == nil || ls.answered || ls.silent < 2 {
		// One such close proves nothing (nginx's return 444, a crash);
		// a listener that carried tunnels or answered reads requests.
		return out
	}
	return append(out, found(ProxyProtocolMismatch, 0,
		leg+": the proxy closed the connection ("+c.Kind.String()+") "+dur(began.Sub(x.req.End))+" after the request, without sending a byte",
		fmt.Sprintf("%s closed all %d connections of the capture so, and answered none: a listener that expects a PROXY protocol header does that when the first bytes are a request line instead (nginx logs \"broken header\", haproxy's accept-proxy drops the connection); so does an nginx server whose only directive is return 444", x.req.Server, ls.silent)))
}

// listenerState is what a server did with the requests it got.
type listenerState struct {
	silent   int  // connections it closed without a byte after a request
	answered bool // it sent an HTTP answer on some connection
}

// maxListeners bounds the servers remembered.
const maxListeners = 4096

func (a *Analyzer) listener(s netip.AddrPort) *listenerState {
	ls := a.listeners[s]
	if ls == nil && len(a.listeners) < maxListeners {
		if a.listeners == nil {
			a.listeners = make(map[netip.AddrPort]*listenerState)
		}
		ls = &listenerState{}
		a.listeners[s] = ls
	}
	return ls
}

func (a *Analyzer) listenerAnswered(s netip.AddrPort) {
	if ls := a.listener(s); ls != nil {
		ls.answered = true
	}
}

// listenerEnded counts a connection that carried a request and that the
// server closed first without sending a byte.
func (a *Analyzer) listenerEnded(e *reassembly.ConnEnd) {
	if !e.HTTP || e.Requests == 0 || e.BytesS2C > 0 {
		return
	}
	if side, _ := e.FirstClose(); side != reassembly.SideServer {
		return
	}
	if ls := a.listener(e.Server); ls != nil {
		ls.silent++
	}
}

func adviceProxyProtocolMismatch(v *Verdict, a *attempt, p *finding) (string, string) {
	peer := "the peer in front (" + a.chain[0].req.Client.Addr().String() + ")"
	if p != nil && len(p.evidence) > 0 && len(p.evidence) == 3 {
		return "", peer + " sends a PROXY protocol header that " + proxyName(v) + " does not expect: accept it on the listener " +
			"(nginx: listen … proxy_protocol; with set_real_ip_from " + a.chain[0].req.Client.Addr().String() + "; real_ip_header proxy_protocol; " +
			"haproxy: bind … accept-proxy), or stop sending it (haproxy send-proxy / send-proxy-v2, nginx stream proxy_protocol on, the load balancer's proxy protocol setting)"
	}
	el := ""
	if nginx, _ := isNginx(v); nginx || a.proxy.generatedBy == "nginx" {
		el = "broken header: \"GET /… HTTP/1.1\" while reading PROXY protocol"
	}
	return el, proxyName(v) + " expects a PROXY protocol header (nginx listen … proxy_protocol, haproxy bind … accept-proxy) that " + peer +
		" does not send: make it send one (haproxy server … send-proxy or send-proxy-v2, nginx stream proxy_protocol on, the load balancer's proxy protocol setting), " +
		"or drop proxy_protocol / accept-proxy from the listener; then set_real_ip_from the balancer's address so logs and X-Forwarded-For keep the client's"
}

// nodeEvidence names, once per leg, what the leg's packets said beyond
// its 4-tuple: the PROXY header that began it (the original client) and
// the overlay tunnel it came in, unless a finding quoted it already.
func (a *attempt) nodeEvidence(ev []string) []string {
	for i, x := range a.chain {
		n := x.req.Node
		if x.end != nil && x.end.Node != nil {
			n = x.end.Node
		}
		if n == nil {
			continue
		}
		l, _ := a.legName(i)
		if s := n.String(); s != "" && !containsPrefix2(ev, l, ": the connection began with a "+s) {
			ev = append(ev, l+": "+s)
		}
	}
	return ev
}

// proxySource is the original client a PROXY header at the start of r's
// connection names (invalid when none).
func proxySource(r *reassembly.Request) netip.AddrPort {
	if n := r.Node; n != nil && n.Proxy != nil && !n.Proxy.Local {
		return n.Proxy.Src
	}
	return netip.AddrPort{}
}
