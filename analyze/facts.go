package analyze

// Facts are what the legs of an attempt show, computed once by observe
// before any rule runs, one type per leg and phase, each beside the rules
// that read it: the proxy the client talks to (proxyFacts, here), the
// client's request (clientFacts, client.go; h2Facts, h2.go), each proxy
// hop's request and answer against the next leg's (hopFacts, proxyhop.go),
// every leg's 101 (acceptState, handshake.go), a client's leg alone and
// the proxy's upstream connects behind it (aloneFacts, connectFacts,
// alone.go), the backend's answer (backendFacts, backend.go), the session
// after the 101 (sessionFacts, session.go), what the snap length cut
// (cutFacts, cut.go), a session whose handshake came before the capture
// (midFacts, midstream.go); later, the proxy's configuration block
// (configFacts, config.go) and what other connections show (crossFacts,
// crossrules.go).

// proxyFacts are what the answers tell of the proxy the client talks to.
type proxyFacts struct {
	// generatedBy names the proxy product whose own error page leg 0 got.
	generatedBy string
	// product is what leg 0's answers tell of the proxy ("nginx/1.22.1");
	// from an upstream request alone, a guess; mid-session, what the
	// handshakes of other sessions through that proxy told.
	product string
	// proxied: other requests through this server went upstream in the
	// capture: it is a proxy, whatever its answers say.
	proxied bool
	// evident: with one leg only, a proxy shows: its error page, its
	// product, a backend's refusal it relayed, its connect attempts.
	evident bool
}

// observe makes an attempt of a chain of legs and computes its facts.
// Observing is also where an attempt takes what only it may use: the TLS
// connections its proxy opened upstream.
func observe(chain []*exchange, an *Analyzer, enc *tlsLeg, encConf Confidence) *attempt {
	a := newAttempt(chain, an, fromClient)
	a.enc, a.encConf = enc, encConf
	// --upstream names this leg's server: it is a proxy's upstream leg
	// whose client leg is missing, whatever its headers say.
	a.lone = enc == nil && len(chain) == 1 && len(an.opt.Upstreams) > 0 && an.upstreamAllowed(chain[0])
	if enc != nil || strippedUpstream(chain[0].req) || a.lone {
		a.kind = fromUpstream
	}
	if a.kind == fromClient {
		a.observeClientSide()
	} else {
		a.proxy.product = upstreamProduct(chain[0])
		a.proxy.evident = a.proxy.product != ""
	}
	a.observeLegs()
	return a
}

// newAttempt makes an attempt of kind with no facts observed yet.
func newAttempt(chain []*exchange, an *Analyzer, k kind) *attempt {
	a := &attempt{chain: chain, an: an, kind: k}
	a.findings = a.foundBuf[:0]
	return a
}

// observeClientSide computes what the client's leg shows: of the proxy
// it talks to, of its request, and, alone, of who answered it.
func (a *attempt) observeClientSide() {
	A := a.chain[0]
	p := &a.proxy
	if A.resp != nil {
		p.generatedBy = proxySignature(A.resp)
	}
	p.proxied = a.an.proxied[A.req.Server]
	alone := len(a.chain) == 1
	if alone {
		a.connect = a.observeConnect()
	}
	p.product = productAt(a.chain, 0, len(a.connect.failed) > 0 || p.proxied)
	if alone && A.resp != nil && caddyEmpty(A.resp) {
		p.product = "Caddy" // its own answer: Caddy is a proxy here
	}
	if alone && A.resp != nil && p.product == "" {
		p.product = guessProduct(A.resp)
	}
	a.client = clientFactsOf(a)
	if alone {
		a.alone = a.observeAlone()
		p.evident = p.generatedBy != "" || len(a.connect.failed) > 0 || p.product != "" || a.alone.relayed
	}
}

// observeLegs computes the facts of the legs themselves: with a
// handshake in the capture, its hops, its legs' 101s, its backend and
// what the capture cut of it; and the session after the 101.
func (a *attempt) observeLegs() {
	if a.kind&handshake != 0 {
		n := len(a.chain)
		a.hops = a.hopBuf[:0]
		for i := 0; i+1 < n; i++ {
			a.hops = append(a.hops, hopFactsOf(a.chain, i))
		}
		a.accepts = a.acceptBuf[:0]
		for _, x := range a.chain {
			a.accepts = append(a.accepts, checkAccept(x))
		}
		if n > 1 || a.kind == fromUpstream {
			a.backend = backendFactsOf(a.chain)
		}
		a.cut = cutFactsOf(a.chain)
	}
	a.session = a.observeSession()
}

// upstreamProduct is what an upstream request alone tells of the proxy
// that sent it: the backend's answers tell nothing of it; nginx's default
// upstream request (HTTP/1.0, Connection: close) does.
func upstreamProduct(x *exchange) string {
	if r := x.req; r.Version == "HTTP/1.0" && r.Headers.HasToken("Connection", "close") {
		return "nginx (guessed from its default upstream request)"
	}
	return ""
}
