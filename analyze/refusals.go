package analyze

import (
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
	s := spf("%d bytes", headerBlockSize(r))
	if r.Truncated {
		s = "more than " + s + " (cut at wsdiag's limit)"
	}
	if c, ok := r.Headers.Get("Cookie"); ok {
		s += spf(", Cookie %d bytes", len(c))
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
func (j *judgement) proxyTooLarge() bool {
	A := j.chain[0]
	if A.resp == nil || !tooLargePage(A.resp) {
		return false
	}
	leg, rleg := j.legName(0)
	j.add(HeadersTooLarge, 0, rleg+": "+statusLine(A.resp)+j.generatedNote()+" "+quoteBody(pageTitle(A.resp.Body)),
		leg+": header block "+sizeOf(A.req)+"; no upstream request")
	return true
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

// refusalRules run when the last leg's backend answered st ≥ 400; they
// report whether one named the cause.
func (j *judgement) refusalRules() bool {
	n := len(j.chain)
	L := j.chain[n-1]
	leg, rleg := j.legName(n - 1)
	body := strings.TrimSpace(L.resp.Body)
	if tooLargePage(L.resp) {
		ev := []string{rleg + ": " + statusLine(L.resp)}
		if body != "" {
			ev = append(ev, rleg+" body: "+quoteBody(body))
		}
		for i := 0; i < n; i++ {
			l, _ := j.legName(i)
			ev = append(ev, l+": header block "+sizeOf(j.chain[i].req))
		}
		j.addAt(HeadersTooLarge, n-1, HopBackend, ev...)
		return true
	}
	if j.untrusted(body, leg, rleg) {
		return true
	}
	if j.sticky(body, rleg) {
		return true
	}
	return j.originMismatch(body, rleg)
}

// untrusted: a backend refusing X-Forwarded-For from a peer it does not
// trust (Home Assistant's http integration, Rails/Django-style proxies
// lists), as its body says.
func (j *judgement) untrusted(body, leg, rleg string) bool {
	n := len(j.chain)
	L := j.chain[n-1]
	st := L.resp.Status
	b := strings.ToLower(body)
	said := strings.Contains(b, "reverse proxy") && (strings.Contains(b, "not set-up") || strings.Contains(b, "not set up") || strings.Contains(b, "trusted")) ||
		strings.Contains(b, "untrusted proxy") || strings.Contains(b, "trusted_proxies") || strings.Contains(b, "trusted proxies")
	if !said || st != 400 && st != 403 {
		return false
	}
	xff := "no X-Forwarded-For"
	if v := L.req.Headers.Values("X-Forwarded-For"); len(v) > 0 {
		xff = "X-Forwarded-For: " + strings.Join(v, ", ")
	}
	j.add(UntrustedProxy, n-1, spf("%s: %s, from %s (the proxy as the backend sees it)", leg, xff, L.req.Client.Addr()),
		rleg+": "+statusLine(L.resp), rleg+" body: "+quoteBody(body))
	return true
}

// sticky: the backend refused a session id that another backend handed
// out: the polling handshake and the upgrade went to different servers.
func (j *judgement) sticky(body, rleg string) bool {
	n := len(j.chain)
	if n < 2 {
		return false
	}
	L := j.chain[n-1]
	st := L.resp.Status
	if st != 400 && st != 404 {
		return false
	}
	k, id := sessionIDOf(L.req.Target)
	if id == "" {
		return false
	}
	other, ok := j.a.cross.issuer(id, L.req.Server, j.chain[n-2].req.Server)
	if !ok {
		return false
	}
	kind := "engine.io/socket.io session " + k + "=" + id
	if k == "id" {
		kind = "SignalR connection id=" + id
	}
	ev := []string{spf("%s was handed out by %s (its handshake answer carried it), and the upgrade went to %s", kind, other, L.req.Server),
		rleg + ": " + statusLine(L.resp)}
	if body != "" {
		ev = append(ev, rleg+" body: "+quoteBody(body))
	}
	j.add(StickySessionMissing, n-2, ev...)
	return true
}

// originMismatch: a 403 (ActionCable: 404 "Page not found") whose Origin
// does not match the Host the backend received.
func (j *judgement) originMismatch(body, rleg string) bool {
	n := len(j.chain)
	L := j.chain[n-1]
	st := L.resp.Status
	if st != 403 && !(st == 404 && body == "Page not found") {
		return false
	}
	o, ok := L.req.Headers.Get("Origin")
	if !ok {
		return false
	}
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Host == "" {
		return false
	}
	hostL, _ := L.req.Headers.Get("Host")
	if sameHost(u, hostL) {
		return j.schemeLost(u, o, rleg)
	}
	leg, _ := j.legName(n - 1)
	ev := []string{spf("%s: Origin: %s, Host: %s: the Origin's host %s is not the Host the backend compares it with", leg, o, hostL, u.Host)}
	// Which proxy changed what the backend compares?
	for i := 0; i+1 < n; i++ {
		hx, _ := j.chain[i].req.Headers.Get("Host")
		hy, _ := j.chain[i+1].req.Headers.Get("Host")
		if sameHost(u, hx) && !sameHost(u, hy) {
			lx, _ := j.legName(i)
			ly, _ := j.legName(i + 1)
			why := "the proxy rewrote Host"
			if h, p, ok := strings.Cut(hx, ":"); ok && strings.EqualFold(h, hy) && p != "" {
				why = "the proxy dropped the port from Host (nginx's $host has no port)"
			}
			ev = append(ev, spf("%s: Host: %s matches the Origin; %s: Host: %s does not: %s", lx, hx, ly, hy, why), rleg+": "+statusLine(L.resp))
			j.add(OriginMismatch, i, ev...)
			return true
		}
	}
	ev = append(ev, "the client's own Host differs from its Origin: a cross-origin page", rleg+": "+statusLine(L.resp))
	j.addAt(OriginMismatch, n-1, HopBackend, ev...)
	return true
}

// schemeLost: the Origin is https, the client's leg TLS, and the proxy's
// plain request to the backend says nothing of the scheme, so a backend
// that compares the Origin with its own URL sees http.
func (j *judgement) schemeLost(u *url.URL, o, rleg string) bool {
	n := len(j.chain)
	L := j.chain[n-1]
	tlsA := j.chain[0].req.TLS || j.encrypted != nil
	if n < 2 || !tlsA || L.req.TLS || u.Scheme != "https" && u.Scheme != "wss" {
		return false
	}
	if p, _ := L.req.Headers.Get("X-Forwarded-Proto"); strings.EqualFold(strings.TrimSpace(p), "https") {
		return false
	}
	if f, _ := L.req.Headers.Get("Forwarded"); strings.Contains(strings.ToLower(f), "proto=https") {
		return false
	}
	leg, _ := j.legName(n - 1)
	j.add(OriginMismatch, n-2, spf("%s: Origin: %s on a plain HTTP request with no X-Forwarded-Proto: https: the client's leg is TLS, the backend sees http and its own URL no longer matches the Origin's scheme", leg, o),
		rleg+": "+statusLine(L.resp))
	return true
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
func (j *judgement) connectionList() []string {
	n := len(j.chain)
	L := j.chain[n-1]
	v := strings.Join(L.req.Headers.Values("Connection"), ", ")
	if !strings.Contains(v, ",") || !L.req.Headers.HasToken("Connection", "upgrade") {
		return nil
	}
	leg, _ := j.legName(n - 1)
	j.connList = v
	ev := spf("%s: Connection: %s: a token list, forwarded as the client sent it (Firefox sends \"keep-alive, Upgrade\"); backends that compare Connection with \"Upgrade\" as a whole refuse it", leg, v)
	if n > 1 {
		if a := strings.Join(j.chain[0].req.Headers.Values("Connection"), ", "); a == v {
			l0, _ := j.legName(0)
			ev += spf("; %s had the same", l0)
		}
	}
	return []string{ev}
}

// atCapacity: a new connection failed at the proxy (closed without an
// answer, or the proxy's own 500/503; what says how, without the leg's
// name) while its open
// tunnels sat at the most seen.
func (j *judgement) atCapacity(what string) bool {
	A := j.chain[0]
	open, peak := j.a.cross.openAt(A.req.Server, A.req.Start)
	if open < 3 || open < peak {
		return false
	}
	j.proxyKnown = true
	_, rleg := j.legName(0)
	j.add(ProxyAtCapacity, 0, rleg+": "+what,
		spf("%s had %d WebSocket tunnels open then, the most at once in the capture (each holds two of the proxy's connections: the client's and the upstream one)", A.req.Server, open),
		"proxy→backend: no request for this attempt")
	return true
}
