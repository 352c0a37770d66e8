package analyze

import (
	"net/netip"
	"sort"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Options configure an Analyzer.
type Options struct {
	// Upstreams, when set, are the only servers that count as upstream legs.
	Upstreams []netip.AddrPort
	// All reports plain HTTP exchanges too.
	All bool
	// Grace is how long after an attempt settles the analyzer waits for the
	// other legs' events before deciding it (live capture).
	Grace time.Duration
	// MaxPending caps exchanges kept while they wait to be paired.
	MaxPending int
	// WaitSession decides an upgraded attempt only when its connection
	// ends, so the verdict covers the session (reading files). Live
	// capture decides at the handshake instead.
	WaitSession bool
	// Events, when set, receives findings about many attempts at once
	// (mass_close) as soon as they are decided.
	Events func(*Event)
	// Config, when set, names the proxy configuration block of each
	// attempt (config.go).
	Config ConfigLocator
	// Memory, when set, is the analyzer's share of a byte budget: past it
	// the oldest waiting exchanges are decided early.
	Memory Memory
	// ClientLegOnly, when set, says why the client's leg is all there is
	// to judge by design (a probe that does not capture) and what would
	// show more; it replaces the guesses about an upstream leg off the
	// wire (a unix socket, an interface not captured).
	ClientLegOnly string
	// Explain keeps the findings that matter only where the attempt
	// failed because of them: host_rewritten on a hop whose backend
	// accepted the upgrade (or did not answer) is recorded only then
	// (-vv).
	Explain bool
	// Assemblers, when above 0, is how many goroutines assemble verdicts
	// (emit.go): out and Events are then called from another goroutine
	// than the analyzer's (one at a time, in order), until Finish returns.
	Assemblers int
}

// DefaultOptions are what the command line starts from.
var DefaultOptions = Options{Grace: time.Second, MaxPending: 100000}

// exchange is one request on one hop, with its response and connection end.
type exchange struct {
	req  *reassembly.Request
	resp *reassembly.Response
	end  *reassembly.ConnEnd
	// up is the exchange this proxy hop opened upstream for it; down the
	// one it serves.
	up, down *exchange
	conf     Confidence
	decided  bool
	// key is the request's Sec-WebSocket-Key ("" when none), looked up once.
	key string
	// mem is what x was charged to the budget (cost).
	mem int64
	// What pairing compares, taken from the request once: pairing asks
	// about each candidate many times.
	path, ua, origin string
	hasUA, hasOrigin bool
	xff              []netip.Addr // X-Forwarded-For and X-Real-IP
}

// settled reports whether nothing more is expected on this exchange's own
// connection, and when that happened: its answer, or with waitSession
// the end of an upgraded connection.
func (x *exchange) settled(waitSession bool) (time.Time, bool) {
	switch {
	case waitSession && x.switched():
		if x.end == nil {
			return time.Time{}, false
		}
		return x.end.Last, true
	case x.resp != nil:
		return x.resp.End, true
	}
	return x.answeredAt() // no answer: when its connection ended, if it has
}

// Analyzer is a reassembly.Sink that yields verdicts.
type Analyzer struct {
	opt  Options
	sink *emitter
	// xs holds undecided exchanges sorted by request start; byKey indexes
	// them by Sec-WebSocket-Key (see pending.go).
	xs    []*exchange
	byKey map[string][]*exchange
	byReq map[*reassembly.Request]*exchange
	// open maps a connection to its exchanges until the connection ends.
	open map[reassembly.ConnID][]*exchange
	// connects are recent connection attempts that carried no data.
	connects []*reassembly.ConnEnd
	// hasUpstreamLegs: some attempt was seen on more than one hop, so the
	// capture does hold upstream legs.
	hasUpstreamLegs bool
	// proxied holds the servers (proxies) whose upstream legs were seen,
	// routes the Hosts and paths they sent upstream.
	proxied map[netip.AddrPort]bool
	routes  map[netip.AddrPort]*routes
	// tlsLegs are TLS connections by ID, while they may still be paired;
	// byRandom the completed keyless ones by ClientHello random, until the
	// leg that relays the same handshake ends (passthrough.go).
	tlsLegs  map[reassembly.ConnID]*tlsLeg
	byRandom map[[32]byte]*tlsLeg
	// tlsFronts are the addresses of proxies whose opaque TLS client legs
	// were paired with upstream requests (unseen.go).
	tlsFronts map[netip.AddrPort]bool
	// sawH2WS: an HTTP/2 extended CONNECT was seen; such a client leg has
	// no key, so keyed upstream legs must be looked at without one.
	sawH2WS bool
	// encWait are attempts waiting to be paired with an opaque TLS leg.
	encWait []*encWait
	// cross is the state across connections (crossconn.go).
	cross *crossState
	// listeners: what each server did with the requests it got
	// (proxyproto.go: a listener that closes on every request).
	listeners map[netip.AddrPort]*listenerState
	// closeOnly are bare FINs and RSTs of connections the capture holds
	// nothing else of, until judged (idlecut.go).
	closeOnly []*reassembly.CloseOnly
	mid       midState // sessions whose handshake is not in the capture (midstream.go)
	stats     Stats
	// xsMem estimates what the undecided exchanges hold; charged, what
	// the budget was last charged.
	xsMem, charged int64
	tlsMem         int64 // what the TLS legs hold
}

// Stats count what the analyzer did.
type Stats struct {
	Exchanges uint64
	Attempts  uint64
	Plain     uint64 // plain exchanges reported (--all)
	Evicted   uint64 // exchanges dropped unpaired because MaxPending was hit
	// MemEvicted counts exchanges decided early because the memory budget
	// was reached.
	MemEvicted uint64
	// TLSErrors counts TLS connections that could not be decrypted with
	// the keys given (wrong or missing keys); a few are described.
	TLSErrors       uint64
	TLSErrorSamples []string
	// NoHandshake counts the attempts that are sessions whose handshake
	// is not in the capture (among Attempts).
	NoHandshake uint64
	ByCode      map[Code]uint64
	BySev       map[Severity]uint64
	// CutBlocks counts header blocks the capture's snap length cut.
	CutBlocks uint64
	// TLSSelfAnswered counts opaque TLS client connections (no keys, no
	// plaintext) that carried a request and an answer and were paired
	// with no upstream request, to a proxy whose other TLS clients' were:
	// the proxy answered them itself, and what it said is unread.
	// TLSNoUpstream counts those to a proxy none of whose upstream
	// requests is in the capture (unseen.go).
	TLSSelfAnswered, TLSNoUpstream uint64
}

// New returns an Analyzer that calls out for every verdict.
func New(opt Options, out func(*Verdict)) *Analyzer {
	if opt.MaxPending <= 0 {
		opt.MaxPending = DefaultOptions.MaxPending
	}
	return &Analyzer{opt: opt, sink: newEmitter(out, opt.Events, opt.Assemblers), byReq: map[*reassembly.Request]*exchange{}, byKey: map[string][]*exchange{}, open: map[reassembly.ConnID][]*exchange{}, proxied: map[netip.AddrPort]bool{}, routes: map[netip.AddrPort]*routes{}, tlsLegs: map[reassembly.ConnID]*tlsLeg{}, cross: newCrossState(),
		stats: Stats{ByCode: map[Code]uint64{}, BySev: map[Severity]uint64{}}}
}

// out puts out a verdict.
func (a *Analyzer) out(v *Verdict) { a.sink.verdict(v) }

// Stats returns counters; ByCode and BySev count decided attempts.
func (a *Analyzer) Stats() Stats { return a.stats }

// Request implements reassembly.Sink.
func (a *Analyzer) Request(r *reassembly.Request) {
	x := &exchange{req: r}
	x.key, _ = r.Headers.Get("Sec-WebSocket-Key")
	x.path = pathOf(r.Target)
	x.ua, x.hasUA = r.Headers.Get("User-Agent")
	x.origin, x.hasOrigin = r.Headers.Get("Origin")
	x.xff = forwardedAddrsAll(r.Headers)
	a.stats.Exchanges++
	if h2WebSocket(r) {
		a.sawH2WS = true
	}
	if r.Cut {
		a.stats.CutBlocks++
	}
	if r.TLS {
		if l := a.tlsLegs[r.ID]; l != nil {
			l.decrypted = true
		}
	}
	a.insert(x)
	a.byReq[r] = x
	a.open[r.ID] = append(a.open[r.ID], x)
	if len(a.xs) > a.opt.MaxPending {
		a.evict()
	}
	if a.opt.Memory != nil {
		a.recost(x)
		a.account()
		a.shed(r.Start)
	}
}

// Response implements reassembly.Sink.
func (a *Analyzer) Response(r *reassembly.Response) {
	if r.Cut {
		a.stats.CutBlocks++
	}
	a.listenerAnswered(r.Server)
	if r.Request == nil {
		return // an answer to a request we did not see
	}
	if x := a.byReq[r.Request]; x != nil {
		x.resp = r
		a.recost(x)
		a.account()
	}
	switch {
	case r.Status == 101:
		a.cross.tunnelOpened(r)
	case r.Status == 200 && r.Body != "":
		if id := sessionIDFrom(r.Body); id != "" {
			a.cross.recordSID(id, r.Server)
		}
	case (r.Status == 400 || r.Status == 404) && unknownSession(r.Body):
		a.cross.recordRefusal(r)
	}
}

// ConnEnd implements reassembly.Sink.
func (a *Analyzer) ConnEnd(e *reassembly.ConnEnd) {
	a.listenerEnded(e)
	if e.WS != nil && e.WS.MidStream {
		a.midEnded(e)
		return
	}
	if e.TLS {
		a.tlsEnded(e)
	}
	if e.WS != nil {
		a.cross.tunnelClosed(e)
		a.cross.closed(e, a)
	}
	if xs, ok := a.open[e.ID]; ok {
		for _, x := range xs {
			x.end = e
			a.recost(x)
		}
		delete(a.open, e.ID)
		return
	}
	if !e.HTTP && !e.TLS && e.SYN {
		// A connect attempt without data: refused, unanswered or abandoned.
		a.connects = append(a.connects, e)
		if len(a.connects) > 4096 {
			a.connects = append(a.connects[:0], a.connects[len(a.connects)-2048:]...)
		}
	}
}

// evict drops the oldest exchanges when too many wait.
func (a *Analyzer) evict() {
	n := len(a.xs) / 10
	for _, x := range a.xs[:n] {
		if !x.decided {
			a.stats.Evicted++
			a.decide(x, true)
		}
	}
	a.compact()
}

// Decide judges every attempt that settled more than Grace before now
// (capture time). Live capture calls it as time passes.
func (a *Analyzer) Decide(now time.Time) {
	a.flushBursts(now)
	a.judgeIdleCuts(now, false)
	defer a.releaseHeld(now)
	cut := now.Add(-a.opt.Grace)
	// An exchange settles after its request started: those that started
	// after cut cannot be due, nor can they claim one that is.
	due := a.xs[:a.firstAfter(cut)]
	w := a.waiting(due)
	for _, x := range due {
		if x.decided {
			continue
		}
		t, ok := x.settled(a.opt.WaitSession)
		if !ok || t.After(cut) {
			continue
		}
		if a.mayBeUpstream(x, w) {
			continue
		}
		a.decide(x, false)
	}
	a.compact()
	a.pairEncrypted(now, false)
	if len(a.tlsLegs) > 0 {
		a.flushTLS(now, false) // after the attempts that may claim them
	}
	a.decideMid(now, false)
	a.account()
}

// Finish decides everything: the input is over.
func (a *Analyzer) Finish() {
	a.flushBursts(time.Time{})
	a.judgeIdleCuts(time.Time{}, true)
	// Pair everything first, then judge: whether a proxy's other requests
	// went upstream (a proxy answering itself, an upstream off the wire)
	// must not depend on which attempt the file holds first.
	var chains [][]*exchange
	for _, x := range a.xs {
		if !x.decided {
			chains = append(chains, a.pairChain(x))
		}
	}
	for _, c := range chains {
		a.judgeChain(c)
	}
	a.compact()
	a.pairEncrypted(time.Time{}, true)
	a.flushTLS(time.Time{}, true) // after the attempts that may claim them
	for id := range a.tlsLegs {
		a.dropTLS(id) // (counted, when nothing read them)
	}
	a.releaseHeld(time.Time{})
	a.decideMid(time.Time{}, true)
	a.account()
	a.sink.drain()
}

// compact forgets decided exchanges.
func (a *Analyzer) compact() {
	keep := a.xs[:0]
	for _, x := range a.xs {
		if x.decided {
			a.xsMem -= x.mem
			a.unindex(x)
			delete(a.byReq, x.req)
			if xs, ok := a.open[x.req.ID]; ok {
				a.open[x.req.ID] = removeX(xs, x)
				if len(a.open[x.req.ID]) == 0 {
					delete(a.open, x.req.ID)
				}
			}
			continue
		}
		keep = append(keep, x)
	}
	for i := len(keep); i < len(a.xs); i++ {
		a.xs[i] = nil
	}
	a.xs = keep
}

func removeX(xs []*exchange, x *exchange) []*exchange {
	for i, y := range xs {
		if y == x {
			return append(xs[:i], xs[i+1:]...)
		}
	}
	return xs
}

// decide builds x's chain of upstream legs and, when x is a WebSocket
// attempt at its root, judges it.
func (a *Analyzer) decide(x *exchange, final bool) {
	a.judgeChain(a.pairChain(x))
}

// pairChain claims x's upstream legs, hop by hop, and marks them decided.
func (a *Analyzer) pairChain(x *exchange) []*exchange {
	chain := []*exchange{x}
	for cur := x; ; {
		up := a.claimUpstream(cur)
		if up == nil {
			break
		}
		chain = append(chain, up)
		cur = up
	}
	for _, c := range chain {
		c.decided = true
	}
	if len(chain) > 1 {
		a.hasUpstreamLegs = true
		for _, x := range chain[:len(chain)-1] {
			if len(a.proxied) < 4096 {
				a.proxied[x.req.Server] = true
			}
			host, _ := x.req.Headers.Get("Host")
			a.routed(x.req.Server, host, x.path)
		}
	}
	return chain
}

// judgeChain judges a chain whose root is a WebSocket attempt.
func (a *Analyzer) judgeChain(chain []*exchange) {
	if !isAttempt(chain) {
		if a.opt.All {
			a.stats.Plain++
			a.out(plain(chain))
		}
		return
	}
	if a.deferEncrypted(chain) {
		return // judged by pairEncrypted
	}
	at, until := judgeRules(chain, a, nil, ConfNone)
	if !until.IsZero() {
		a.hold(at, until)
		return
	}
	v, p := at.head()
	a.noteProduct(v)
	a.count(v)
	a.sink.attempt(at, v, p)
}

func (a *Analyzer) upstreamAllowed(y *exchange) bool {
	if len(a.opt.Upstreams) == 0 {
		return true
	}
	for _, u := range a.opt.Upstreams {
		if u == y.req.Server || !u.Addr().IsValid() && u.Port() == y.req.Server.Port() {
			return true
		}
	}
	return false
}

// isAttempt: the root request asks for a WebSocket upgrade, or some leg of
// its chain got a 101.
func isAttempt(chain []*exchange) bool {
	r := chain[0].req
	if wsAsked(r) || maybeAttempt(r) {
		return true
	}
	if _, ok := r.Headers.Get("Sec-WebSocket-Key"); ok {
		return true
	}
	for _, x := range chain {
		if x.switched() {
			return true
		}
	}
	return false
}

// failedConnects returns connect attempts without data that started in
// [from, to].
func (a *Analyzer) failedConnects(from, to time.Time) []*reassembly.ConnEnd {
	var out []*reassembly.ConnEnd
	for _, c := range a.connects {
		if !c.First.Before(from) && !c.First.After(to) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First.Before(out[j].First) })
	return out
}

func (a *Analyzer) count(v *Verdict) {
	a.stats.Attempts++
	a.stats.ByCode[v.Code]++
	a.stats.BySev[v.Severity]++
}
