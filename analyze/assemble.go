package analyze

import "github.com/wsdiag/wsdiag/reassembly"

// verdict assembles the attempt's Verdict from its findings: the primary
// one gives the code, the hop and the proxy blamed; every finding's
// evidence follows, then what each leg showed; the advice and the fix
// come from the primary code's row.
func (a *attempt) verdict() *Verdict {
	v := a.addresses()
	p := a.primary()
	a.blame(v, p)
	a.evidence(v, p)
	for _, c := range a.connect.failed {
		v.Connects = append(v.Connects, connectOf(c))
	}
	v.Session = a.sessionFigures()
	v.ErrorLog, v.Fix = rowOf(v.Code).advice(v, a, p)
	v.Config = a.config.block
	v.Fix = configFix(v, v.Fix)
	v.End = a.end()
	if a.kind == fromUpstream {
		// The advice above named the ends as any chain's (leg 0's server
		// as the proxy); the verdict names the client's unseen side.
		a.upstreamAddresses(v)
	}
	return v
}

// addresses starts a verdict with who is who and what each end answered.
func (a *attempt) addresses() *Verdict {
	A := a.chain[0]
	n := len(a.chain)
	L := a.chain[n-1]
	v := &Verdict{Time: A.req.Start, Client: A.req.Client, Path: A.req.Target, PairConfidence: ConfNone}
	if n > 1 {
		v.Proxy = A.req.Server
		v.Backend = L.req.Server
		v.PairConfidence = A.conf
		if L.resp != nil {
			v.StatusBackend = L.resp.Status
		}
	} else {
		if a.proxyEvident() {
			v.Proxy = A.req.Server
		} else {
			v.Backend = A.req.Server
		}
		if c := a.connect.failed; len(c) > 0 {
			v.Backend = c[0].Server
		}
	}
	if A.resp != nil {
		v.StatusClient = A.resp.Status
	}
	v.ProxyProduct = a.proxy.product
	return v
}

// blame gives the verdict the primary finding's code, severity and hop
// (ok when there is none), and the proxy of the hop it blames.
func (a *attempt) blame(v *Verdict, p *finding) {
	if p == nil {
		v.Code, v.Severity, v.Hop = OK, SevOK, HopNone
		return
	}
	r := rowOf(p.code)
	v.Code, v.Severity, v.Hop = p.code, r.sev, r.hop
	if p.atBackend {
		v.Hop = HopBackend
	}
	if p.code == UpstreamHTTP10 && !a.chain[0].switched() {
		v.Severity = SevError
	}
	if i := int(p.hop); i+1 < len(a.chain) && (r.stage == stageProxyRequest || r.stage == stageProxyResponse) {
		v.Proxy = a.chain[i].req.Server
		v.ProxyProduct = productAt(a.chain, i, true)
	}
}

// evidence lists the findings, the primary first and then the rest in
// path order, and their evidence; the legs' request lines, statuses and
// error bodies close it where no finding quoted them.
func (a *attempt) evidence(v *Verdict, p *finding) {
	n := len(a.chain)
	nev := 3 * n
	for _, f := range a.findings {
		nev += len(f.evidence)
	}
	v.Findings = make([]Code, 0, len(a.findings))
	v.Evidence = make([]string, 0, nev)
	v.Legs = make([]Leg, 0, n)
	if p != nil {
		v.Findings = append(v.Findings, p.code)
		v.Evidence = append(v.Evidence, p.evidence...)
	}
	for _, f := range a.findings {
		if p != nil && f.code == p.code {
			continue
		}
		v.Findings = append(v.Findings, f.code)
		v.Evidence = append(v.Evidence, f.evidence...)
	}
	for _, x := range a.chain {
		v.Legs = append(v.Legs, legOf(x))
	}
	if a.kind != midSession { // no request, no status line
		v.Evidence = a.legEvidence(v.Evidence, v.Legs)
	}
	v.Evidence = collapse(v.Evidence)
}

// legEvidence adds to ev the requests in the order they travelled, then
// the answers in theirs (backend first), then the bodies of error
// answers, each where no finding quoted it.
func (a *attempt) legEvidence(ev []string, legs []Leg) []string {
	n := len(a.chain)
	for i := range a.chain {
		if l, _ := a.legName(i); !containsPrefix2(ev, l, " request line:") {
			ev = append(ev, l+" request line: "+legs[i].RequestLine)
		}
	}
	ev = a.nodeEvidence(ev)
	for i := n - 1; i >= 0; i-- {
		if a.chain[i].resp == nil {
			continue
		}
		_, rl := a.legName(i)
		if sl := rl + ": " + legs[i].StatusLine; !containsPrefix(ev, sl) {
			ev = append(ev, sl)
		}
	}
	for i := n - 1; i >= 0; i-- {
		_, rl := a.legName(i)
		if r := a.chain[i].resp; r == nil || r.Status < 400 || containsPrefix2(ev, rl, " body:") {
			continue
		}
		if b := bodyEvidence(rl, a.chain[i].resp); b != "" {
			ev = append(ev, b)
		}
	}
	return ev
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
