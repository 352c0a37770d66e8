package analyze

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Rules that name why a handshake was refused, beyond the status: header
// blocks too large, an Origin the backend no longer matches, an untrusted
// proxy, a session id the backend never issued, a proxy out of
// connections, a Connection list a backend wants as one token.

// headerBlockSize is the size of a request's start line and header block
// as on the wire (CRLF line ends).
func headerBlockSize(r *reassembly.Request) int {
	n := len(requestLine(r)) + 2 + 2
	for _, h := range r.Headers {
		n += len(h.Name) + 2 + len(h.Value) + 2
	}
	return n
}

func sizeOf(r *reassembly.Request) string {
	s := fmt.Sprintf("%d bytes", headerBlockSize(r))
	switch {
	case r.Unread:
		s = "more than " + s + " (the proxy refused it before reading the rest: its TLS plaintext holds what it read)"
	case r.Truncated:
		s = "more than " + s + " (cut at wsdiag's limit)"
	}
	if c, ok := r.Headers.Get("Cookie"); ok {
		s += fmt.Sprintf(", Cookie %d bytes", len(c))
	}
	return s
}

// tooLargePage: an answer that says the request's headers were too big.
func tooLargePage(resp *reassembly.Response) bool {
	if resp.Status == 431 || resp.Status == 494 {
		return true
	}
	if resp.Status != 400 {
		return false
	}
	// nginx: "Request Header Or Cookie Too Large"; Apache: "Size of a
	// request header field exceeds server limit"; others: "… too long".
	b := strings.ToLower(resp.Body + " " + resp.Reason)
	return strings.Contains(b, "header") && (strings.Contains(b, "too large") || strings.Contains(b, "too long") || strings.Contains(b, "too big") || strings.Contains(b, "exceeds server limit"))
}

// proxyTooLarge: the proxy itself refused the client's header block.
func (a *attempt) proxyTooLarge(out []finding) []finding {
	A := a.chain[0]
	leg, rleg := a.legName(0)
	return append(out, found(HeadersTooLarge, 0, rleg+": "+statusLine(A.resp)+a.generatedNote()+" "+quoteBody(pageTitle(A.resp.Body)),
		leg+": header block "+sizeOf(A.req)+"; no upstream request"))
}

// pageTitle is an HTML page's <title>, or the body.
func pageTitle(b string) string {
	if i := strings.Index(b, "<title>"); i >= 0 {
		if k := strings.Index(b[i:], "</title>"); k > 0 {
			return b[i+7 : i+k]
		}
	}
	return b
}

// refusalCauses name why the backend refused (it answered ≥ 400), in
// order: the first that does stands. Each gets the answer's body, trimmed.
var refusalCauses = [...]func(a *attempt, out []finding, body string) []finding{
	(*attempt).backendTooLarge,
	(*attempt).untrusted,
	(*attempt).sticky,
	(*attempt).originMismatch,
}

// refusalRule: why the backend refused the handshake, when its answer or
// other connections tell (headers_too_large, untrusted_proxy,
// sticky_session_missing, origin_mismatch).
func refusalRule(a *attempt, out []finding) []finding {
	if !a.backend.refused() {
		return out
	}
	body := strings.TrimSpace(a.backend.leg.resp.Body)
	for _, cause := range refusalCauses {
		if named := cause(a, out, body); len(named) > len(out) {
			return named
		}
	}
	return out
}

// backendTooLarge: the backend refused the header block as too large.
func (a *attempt) backendTooLarge(out []finding, body string) []finding {
	n := len(a.chain)
	L := a.backend.leg
	if !tooLargePage(L.resp) {
		return out
	}
	_, rleg := a.legName(n - 1)
	ev := []string{rleg + ": " + statusLine(L.resp)}
	if body != "" {
		ev = append(ev, rleg+" body: "+quoteBody(body))
	}
	for i := 0; i < n; i++ {
		l, _ := a.legName(i)
		ev = append(ev, l+": header block "+sizeOf(a.chain[i].req))
	}
	f := found(HeadersTooLarge, n-1, ev...)
	f.atBackend = true
	return append(out, f)
}

// untrusted: a backend refusing X-Forwarded-For from a peer it does not
// trust (Home Assistant's http integration, Rails/Django-style proxies
// lists), as its body says.
func (a *attempt) untrusted(out []finding, body string) []finding {
	n := len(a.chain)
	L := a.backend.leg
	st := L.resp.Status
	b := strings.ToLower(body)
	said := strings.Contains(b, "reverse proxy") && (strings.Contains(b, "not set-up") || strings.Contains(b, "not set up") || strings.Contains(b, "trusted")) ||
		strings.Contains(b, "untrusted proxy") || strings.Contains(b, "trusted_proxies") || strings.Contains(b, "trusted proxies")
	if !said || st != 400 && st != 403 {
		return out
	}
	leg, rleg := a.legName(n - 1)
	xff := "no X-Forwarded-For"
	if v := L.req.Headers.Values("X-Forwarded-For"); len(v) > 0 {
		xff = "X-Forwarded-For: " + strings.Join(v, ", ")
	}
	return append(out, found(UntrustedProxy, n-1, fmt.Sprintf("%s: %s, from %s (the proxy as the backend sees it)", leg, xff, L.req.Client.Addr()),
		rleg+": "+statusLine(L.resp), rleg+" body: "+quoteBody(body)))
}

// sticky: the backend refused a session id that another backend handed
// out: the polling handshake and the upgrade went to different servers.
func (a *attempt) sticky(out []finding, body string) []finding {
	n := len(a.chain)
	if n < 2 {
		return out
	}
	L := a.backend.leg
	st := L.resp.Status
	if st != 400 && st != 404 {
		return out
	}
	k, id := sessionIDOf(L.req.Target)
	if id == "" {
		return out
	}
	other, ok := a.an.cross.issuer(id, L.req.Server, a.chain[n-2].req.Server)
	if !ok {
		return out
	}
	_, rleg := a.legName(n - 1)
	kind := "engine.io/socket.io session " + k + "=" + id
	if k == "id" {
		kind = "SignalR connection id=" + id
	}
	ev := []string{fmt.Sprintf("%s was handed out by %s (its handshake answer carried it), and the upgrade went to %s", kind, other, L.req.Server),
		rleg + ": " + statusLine(L.resp)}
	if body != "" {
		ev = append(ev, rleg+" body: "+quoteBody(body))
	}
	return append(out, found(StickySessionMissing, n-2, ev...))
}

// originMismatch: a 403 (ActionCable: 404 "Page not found") whose Origin
// does not match the Host the backend received.
func (a *attempt) originMismatch(out []finding, body string) []finding {
	n := len(a.chain)
	L := a.backend.leg
	st := L.resp.Status
	if st != 403 && !(st == 404 && body == "Page not found") {
		return out
	}
	o, ok := L.req.Headers.Get("Origin")
	if !ok {
		return out
	}
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Host == "" {
		return out
	}
	_, rleg := a.legName(n - 1)
	hostL, _ := L.req.Headers.Get("Host")
	if sameHost(u, hostL) {
		return a.schemeLost(out, u, o, rleg)
	}
	leg, _ := a.legName(n - 1)
	ev := []string{fmt.Sprintf("%s: Origin: %s, Host: %s: the Origin's host %s is not the Host the backend compares it with", leg, o, hostL, u.Host)}
	// Which proxy changed what the backend compares?
	for i := 0; i+1 < n; i++ {
		hx, _ := a.chain[i].req.Headers.Get("Host")
		hy, _ := a.chain[i+1].req.Headers.Get("Host")
		if sameHost(u, hx) && !sameHost(u, hy) {
			lx, _ := a.legName(i)
			ly, _ := a.legName(i + 1)
			why := "the proxy rewrote Host"
			if h, p, ok := strings.Cut(hx, ":"); ok && strings.EqualFold(h, hy) && p != "" {
				why = "the proxy dropped the port from Host (nginx's $host has no port)"
			}
			ev = append(ev, fmt.Sprintf("%s: Host: %s matches the Origin; %s: Host: %s does not: %s", lx, hx, ly, hy, why), rleg+": "+statusLine(L.resp))
			return append(out, found(OriginMismatch, i, ev...))
		}
	}
	ev = append(ev, "the client's own Host differs from its Origin: a cross-origin page", rleg+": "+statusLine(L.resp))
	f := found(OriginMismatch, n-1, ev...)
	f.atBackend = true
	return append(out, f)
}

// schemeLost: the Origin is https, the client's leg TLS, and the proxy's
// plain request to the backend says nothing of the scheme, so a backend
// that compares the Origin with its own URL sees http.
func (a *attempt) schemeLost(out []finding, u *url.URL, o, rleg string) []finding {
	n := len(a.chain)
	L := a.backend.leg
	tlsA := a.chain[0].req.TLS || a.enc != nil
	if n < 2 || !tlsA || L.req.TLS || u.Scheme != "https" && u.Scheme != "wss" {
		return out
	}
	if p, _ := L.req.Headers.Get("X-Forwarded-Proto"); strings.EqualFold(strings.TrimSpace(p), "https") {
		return out
	}
	if f, _ := L.req.Headers.Get("Forwarded"); strings.Contains(strings.ToLower(f), "proto=https") {
		return out
	}
	leg, _ := a.legName(n - 1)
	return append(out, found(OriginMismatch, n-2, fmt.Sprintf("%s: Origin: %s on a plain HTTP request with no X-Forwarded-Proto: https: the client's leg is TLS, the backend sees http and its own URL no longer matches the Origin's scheme", leg, o),
		rleg+": "+statusLine(L.resp)))
}

// sameHost compares an Origin's host with a Host header, default ports
// equal to none.
func sameHost(u *url.URL, host string) bool {
	norm := func(h, scheme string) string {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case scheme == "http" || scheme == "ws":
			h = strings.TrimSuffix(h, ":80")
		case scheme == "https" || scheme == "wss":
			h = strings.TrimSuffix(h, ":443")
		}
		return h
	}
	return norm(u.Host, u.Scheme) == norm(host, u.Scheme)
}

// connectionList: a backend refused a Connection header that is a token
// list (Firefox sends "keep-alive, Upgrade") forwarded as is; evidence
// for backend_rejected.
func (a *attempt) connectionList() []string {
	n := len(a.chain)
	v := a.backend.connList()
	if v == "" {
		return nil
	}
	leg, _ := a.legName(n - 1)
	ev := fmt.Sprintf("%s: Connection: %s: a token list, forwarded as the client sent it (Firefox sends \"keep-alive, Upgrade\"); backends that compare Connection with \"Upgrade\" as a whole refuse it", leg, v)
	if n > 1 {
		if c := strings.Join(a.chain[0].req.Headers.Values("Connection"), ", "); c == v {
			l0, _ := a.legName(0)
			ev += fmt.Sprintf("; %s had the same", l0)
		}
	}
	return []string{ev}
}

// tunnelsOpen is how many WebSocket tunnels the client's proxy held when
// the request came, and whether that was the most it held at once in the
// capture (and at least 3): then it was out of connections.
func (a *attempt) tunnelsOpen() (open int, full bool) {
	A := a.chain[0]
	open, peak := a.an.cross.openAt(A.req.Server, A.req.Start)
	return open, open >= 3 && open >= peak
}

// atCapacity: a new connection failed at the proxy (closed without an
// answer, or the proxy's own 500/503; what says how) while its open
// tunnels sat at the most seen. The finding shows a proxy answered, so
// its leg is named the proxy's.
func (a *attempt) atCapacity(open int, what string) finding {
	return found(ProxyAtCapacity, 0, "proxy→client: "+what,
		fmt.Sprintf("%s had %d WebSocket tunnels open then, the most at once in the capture (each holds two of the proxy's connections: the client's and the upstream one)", a.chain[0].req.Server, open),
		"proxy→backend: no request for this attempt")
}
