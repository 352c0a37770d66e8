package analyze

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// finding is one rule that held, with its evidence and the hop index it
// concerns (the proxy of hop i sits between leg i and leg i+1).
type finding struct {
	code     Code
	hop      int
	evidence []string
	// note: explains, never primary (a normal close frame on an ok session)
	note bool
	// at overrides the row's hop when the code sits at different hops
	// (headers_too_large: the proxy or the backend refused).
	at Hop
}

// judgement collects findings for one attempt.
type judgement struct {
	chain    []*exchange
	a        *Analyzer
	findings []finding
	// connect is the failed connect attempt behind a proxy error, if any.
	connect []*reassembly.ConnEnd
	// generatedBy names the proxy product whose own error page leg A got.
	generatedBy string
	// idle is the silence before an idle_timeout.
	idle time.Duration
	// product is what leg A's answers tell of the proxy ("nginx/1.22.1").
	product string
	// upstreamOnly: the chain starts at a proxy's upstream request, the
	// client's leg being opaque (encrypted, the TLS leg) or not captured.
	upstreamOnly bool
	// lone: a single leg to an --upstream backend (issue 17, bug 6).
	lone      bool
	encrypted *tlsLeg
	encConf   Confidence
	// upTLS are the proxy's failed TLS connections to the backend behind
	// its own 5xx (upstreamtls.go), with what they showed.
	upTLS                                 []*tlsLeg
	upNoSNI, upCertRefused, upSchemePlain bool
	// cause says in the proxy's terms which of its rules answered the
	// client itself (proxy_rejected), when its answer tells.
	cause string
	// offWire: no upstream leg of this attempt's proxy is in the capture
	// at all (a unix-socket backend, an interface not captured).
	offWire bool
	// missingAccept: a 101 came without Sec-WebSocket-Accept.
	missingAccept bool
	// relayed: the one leg's answer is a backend library's, relayed by a
	// proxy.
	relayed bool
	// holdUntil: the verdict waits (capture time) for what other
	// connections will show (crossconn.go); zero: put it out now.
	holdUntil time.Time
	// connList is a Connection token list forwarded to a backend that
	// refused it (Firefox's "keep-alive, Upgrade").
	connList string
	// cutAge is the age of a tunnel cut at a fixed lifetime.
	cutAge time.Duration
	// event is the mass close this attempt's tunnel was part of.
	event *Event
	// proxyKnown: a rule found the lone leg's server to be a proxy.
	proxyKnown bool
	config     *ConfigBlock
	// midstream: the chain's legs began before the capture (midstream.go):
	// no request or response was seen, only frames.
	midstream bool
}

func (j *judgement) add(c Code, hop int, ev ...string) {
	for _, f := range j.findings {
		if f.code == c {
			return
		}
	}
	j.findings = append(j.findings, finding{code: c, hop: hop, evidence: ev})
}

// addAt records a finding whose hop differs from its row's.
func (j *judgement) addAt(c Code, hop int, at Hop, ev ...string) {
	j.add(c, hop, ev...)
	for i := range j.findings {
		if j.findings[i].code == c {
			j.findings[i].at = at
		}
	}
}

// addNote records a finding that explains but is never the primary code.
func (j *judgement) addNote(c Code, hop int, ev ...string) {
	j.add(c, hop, ev...)
	j.findings[len(j.findings)-1].note = true
}

func (j *judgement) has(c Code) bool {
	for _, f := range j.findings {
		if f.code == c {
			return true
		}
	}
	return false
}

// legName names leg i for evidence: who sends the request to whom.
func (j *judgement) legName(i int) (req, resp string) {
	n := len(j.chain)
	if j.upstreamOnly {
		// leg 0 is the client's unseen leg
		i, n = i+1, n+1
	}
	from, to := "proxy", "backend"
	if i == 0 {
		from = "client"
	} else if n > 2 {
		from = fmt.Sprintf("proxy%d", i)
	}
	if i < n-1 {
		to = "proxy"
		if n > 2 {
			to = fmt.Sprintf("proxy%d", i+1)
		}
	} else if n == 1 {
		to = "proxy"
		if !j.proxyEvident() {
			to = "server"
		}
	}
	return legPair(from, to)
}

// legPair joins the names both ways; the names of one- and two-leg
// chains are constants, so judging allocates none for them.
func legPair(from, to string) (req, resp string) {
	switch {
	case from == "client" && to == "proxy":
		return "client→proxy", "proxy→client"
	case from == "proxy" && to == "backend":
		return "proxy→backend", "backend→proxy"
	case from == "client" && to == "server":
		return "client→server", "server→client"
	case from == "client" && to == "backend":
		return "client→backend", "backend→client"
	}
	return from + "→" + to, to + "→" + from
}

// proxyEvident: with one leg only, is there a sign that a proxy answered?
func (j *judgement) proxyEvident() bool {
	return j.generatedBy != "" || len(j.connect) > 0 || j.product != "" || j.relayed || j.proxyKnown
}

func requestLine(r *reassembly.Request) string {
	return r.Method + " " + r.Target + " " + r.Version
}

func statusLine(r *reassembly.Response) string {
	// as strings.TrimSpace(fmt.Sprintf("%s %d %s", ...)), in one allocation
	var a [128]byte
	b := append(a[:0], r.Version...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, r.Reason...)
	return strings.TrimSpace(string(b))
}

// headerEv quotes a header as evidence, or says it is absent.
func headerEv(leg, name string, h reassembly.Headers) string {
	v, ok := joinValues(h, name)
	if !ok {
		return leg + ": no " + name + " header"
	}
	return leg + ": " + canonicalName(h, name) + ": " + v
}

// joinValues is strings.Join(h.Values(name), ", "), allocating only when
// the header has several lines; ok is false when it has none.
func joinValues(h reassembly.Headers, name string) (v string, ok bool) {
	n := 0
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			if n == 0 {
				v = f.Value
			}
			n++
		}
	}
	if n > 1 {
		v = strings.Join(h.Values(name), ", ")
	}
	return v, n > 0
}

// canonicalName returns the header name as it was spelled on the wire.
func canonicalName(h reassembly.Headers, name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Name
		}
	}
	return name
}

func isSecret(name string) bool {
	return strings.EqualFold(name, "Cookie") || strings.EqualFold(name, "Authorization") ||
		strings.EqualFold(name, "Set-Cookie") || strings.EqualFold(name, "Proxy-Authorization")
}

// wsGUID is RFC 6455's magic string for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptFor computes the Sec-WebSocket-Accept a server must send for key.
func AcceptFor(key string) string {
	var a [128]byte
	h := sha1.Sum(append(append(a[:0], key...), wsGUID...))
	return base64.StdEncoding.EncodeToString(h[:])
}

// correctUpgrade reports whether a request is a complete WebSocket
// handshake request (RFC 6455 §4.1).
func correctUpgrade(r *reassembly.Request) bool {
	k, _ := r.Headers.Get("Sec-WebSocket-Key")
	v, _ := r.Headers.Get("Sec-WebSocket-Version")
	return r.Method == "GET" && r.Version == "HTTP/1.1" &&
		r.Headers.HasToken("Upgrade", "websocket") && r.Headers.HasToken("Connection", "upgrade") &&
		validKey(k) && strings.TrimSpace(v) == "13"
}

func validKey(k string) bool {
	k = strings.TrimSpace(k)
	var b [64]byte
	if base64.StdEncoding.DecodedLen(len(k)) > len(b) {
		return false // far longer than 16 bytes
	}
	n, err := base64.StdEncoding.Decode(b[:], []byte(k))
	return err == nil && n == 16
}

// proxySignature names the proxy whose own error page body is, or "".
func proxySignature(r *reassembly.Response) string {
	b := r.Body
	switch {
	case strings.Contains(b, "<hr><center>nginx"):
		if i := strings.Index(b, "<center>nginx/"); i >= 0 {
			rest := b[i+len("<center>"):]
			if j := strings.IndexByte(rest, '<'); j > 0 {
				return rest[:j]
			}
		}
		return "nginx"
	case strings.Contains(b, "<address>Apache"):
		return "apache"
	case strings.Contains(b, "<html><body><h1>") && r.Status >= 400 && strings.Contains(b, "</h1>\n"):
		// HAProxy's built-in error pages
		if _, ok := r.Headers.Get("Server"); !ok {
			return "haproxy"
		}
	}
	return ""
}

// productAt tells the product of the proxy that listens at leg i's server,
// from its answers on leg i: its own error page, or a Server header that
// the next leg's answer does not carry (nginx hides the backend's Server
// and sends its own; haproxy and Caddy relay the backend's). Without a
// next leg, only a proxy that is evident (connect attempts seen) or
// nginx's header count.
func productAt(chain []*exchange, i int, evident bool) string {
	x := chain[i]
	if x.resp == nil {
		return ""
	}
	sig := proxySignature(x.resp)
	if sig != "" && sig != "nginx" {
		return sig
	}
	if s, ok := x.resp.Headers.Get("Server"); ok {
		switch {
		case i+1 < len(chain):
			if y := chain[i+1].resp; y == nil || !sameHeader(y.Headers, "Server", s) {
				return s
			}
		case evident || sig != "" || strings.HasPrefix(strings.ToLower(s), "nginx"):
			return s
		}
	}
	return sig
}

func sameHeader(h reassembly.Headers, name, v string) bool {
	w, ok := h.Get(name)
	return ok && w == v
}

// judge applies the rules to a chain of legs (leg 0 is the client's).
func judge(chain []*exchange, a *Analyzer, enc *tlsLeg, encConf Confidence) *Verdict {
	v, j := judgeHeld(chain, a, enc, encConf)
	if v == nil { // no waiting here: judge on what is known
		j.crossRules(true)
		v = j.verdict()
	}
	return v
}

// judgeHeld judges a chain; a nil verdict means the judgement waits for
// other connections (j.holdUntil).
func judgeHeld(chain []*exchange, a *Analyzer, enc *tlsLeg, encConf Confidence) (*Verdict, *judgement) {
	j := &judgement{chain: chain, a: a, encrypted: enc, encConf: encConf}
	// --upstream names this leg's server: it is a proxy's upstream leg
	// whose client leg is missing, whatever its headers say.
	j.lone = enc == nil && len(chain) == 1 && len(a.opt.Upstreams) > 0 && a.upstreamAllowed(chain[0])
	if enc != nil || strippedUpstream(chain[0].req) || j.lone {
		j.upstreamOnly = true
		return j.judgeUpstreamOnly(), j
	}
	A := chain[0]
	if A.resp != nil {
		j.generatedBy = proxySignature(A.resp)
	}
	n := len(chain)
	if n == 1 && A.resp != nil && A.resp.Status >= 500 {
		to := A.resp.End
		j.connect = a.failedConnects(A.req.Start, to)
		j.upTLS = a.claimUpstreamTLS(A)
	}
	// A server some of whose requests the capture shows going upstream
	// is a proxy, whatever its answers say.
	j.product = productAt(chain, 0, len(j.connect) > 0 || a.proxied[A.req.Server])
	j.offWire = n == 1 && !a.proxied[A.req.Server]
	if n == 1 && A.resp != nil && caddyEmpty(A.resp) {
		j.product = "Caddy" // its own answer: Caddy is a proxy here
	}
	if n == 1 && A.resp != nil && j.product == "" {
		j.product = guessProduct(A.resp)
	}

	j.clientRules()
	j.h2Rules()
	for i := 0; i+1 < n; i++ {
		j.proxyRequestRules(i)
	}
	if n == 1 {
		j.noUpstreamRules()
	} else {
		j.backendRules()
		for i := n - 2; i >= 0; i-- {
			j.proxyResponseRules(i)
		}
	}
	j.h2RefusedNeedsNoUpstream()
	j.sessionRules()
	j.cutRules()
	j.config = j.locateConfig()
	j.crossRules(false)
	if !j.holdUntil.IsZero() {
		return nil, j
	}
	return j.verdict(), j
}

// absentCut: the request's block was cut before header name could show.
func absentCut(r *reassembly.Request, name string) bool {
	return r.Truncated && !hasHeader(r.Headers, name)
}

func (j *judgement) clientRules() {
	A := j.chain[0]
	r := A.req
	leg, _ := j.legName(0)
	if h2WebSocket(r) {
		if ev := j.h2ClientRules(r); len(ev) > 0 {
			j.add(ClientNotWebSocket, 0, ev...)
		}
		return
	}
	var ev []string
	// In a block the capture cut, a header not there is unknown.
	tr := r.Truncated
	if !r.Headers.HasToken("Upgrade", "websocket") && !(tr && !hasHeader(r.Headers, "Upgrade")) {
		ev = append(ev, headerEv(leg, "Upgrade", r.Headers))
	}
	if !r.Headers.HasToken("Connection", "upgrade") && !(tr && !hasHeader(r.Headers, "Connection")) {
		ev = append(ev, headerEv(leg, "Connection", r.Headers))
	}
	if k, ok := r.Headers.Get("Sec-WebSocket-Key"); (ok || !tr) && (!ok || !validKey(k)) {
		ev = append(ev, headerEv(leg, "Sec-WebSocket-Key", r.Headers)+" (need 16 random bytes, base64)")
	}
	if v, ok := r.Headers.Get("Sec-WebSocket-Version"); (ok || !tr) && strings.TrimSpace(v) != "13" {
		ev = append(ev, headerEv(leg, "Sec-WebSocket-Version", r.Headers)+" (need 13)")
	}
	if r.Method != "GET" || r.Version != "HTTP/1.1" {
		ev = append(ev, leg+" request line: "+requestLine(r)+" (need GET … HTTP/1.1)")
	}
	if len(ev) > 0 {
		j.add(ClientNotWebSocket, 0, ev...)
	}
}

// proxyRequestRules compares the request on leg i with what the proxy
// sent on leg i+1.
func (j *judgement) proxyRequestRules(i int) {
	x, y := j.chain[i].req, j.chain[i+1].req
	lx, _ := j.legName(i)
	ly, _ := j.legName(i + 1)
	wsIn := wsAsked(x)
	if wsIn && !y.Headers.HasToken("Upgrade", "websocket") {
		switch {
		case hasHeader(y.Headers, "Upgrade") || !y.Truncated:
			j.add(UpgradeHeaderDropped, i, upgradeEvCut(lx, x), headerEv(ly, "Upgrade", y.Headers))
		default:
			// cut before Upgrade could show; nginx's header order may still tell
			if rel, ok := nginxSetHeaders(productAt(j.chain, i, true), x, y); ok {
				j.add(UpgradeHeaderDropped, i, upgradeEvCut(lx, x),
					ly+": no Upgrade among the headers nginx sets (it writes them before those it relays, and the relayed "+rel+" is in the part the capture kept)")
			}
		}
	}
	if wsIn && asksConnectionUpgrade(x) && !y.Headers.HasToken("Connection", "upgrade") && !absentCut(y, "Connection") {
		j.add(ConnectionNotUpgrade, i, headerEv(lx, "Connection", x.Headers), headerEv(ly, "Connection", y.Headers))
	}
	if y.Version == "HTTP/1.0" && x.Version != "HTTP/1.0" {
		j.add(UpstreamHTTP10, i, lx+" request line: "+requestLine(x), ly+" request line: "+requestLine(y))
	}
	var ev []string
	for _, h := range []string{"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"} {
		if h == "Sec-WebSocket-Key" && h2WebSocket(x) {
			continue // HTTP/2 has no key: the proxy makes one
		}
		vx, _ := joinValues(x.Headers, h)
		vy, _ := joinValues(y.Headers, h)
		if vx != vy && !absentCut(x, h) && !absentCut(y, h) {
			ev = append(ev, headerEv(lx, h, x.Headers), headerEv(ly, h, y.Headers))
		}
	}
	if len(ev) > 0 {
		j.add(WSHeaderAltered, i, ev...)
	}
	if !strings.EqualFold(hostOf(x), hostOf(y)) && !absentCut(x, hostName(x)) && !absentCut(y, hostName(y)) {
		j.add(HostRewritten, i, headerEv(lx, hostName(x), x.Headers), headerEv(ly, hostName(y), y.Headers))
	}
	if pathOf(x.Target) != pathOf(y.Target) {
		j.add(PathRewritten, i, lx+" request line: "+requestLine(x), ly+" request line: "+requestLine(y))
	}
}

// noUpstreamRules judges an attempt whose client leg has no upstream leg
// in the capture: the proxy answered itself, could not connect, or the
// upstream leg was not captured.
func (j *judgement) noUpstreamRules() {
	A := j.chain[0]
	leg, rleg := j.legName(0)
	if A.resp == nil {
		j.noResponse(leg, rleg)
		return
	}
	if j.proxyTooLarge() {
		return
	}
	st := A.resp.Status
	sl := rleg + ": " + statusLine(A.resp)
	switch {
	case A.switched():
		j.check101(0)
		if l := j.a.openUpstreamTLS(A); l != nil {
			j.addNote(EncryptedLeg, 0, fmt.Sprintf("proxy→backend: TLS from %s to %s (proxy_pass https://), no keys: the upstream leg cannot be read; judged from the client leg", l.conn.Client, l.conn.Server))
		} else if j.a.hasUpstreamLegs || j.proxyEvident() {
			j.add(Unpaired, 0, sl, leg+": no matching request on an upstream leg in the capture"+j.offWireNote())
		}
	case len(j.upTLS) > 0:
		j.upstreamTLSRules(sl)
	case j.relayedRefusal():
	case len(j.connect) > 0 && (st == 502 || st == 504 || st == 503):
		ev := []string{sl + j.generatedNote()}
		for _, c := range j.connect {
			ev = append(ev, connectEvidence(c))
		}
		j.add(UpstreamConnectFailed, 0, ev...)
	case st >= 300 && st < 400:
		ev := []string{sl}
		if loc, ok := A.resp.Headers.Get("Location"); ok {
			ev = append(ev, rleg+": Location: "+loc)
		}
		j.add(Redirected, 0, ev...)
	case caddyEmpty(A.resp) && !j.a.proxied[A.req.Server]:
		// No upstream leg of this Caddy anywhere in the capture, but an
		// empty 200 from Caddy to an upgrade is its own answer.
		j.add(ProxyRejected, 0, append([]string{sl + " (Caddy's own empty answer: no site or route matched the request)",
			"proxy→backend: no request for this attempt"}, j.selfAnswerEvidence()...)...)
		j.cause = j.selfAnswerCause()
	case j.offWire && strings.HasPrefix(j.generatedBy, "nginx") && st == 502 && A.resp.Start.Sub(A.req.End) < 50*time.Millisecond:
		// nginx's own 502 at once, and none of its upstream legs on the
		// wire: it could not connect (a unix socket that is missing,
		// refused or not writable is the common case).
		j.add(UpstreamConnectFailed, 0, sl+j.generatedNote(),
			fmt.Sprintf("%s: the 502 came %s after the request: nginx did not wait for an upstream answer", rleg, dur(A.resp.Start.Sub(A.req.End))),
			"proxy→backend: not on the wire"+j.offWireNote()+"; judged from the client leg (medium confidence: an upstream that accepted and closed at once looks the same)")
	case (st == 500 || st == 503) && j.atCapacity(statusLine(A.resp)+j.generatedNote()):
	case j.generatedBy != "" || st >= 500:
		ev := []string{sl + j.generatedNote(), "proxy→backend: no request for this attempt (no upstream leg, no connect attempt)"}
		if j.a.proxied[A.req.Server] {
			ev[1] = fmt.Sprintf("proxy→backend: no request for this attempt (no connect attempt), while other requests through %s show theirs", A.req.Server)
		}
		j.add(ProxyRejected, 0, append(ev, j.selfAnswerEvidence()...)...)
		j.cause = j.selfAnswerCause()
	case j.a.proxied[A.req.Server]:
		// Other attempts through this proxy show their upstream legs in the
		// capture, this one has none: the proxy answered itself (with a
		// page of its own configuration, so no built-in signature).
		ev := []string{sl, fmt.Sprintf("proxy→backend: no request for this attempt, while other requests through %s show theirs", A.req.Server)}
		j.add(ProxyRejected, 0, append(ev, j.selfAnswerEvidence()...)...)
		j.cause = j.selfAnswerCause()
	default:
		// An answer that is not a proxy's own page, with no upstream leg to
		// compare: the cause hides on the missing leg.
		j.add(Unpaired, 0, sl, leg+": no matching request on an upstream leg in the capture"+j.offWireNote())
		if st >= 200 && st < 300 {
			j.add(BackendNotWebSocket, 0, sl)
		}
	}
}

func (j *judgement) generatedNote() string {
	if j.generatedBy != "" {
		return " (the " + j.generatedBy + " error page: generated by the proxy)"
	}
	return ""
}

// noResponse: the client's leg got no response.
func (j *judgement) noResponse(leg, rleg string) {
	A := j.chain[0]
	e := A.end
	switch {
	case e == nil || e.Reason == reassembly.EndCapture:
		j.add(Unpaired, 0, leg+": request at "+ts(A.req.Start)+", no response before the capture ended")
	default:
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
			if j.atCapacity(what) {
				return
			}
		}
		j.add(ProxyRejected, 0, fmt.Sprintf("%s: no response; %s closed the connection (%s) %s after the request", rleg, who, c.Kind, dur(c.Time.Sub(A.req.Start))))
	}
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

// backendRules judge the last leg: what the backend did with the request.
func (j *judgement) backendRules() {
	n := len(j.chain)
	L := j.chain[n-1]
	A := j.chain[0]
	leg, rleg := j.legName(n - 1)
	if L.resp == nil {
		e := L.end
		if e == nil || e.Reason == reassembly.EndCapture {
			if A.resp != nil && A.resp.Status == 504 {
				j.add(UpstreamTimeout, n-1, leg+": request at "+ts(L.req.Start)+", no response", "proxy→client: "+statusLine(A.resp))
			}
			return
		}
		side, c := e.FirstClose()
		if side == reassembly.SideServer {
			j.add(UpstreamClosedEarly, n-1, fmt.Sprintf("%s: the backend closed the connection (%s) %s after the request, without a response",
				rleg, c.Kind, dur(c.Time.Sub(L.req.End))))
		} else {
			j.add(UpstreamTimeout, n-1, fmt.Sprintf("%s: no response; the proxy gave up and closed the backend leg (%s) %s after the request",
				leg, c.Kind, dur(c.Time.Sub(L.req.End))))
		}
		return
	}
	st := L.resp.Status
	sl := rleg + ": " + statusLine(L.resp)
	switch {
	case st == 101:
		j.check101(n - 1)
	case st >= 400 && schemeMismatchBody(L.resp.Body):
		j.upSchemePlain = true
		j.add(UpstreamSchemeMismatch, n-1, sl, rleg+" body: "+quoteBody(L.resp.Body))
	case st >= 400:
		j.refusalRules()
		if correctUpgrade(L.req) {
			ev := []string{sl}
			if b := strings.TrimSpace(L.resp.Body); b != "" {
				ev = append(ev, rleg+" body: "+quoteBody(b))
			}
			ev = append(ev, j.connectionList()...)
			j.add(BackendRejected, n-1, ev...)
		}
	default:
		if correctUpgrade(L.req) {
			j.add(BackendNotWebSocket, n-1, sl)
		}
	}
}

// check101 verifies a 101 on leg i against its request.
func (j *judgement) check101(i int) {
	x := j.chain[i]
	_, rleg := j.legName(i)
	key, _ := x.req.Headers.Get("Sec-WebSocket-Key")
	got, present := x.resp.Headers.Get("Sec-WebSocket-Accept")
	if key == "" {
		return
	}
	want := AcceptFor(strings.TrimSpace(key))
	if !present {
		if !x.resp.Truncated {
			j.missingAccept = true
			j.add(BadAccept, i, fmt.Sprintf("%s: no Sec-WebSocket-Accept header (expected %s for key %s)", rleg, want, key))
		}
		return
	}
	if strings.TrimSpace(got) != want {
		j.add(BadAccept, i, fmt.Sprintf("%s: Sec-WebSocket-Accept: %s (expected %s for key %s)", rleg, got, want, key))
	}
}

// proxyResponseRules compare what leg i+1 answered with what the proxy
// told leg i.
func (j *judgement) proxyResponseRules(i int) {
	x, y := j.chain[i], j.chain[i+1]
	_, rx := j.legName(i)
	_, ry := j.legName(i + 1)
	if x.resp == nil || y.resp == nil {
		return
	}
	switch {
	case y.switched() && !x.switched():
		j.add(ResponseAltered, i, ry+": "+statusLine(y.resp), rx+": "+statusLine(x.resp))
	case x.switched() && x.resp.Status != 101: // a 2xx on an HTTP/2 stream: nothing more to check
	case x.resp.Status == 101 && !x.resp.Headers.HasToken("Upgrade", "websocket") && !(x.resp.Truncated && !hasHeader(x.resp.Headers, "Upgrade")):
		j.add(ResponseAltered, i, headerEv(rx, "Upgrade", x.resp.Headers))
	case x.resp.Status == 101:
		j.check101(i)
	case x.resp.Status != y.resp.Status && y.resp.Status >= 200:
		j.add(ResponseAltered, i, ry+": "+statusLine(y.resp), rx+": "+statusLine(x.resp))
	}
}

func ts(t time.Time) string { return t.UTC().Format("15:04:05.000") }

func dur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// verdict picks the primary code and assembles the Verdict.
func (j *judgement) verdict() *Verdict {
	A := j.chain[0]
	n := len(j.chain)
	L := j.chain[n-1]
	v := &Verdict{Time: A.req.Start, Client: A.req.Client, Path: A.req.Target, PairConfidence: ConfNone}
	if n > 1 {
		v.Proxy = A.req.Server
		v.Backend = L.req.Server
		v.PairConfidence = A.conf
		if L.resp != nil {
			v.StatusBackend = L.resp.Status
		}
	} else {
		if j.proxyEvident() {
			v.Proxy = A.req.Server
		} else {
			v.Backend = A.req.Server
		}
		if len(j.connect) > 0 {
			v.Backend = j.connect[0].Server
		}
	}
	if A.resp != nil {
		v.StatusClient = A.resp.Status
	}
	v.ProxyProduct = j.product
	succeeded := A.switched()

	primary := j.primary()
	if primary == nil {
		v.Code, v.Severity, v.Hop = OK, SevOK, HopNone
	} else {
		ci := rowOf(primary.code)
		v.Code, v.Severity, v.Hop = primary.code, ci.sev, ci.hop
		if primary.at != "" {
			v.Hop = primary.at
		}
		if primary.code == UpstreamHTTP10 && !succeeded {
			v.Severity = SevError
		}
		if primary.hop+1 < n && (ci.stage == stageProxyRequest || ci.stage == stageProxyResponse) {
			v.Proxy = j.chain[primary.hop].req.Server
			v.ProxyProduct = productAt(j.chain, primary.hop, true)
		}
	}
	// findings: primary first, then the rest in path order
	nev := 3 * n
	for _, f := range j.findings {
		nev += len(f.evidence)
	}
	v.Findings = make([]Code, 0, len(j.findings))
	v.Evidence = make([]string, 0, nev)
	v.Legs = make([]Leg, 0, n)
	if primary != nil {
		v.Findings = append(v.Findings, primary.code)
		v.Evidence = append(v.Evidence, primary.evidence...)
	}
	for _, f := range j.findings {
		if primary != nil && f.code == primary.code {
			continue
		}
		v.Findings = append(v.Findings, f.code)
		v.Evidence = append(v.Evidence, f.evidence...)
	}
	// The statuses on every leg close the evidence, when not quoted yet.
	// Requests in the order they travelled, then the answers in theirs
	// (backend first).
	for i, x := range j.chain {
		l, _ := j.legName(i)
		v.Legs = append(v.Legs, legOf(x))
		if j.midstream {
			continue // no request, no status line
		}
		if !containsPrefix2(v.Evidence, l, " request line:") {
			v.Evidence = append(v.Evidence, l+" request line: "+v.Legs[i].RequestLine)
		}
	}
	for i := n - 1; i >= 0; i-- {
		x := j.chain[i]
		_, rl := j.legName(i)
		if x.resp == nil || j.midstream {
			continue
		}
		if sl := rl + ": " + v.Legs[i].StatusLine; !containsPrefix(v.Evidence, sl) {
			v.Evidence = append(v.Evidence, sl)
		}
	}
	for i := n - 1; i >= 0; i-- {
		_, rl := j.legName(i)
		if r := j.chain[i].resp; r == nil || r.Status < 400 || containsPrefix2(v.Evidence, rl, " body:") {
			continue
		}
		if b := bodyEvidence(rl, j.chain[i].resp); b != "" {
			v.Evidence = append(v.Evidence, b)
		}
	}
	v.Evidence = collapse(v.Evidence)
	for _, c := range j.connect {
		v.Connects = append(v.Connects, connectOf(c))
	}
	v.Session = j.sessionFigures()
	v.ErrorLog, v.Fix = advice(v, j)
	v.Config = j.config
	v.Fix = configFix(v, v.Fix)
	v.End = j.end()
	return v
}

// containsPrefix2 is containsPrefix(ss, a+b) without building a+b.
func containsPrefix2(ss []string, a, b string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, a) && strings.HasPrefix(s[len(a):], b) {
			return true
		}
	}
	return false
}

func containsPrefix(ss []string, p string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func legOf(x *exchange) Leg {
	l := Leg{Client: x.req.Client, Server: x.req.Server, Proto: legProto(x.req), RequestLine: requestLine(x.req), RequestHeaders: x.req.Headers, RequestCut: x.req.Truncated}
	if x.resp != nil {
		l.ResponseCut = x.resp.Truncated
		l.StatusLine = statusLine(x.resp)
		l.Status = x.resp.Status
		l.ResponseHeaders = x.resp.Headers
		l.Times.Response = x.resp.Start
	}
	l.Times.Request = x.req.Start
	if e := x.end; e != nil {
		t := &l.Times
		t.Open, t.SYN, t.SYNACK, t.Last, t.OpenAtEnd = e.First, e.SYN, e.SYNACK, e.Last, e.Reason == reassembly.EndCapture
		t.ClientEnd, t.ClientEndKind = e.ClientClose.Time, e.ClientClose.Kind.String()
		t.ServerEnd, t.ServerEndKind = e.ServerClose.Time, e.ServerClose.Kind.String()
		if ws := e.WS; ws != nil {
			t.FirstFrameC2S, t.FirstFrameS2C = ws.C2S.First, ws.S2C.First
			t.CloseFrameC2S, t.CloseFrameS2C = ws.C2S.CloseAt, ws.S2C.CloseAt
			t.CloseCodeC2S, t.CloseCodeS2C = ws.C2S.CloseCode, ws.S2C.CloseCode
		}
	}
	return l
}

func connectOf(e *reassembly.ConnEnd) Connect {
	c := Connect{Client: e.Client, Server: e.Server, Start: e.First, Last: e.Last, SYNACK: e.SYNACK}
	if e.ServerClose.Kind != reassembly.CloseNone {
		c.End = e.ServerClose.Kind.String()
	}
	return c
}

// plain describes an exchange that is not a WebSocket attempt (--all).
func plain(chain []*exchange) *Verdict {
	A := chain[0]
	n := len(chain)
	v := &Verdict{Time: A.req.Start, Code: PlainHTTP, Severity: SevInfo, Hop: HopNone, Findings: []Code{PlainHTTP},
		Client: A.req.Client, Path: A.req.Target, PairConfidence: ConfNone}
	if n > 1 {
		v.Proxy, v.Backend, v.PairConfidence = A.req.Server, chain[n-1].req.Server, A.conf
		if r := chain[n-1].resp; r != nil {
			v.StatusBackend = r.Status
		}
	} else {
		v.Backend = A.req.Server
	}
	if A.resp != nil {
		v.StatusClient = A.resp.Status
	}
	for _, x := range chain {
		v.Legs = append(v.Legs, legOf(x))
	}
	return v
}

// collapse folds repeated evidence lines in a row (a proxy retrying its
// connect) into one with a count, and drops a line quoted again later by
// another finding.
func collapse(ev []string) []string {
	out := ev[:0]
	seen := make(map[string]bool, len(ev))
	for i := 0; i < len(ev); {
		j := i + 1
		for j < len(ev) && ev[j] == ev[i] {
			j++
		}
		switch {
		case seen[ev[i]]:
		case j-i > 1:
			out = append(out, fmt.Sprintf("%s (×%d)", ev[i], j-i))
		default:
			out = append(out, ev[i])
		}
		seen[ev[i]] = true
		i = j
	}
	return out
}

// strippedUpstream: a request with a WebSocket client's Sec-WebSocket-Key
// but no Upgrade: websocket is a proxy's upstream request (clients that
// make a key send Upgrade), whose client leg is not in the capture.
func strippedUpstream(r *reassembly.Request) bool {
	k, _ := r.Headers.Get("Sec-WebSocket-Key")
	return validKey(k) && !r.Headers.HasToken("Upgrade", "websocket") && !r.Truncated
}

// judgeUpstreamOnly judges an attempt from the upstream legs alone: the
// client's leg is TLS without keys (encrypted) or not in the capture.
func (j *judgement) judgeUpstreamOnly() *Verdict {
	n := len(j.chain)
	x := j.chain[0]
	leg, _ := j.legName(0)
	r := x.req
	if _, key := r.Headers.Get("Sec-WebSocket-Key"); key && !r.Headers.HasToken("Upgrade", "websocket") {
		j.add(UpgradeHeaderDropped, 0, headerEv(leg, "Upgrade", r.Headers)+", yet the request carries the client's Sec-WebSocket-Key: the proxy dropped the client's Upgrade")
	}
	if !r.Headers.HasToken("Connection", "upgrade") {
		j.add(ConnectionNotUpgrade, 0, headerEv(leg, "Connection", r.Headers))
	}
	if r.Version == "HTTP/1.0" {
		j.add(UpstreamHTTP10, 0, leg+" request line: "+requestLine(r))
	}
	for i := 0; i+1 < n; i++ {
		j.proxyRequestRules(i)
	}
	j.backendRules()
	for i := n - 2; i >= 0; i-- {
		j.proxyResponseRules(i)
	}
	j.sessionRules()
	if j.encrypted != nil {
		j.addNote(EncryptedLeg, 0, encryptedEvidence(j.encrypted)...)
		j.keylessH2Note()
	} else if j.lone && !strippedUpstream(r) {
		j.add(Unpaired, 0, fmt.Sprintf("client→proxy: not in the capture; %s is an --upstream backend, so %s→%s is a proxy's upstream leg (capture the client's side too: --client-ports, -i any, or a filter with the proxy's port)",
			r.Server, r.Client, r.Server))
	} else {
		j.addNote(Unpaired, 0, fmt.Sprintf("client→proxy: not in the capture; %s→%s carries a WebSocket client's Sec-WebSocket-Key without Upgrade, so it is a proxy's upstream request (capture the client's side too: -i any, or a filter with the proxy's port)",
			r.Client, r.Server))
	}
	// The backend's answers tell nothing of the proxy; nginx's default
	// upstream request (HTTP/1.0, Connection: close) does.
	j.product = ""
	if r.Version == "HTTP/1.0" && r.Headers.HasToken("Connection", "close") {
		j.product = "nginx (guessed from its default upstream request)"
	}
	j.cutRules()
	v := j.verdict()
	if j.encrypted != nil {
		v.Client, v.Proxy = j.encrypted.conn.Client, j.encrypted.conn.Server
		v.PairConfidence = j.encConf
	} else {
		// the proxy's own upstream socket is all the capture shows of it
		v.Client, v.Proxy, v.PairConfidence = netip.AddrPort{}, r.Client, ConfNone
	}
	v.StatusClient = 0 // not seen
	if L := j.chain[n-1]; L.resp != nil {
		v.StatusBackend = L.resp.Status
	}
	v.Backend = j.chain[n-1].req.Server
	return v
}

// primary is the finding that gives the verdict its code, or nil (ok):
// the one at the earliest stage of the handshake's path, of a stage the
// earlier row in the code table; notes never. When nothing else holds and
// the attempt failed (or its one leg is an upstream leg), cannot_tell or
// unpaired says what hid the cause.
func (j *judgement) primary() *finding {
	var p *finding
	for i := range j.findings {
		f := &j.findings[i]
		r := rowOf(f.code)
		if r.note || f.note {
			continue
		}
		if p == nil || r.stage < rowOf(p.code).stage || r.stage == rowOf(p.code).stage && codeIndex(f.code) < codeIndex(p.code) {
			p = f
		}
	}
	if p != nil || j.chain[0].switched() && !j.lone {
		return p
	}
	for i := range j.findings {
		if c := j.findings[i].code; c == Unpaired && p == nil || c == CannotTell {
			p = &j.findings[i]
		}
	}
	return p
}
