package analyze

import "fmt"

// Upstream legs that are not on the wire: a backend on a unix socket
// (proxy_pass http://unix:…, haproxy "server s1 /run/app.sock"), or on an
// interface the capture did not see. The client's leg still tells who
// wrote the answer: a backend's WebSocket library refusing a handshake
// that the client sent correctly means the proxy changed it on the way.

// offWireNote ends the evidence that an attempt's upstream leg is missing.
func (a *attempt) offWireNote() string {
	if why := a.an.opt.ClientLegOnly; why != "" {
		return "; " + why
	}
	if a.alone.offWire {
		return "; no upstream leg of this proxy is on the wire (a unix-socket backend, or an interface or filter that left it out)"
	}
	return " (capture both legs: -i any, or a filter with the backend port)"
}

// relayedRefusal judges a one-leg attempt whose answer is a backend
// WebSocket library's refusal of the handshake, relayed by the proxy,
// while the client's own request was a correct handshake.
func (a *attempt) relayedRefusal(out []finding) []finding {
	A := a.chain[0]
	lib, _ := refusedBy(A.resp)
	leg, rleg := a.legName(0)
	code := UpgradeHeaderDropped
	if lib.wsHdr {
		code = WSHeaderAltered
	}
	ev := []string{rleg + ": " + statusLine(A.resp)}
	if b := bodyEvidence(rleg, A.resp); b != "" {
		ev = append(ev, b)
	}
	ev = append(ev, fmt.Sprintf("%s refused the handshake it got for lacking %s, and the proxy relayed its answer; the client's request had it:", lib.name, lib.missing))
	if lib.requestLine {
		ev = append(ev, leg+" request line: "+requestLine(A.req))
	} else {
		ev = append(ev, headerEv(leg, "Upgrade", A.req.Headers), headerEv(leg, "Connection", A.req.Headers))
	}
	conf := "high confidence: the library names what it missed"
	if lib.generic {
		conf = "medium confidence: the answer is typical of the library, not its own words"
	}
	ev = append(ev, "judged from the client leg alone ("+conf+"); the request the backend got is not in the capture")
	out = append(out, found(code, 0, ev...))
	if lib.requestLine {
		out = append(out, found(UpstreamHTTP10, 0, "the library wants an HTTP/1.1 GET request line and the client sent "+requestLine(A.req)+": the proxy's request line was not that (nginx sends HTTP/1.0 upstream unless told otherwise)"))
	}
	return append(out, explains(Unpaired, 0, "proxy→backend: not in the capture"+a.offWireNote()))
}

// offWireAdvice is how to see an upstream leg that a packet capture
// cannot show, added to a fix when the capture holds none of the proxy's.
func offWireAdvice(fam string) string {
	where := "the proxy's config"
	switch fam {
	case "nginx":
		where = "proxy_pass (http://unix:/path:) in nginx's config"
	case "haproxy":
		where = `the "server" line (a path, or unix@/path) in haproxy's backend`
	case "caddy":
		where = "reverse_proxy unix//path in the Caddyfile"
	case "apache":
		where = "ProxyPass unix:/path|http://… in Apache's config"
	}
	return "no capture shows the proxy's upstream leg when it goes over a unix socket: find the socket in " + where +
		", see who listens on it with ss -xlp, and to watch the traffic point the proxy at socat -v UNIX-LISTEN:/tmp/ws-debug.sock,fork UNIX-CONNECT:/path/app.sock for a test" +
		"; if the backend is on TCP, capture on the interface that carries it (-i any) with its port in the filter"
}
