package analyze

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Pairing opaque TLS client legs with the upstream requests made for them.
//
// Without keys a client leg shows no HTTP, only the times and sizes of its
// records. Under concurrency the nearest open TLS connection is often the
// wrong one: a busy proxy sends upstream requests milliseconds after, and
// not in the order, the clients' requests arrived. So the attempts that
// wait for a client leg are paired all at once, as a minimum-cost
// one-to-one assignment (minCostAssign) over every candidate, with:
//   - hard limits: X-Forwarded-For / X-Real-IP / Forwarded, when present,
//     must name the leg's client; the leg was open when the request left;
//     the client had sent a record at most maxRelayDelay before the proxy
//     opened the upstream connection; the request leaves from the address
//     the leg's proxy listens on, unless it shows it was made by a proxy;
//   - cost: the time from the proxy's last activity on the leg (the
//     client's request record, or a record the proxy sent after reading it,
//     such as OpenSSL's TLS 1.3 session tickets) to the opening of the
//     upstream connection; the time from the backend's answer to the
//     proxy's next record on the leg; both slightly convex, so that among
//     assignments whose delays add up the same the even one wins (a busy
//     proxy serves in order); after the upgrade, upstream frames without a
//     client record of the same size plus the cipher's overhead.

// encWait is an attempt whose client leg may be an opaque TLS connection.
type encWait struct {
	chain   []*exchange
	settled time.Time // when it settled (its answer, or its session's end)
}

// Costs, in milliseconds of timing mismatch.
const (
	costConnWeight = 3    // the proxy connects upstream within ~0.3 ms of reading the request
	costNoAnswer   = 50   // the leg carried no record after the backend answered
	costNoTiming   = 1000 // the leg's records are not known (still open)
	costFrameMiss  = 2    // an upstream frame with no client record of its size
	costOtherHost  = 1    // the proxy's upstream leg leaves from another address
	costUnpaired   = 1e6  // no leg at all: any pairing the limits allow is preferred
	costForbidden  = 1e12 // never chosen while a way out exists
	maxAssignRows  = 256  // attempts solved in one assignment
	maxLegScan     = 512  // candidate legs looked at per attempt
	maxRegretRows  = 48   // groups up to this size get each pair's regret
	confMarginMs   = 1.0  // regret (or runner-up) at least this for medium
	confTightMs    = 5.0  // timing this close counts as fitting
)

// maxRelayDelay: a proxy connects upstream within this of reading a request.
const maxRelayDelay = 2 * time.Second

// deferEncrypted queues chain for the assignment when an opaque TLS leg
// may be its client leg; the verdict is given by pairEncrypted.
func (a *Analyzer) deferEncrypted(chain []*exchange) bool {
	if len(a.tlsLegs) == 0 || chain[0].req.TLS {
		return false
	}
	t, ok := chain[0].settled(a.opt.WaitSession)
	if !ok {
		t = chain[0].req.Start
	}
	a.encWait = append(a.encWait, &encWait{chain: chain, settled: t})
	return true
}

// legFit is one candidate pairing and what its cost is made of.
type legFit struct {
	leg        *tlsLeg
	cost       float64
	timed      bool          // the leg's records were known
	conn, resp time.Duration // proxy activity → upstream open; backend answer → client record
	answered   bool
	frames     int // upstream frames compared with client records
	mirrored   int // of which a client record had the same size
	byXFF      bool
}

// fit rates l as the client leg of the request x (ok false: it cannot be).
func fit(x *exchange, l *tlsLeg) (legFit, bool) {
	r := x.req
	f, ok := mayCarry(x, l)
	if !ok {
		return f, false
	}
	open := r.Start
	if r.Index == 0 && !r.Opened.IsZero() && !r.Opened.After(r.Start) {
		open = r.Opened
	}
	var recs []reassembly.TLSRecord
	var anchor time.Time
	lr, known := recordsOf(l)
	if known {
		recs = lr.recs
		if anchor, ok = requestRecord(recs, open); !ok {
			return f, false // the client had sent nothing the proxy could forward
		}
	}
	if anchor.IsZero() {
		f.cost += costNoTiming + r.Start.Sub(l.start).Seconds()
		return f, true
	}
	for _, rec := range recs {
		if !rec.FromClient && !rec.At.Before(anchor) && !rec.At.After(open) {
			anchor = rec.At
		}
	}
	f.timed = true
	f.conn = open.Sub(anchor)
	if f.conn > maxRelayDelay {
		return f, false
	}
	f.cost += costConnWeight * convex(millis(f.conn))
	if x.resp != nil {
		f.cost += costNoAnswer
		for _, rec := range recs {
			if !rec.FromClient && !rec.At.Before(x.resp.Start) {
				f.answered, f.resp = true, rec.At.Sub(x.resp.Start)
				f.cost += convex(millis(f.resp)) - costNoAnswer
				break
			}
		}
	}
	f.frames, f.mirrored = mirroredFrames(x, lr)
	f.cost += costFrameMiss * float64(f.frames-f.mirrored)
	return f, true
}

// mayCarry reports whether l may be the client leg of x at all, with
// what its fit costs so far.
func mayCarry(x *exchange, l *tlsLeg) (legFit, bool) {
	r := x.req
	f := legFit{leg: l}
	if l.decrypted || l.claimed || l.failed != nil || l.conn.Server == r.Server || l.conn.ID == r.ID || l.start.After(r.Start) ||
		l.end != nil && l.end.Last.Before(r.Start) {
		return f, false
	}
	if in := tlsInfoOf(l); in != nil && !in.HandshakeDone && in.Gaps == 0 {
		// No request could pass (a failed handshake, maybe a proxy's own
		// upstream one). Bytes lost or cut by the snap length stop the
		// parse before it can see the handshake end: no proof either way.
		return f, false
	}
	if len(x.xff) > 0 {
		if !forwardedFor(x, l.conn.Client.Addr()) {
			return f, false // never against the proxy's own word
		}
		f.byXFF = true
	}
	if l.conn.Server.Addr().Unmap() != r.Client.Addr().Unmap() {
		// Another host: only a request that shows it was made by a proxy
		// (forwarding header, or a key without Upgrade) may be upstream.
		if len(x.xff) == 0 && !strippedUpstream(r) {
			return f, false
		}
		f.cost += costOtherHost
	}
	return f, true
}

// requestRecord is the time of the last record the client sent by open,
// the one the proxy's upstream request carries on (ok false: none); zero
// when the request may be a later record than those kept.
func requestRecord(recs []reassembly.TLSRecord, open time.Time) (at time.Time, ok bool) {
	n := 0
	for _, rec := range recs {
		if rec.FromClient {
			n++
			if !rec.At.After(open) {
				at = rec.At
			}
		}
	}
	if at.IsZero() {
		return at, false
	}
	if n == reassembly.TLSAppRecords && at.Equal(lastClientRecord(recs)) {
		return time.Time{}, true
	}
	return at, true
}

// legRecords are what is known of an opaque leg's records.
type legRecords struct {
	recs            []reassembly.TLSRecord
	version, cipher uint16
}

// recordsOf returns l's records when they can be trusted (ok false: none
// yet, or bytes were lost):
// from its end, or while it is open from the latest TLSRecords event.
func recordsOf(l *tlsLeg) (legRecords, bool) {
	if l.end != nil && l.end.TLSInfo != nil {
		in := l.end.TLSInfo
		if in.Gaps > 0 || in.Malformed != "" {
			return legRecords{}, false
		}
		return legRecords{in.AppRecords, in.Version, in.Cipher}, true
	}
	if l.recs != nil {
		return legRecords{l.recs.Records, l.recs.Version, l.recs.Cipher}, true
	}
	return legRecords{}, false
}

func lastClientRecord(recs []reassembly.TLSRecord) time.Time {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].FromClient {
			return recs[i].At
		}
	}
	return time.Time{}
}

// convex grows faster than linear, so among assignments whose delays sum
// the same it prefers even ones: a busy proxy serves in order.
func convex(ms float64) float64 { return ms + convexK*ms*ms }

// convexK weighs the quadratic part: 0.005–0.03 pair the tls-conc30
// captures alike (0.05 and more let one slow outlier pull others along).
const convexK = 0.02

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mirroredFrames compares the first client→backend frames of x's upstream
// connection with the client's records: a proxy relays each frame as is,
// so a record of frame size + the cipher's overhead arrived before it.
func mirroredFrames(x *exchange, lr legRecords) (n, same int) {
	if x.end == nil || x.end.WS == nil {
		return 0, 0
	}
	over := recordOverhead(lr.version, lr.cipher)
	if over < 0 {
		return 0, 0
	}
	for _, fr := range x.end.WS.C2S.Head {
		if fr.Size == 0 {
			break
		}
		n++
		for _, rec := range lr.recs {
			if rec.FromClient && !rec.At.After(fr.At) && rec.Len == int(fr.Size)+over && fr.At.Sub(rec.At) < time.Second {
				same++
				break
			}
		}
	}
	return n, same
}

// recordOverhead is what a protected record adds to its content under the
// negotiated cipher (-1: unknown).
func recordOverhead(version, cipher uint16) int {
	switch {
	case version == 0x0304:
		return 16 + 1 // AEAD tag + inner content type
	case version != 0x0303:
		return -1
	}
	switch cipher {
	case 0xc02b, 0xc02c, 0xc02f, 0xc030, 0x009c, 0x009d, 0x009e, 0x009f: // AES-GCM: explicit nonce + tag
		return 8 + 16
	case 0xcca8, 0xcca9, 0xccaa: // ChaCha20-Poly1305
		return 16
	}
	return -1
}

// pairEncrypted pairs the waiting attempts with opaque TLS legs and
// judges them. An attempt is committed two Graces after it settled, one
// after it was decided (so
// its concurrent rivals are in the same assignment), or at once when final.
func (a *Analyzer) pairEncrypted(now time.Time, final bool) {
	for len(a.encWait) > 0 {
		ws := a.encWait
		sort.SliceStable(ws, func(i, j int) bool { return lessReq(ws[i].chain[0].req, ws[j].chain[0].req) })
		rows := ws[:min(len(ws), maxAssignRows)]
		legs := a.sortedLegs()
		fits := make([][]legFit, len(rows))
		for i, w := range rows {
			fits[i] = candidates(w.chain[0], legs)
		}
		if !final {
			// Attempts not decided yet take part too, so that one decided
			// now does not take the leg of a rival whose session goes on.
			for _, x := range a.rivals(rows) {
				fits = append(fits, candidates(x, legs))
			}
		}
		pick, regret := assignRows(fits)
		cut := now.Add(-2 * a.opt.Grace)
		var keep []*encWait
		for i, w := range rows {
			if !final && w.settled.After(cut) {
				keep = append(keep, w)
				continue
			}
			var l *tlsLeg
			conf := ConfNone
			if k := pick[i]; k >= 0 {
				f := fits[i][k]
				l = f.leg
				l.claimed = true
				a.front(l)
				conf = pairConfidence(f, fits[i], regret[i])
				l.why = pairingEvidence(f, fits[i], regret[i], conf)
			}
			v := judge(w.chain, a, l, conf)
			a.count(v)
			a.out(v)
		}
		done := len(rows) - len(keep)
		keep = append(keep, ws[len(rows):]...)
		clear(a.encWait)
		a.encWait = append(a.encWait[:0], keep...)
		if done == 0 || !final && len(ws) <= maxAssignRows {
			return
		}
	}
}

// rivals returns undecided WebSocket requests that may want a TLS leg, from
// a little before the first row to a little after the last (at most
// maxAssignRows in all with the rows).
func (a *Analyzer) rivals(rows []*encWait) []*exchange {
	if len(rows) == 0 {
		return nil
	}
	from := rows[0].chain[0].req.Start.Add(-maxRelayDelay)
	to := rows[len(rows)-1].chain[0].req.Start.Add(maxRelayDelay)
	var out []*exchange
	for i := a.firstFrom(from); i < len(a.xs) && len(rows)+len(out) < maxAssignRows; i++ {
		x := a.xs[i]
		if x.req.Start.After(to) {
			break
		}
		if !x.decided && x.down == nil && !x.req.TLS && (x.key != "" || x.req.Headers.HasToken("Upgrade", "websocket")) {
			out = append(out, x)
		}
	}
	return out
}

func lessReq(a, b *reassembly.Request) bool {
	if !a.Start.Equal(b.Start) {
		return a.Start.Before(b.Start)
	}
	return a.ID < b.ID
}

// sortedLegs returns the TLS legs still free, by start (then ID), so the
// assignment sees them in the same order every run.
func (a *Analyzer) sortedLegs() []*tlsLeg {
	legs := make([]*tlsLeg, 0, len(a.tlsLegs))
	for _, l := range a.tlsLegs {
		if !l.decrypted && !l.claimed {
			legs = append(legs, l)
		}
	}
	sort.Slice(legs, func(i, j int) bool { return legs[i].before(legs[j]) })
	return legs
}

// candidates rates the legs that started before x's request, nearest
// first, at most maxLegScan of them.
func candidates(x *exchange, legs []*tlsLeg) []legFit {
	var out []legFit
	hi := sort.Search(len(legs), func(i int) bool { return legs[i].start.After(x.req.Start) })
	for i := hi - 1; i >= 0 && hi-i <= maxLegScan; i-- {
		if f, ok := fit(x, legs[i]); ok {
			out = append(out, f)
		}
	}
	return out
}

// assignRows solves the assignment per connected group of attempts and
// legs (attempts that share no candidate do not affect each other): for
// each row, the index into its fits, or -1, and the regret: how much more
// the best assignment without that pair costs (-1: not computed, in groups
// of more than maxRegretRows attempts).
func assignRows(fits [][]legFit) ([]int, []float64) {
	pick := make([]int, len(fits))
	regret := make([]float64, len(fits))
	for i := range pick {
		pick[i], regret[i] = -1, -1
	}
	for _, rows := range rowGroups(fits) {
		assignGroup(fits, rows, pick, regret)
	}
	return pick, regret
}

// rowGroups splits the rows into groups connected through shared legs
// (union-find), in the order of their first row.
func rowGroups(fits [][]legFit) [][]int {
	parent := make([]int, len(fits))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[*tlsLeg]int{}
	for i, fs := range fits {
		for _, f := range fs {
			if j, ok := owner[f.leg]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[f.leg] = i
			}
		}
	}
	groups := map[int][]int{}
	var roots []int
	for i := range fits {
		r := find(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], i)
	}
	out := make([][]int, len(roots))
	for k, r := range roots {
		out[k] = groups[r]
	}
	return out
}

// assignGroup solves the assignment of one group of rows, each with a way
// out (unpaired), and writes each row's pick and regret.
func assignGroup(fits [][]legFit, rows []int, pick []int, regret []float64) {
	col := map[*tlsLeg]int{}
	var cols []*tlsLeg
	for _, i := range rows {
		for _, f := range fits[i] {
			if _, ok := col[f.leg]; !ok {
				col[f.leg] = len(cols)
				cols = append(cols, f.leg)
			}
		}
	}
	n, m := len(rows), len(cols)+len(rows) // one way out per row
	cost := make([]float64, n*m)
	for k := range cost {
		cost[k] = costForbidden
	}
	for ri, i := range rows {
		for _, f := range fits[i] {
			cost[ri*m+col[f.leg]] = f.cost
		}
		cost[ri*m+len(cols)+ri] = costUnpaired
	}
	got := minCostAssign(cost, n, m)
	total := assignCost(cost, m, got)
	for ri, i := range rows {
		c := got[ri]
		if c >= len(cols) {
			continue
		}
		for k, f := range fits[i] {
			if f.leg == cols[c] {
				pick[i] = k
			}
		}
		if n <= maxRegretRows {
			// How much worse the best assignment without this pair is.
			keep := cost[ri*m+c]
			cost[ri*m+c] = costForbidden
			regret[i] = assignCost(cost, m, minCostAssign(cost, n, m)) - total
			cost[ri*m+c] = keep
		}
	}
}

func assignCost(cost []float64, m int, got []int) float64 {
	sum := 0.0
	for i, c := range got {
		sum += cost[i*m+c]
	}
	return sum
}

// pairConfidence states how sure a keyless pairing is:
//   - high: X-Forwarded-For (or X-Real-IP, Forwarded) names the client and
//     no other candidate has that address; or the timing fits and at least
//     two relayed frames have the sizes of the client's records;
//   - medium: the timing fits and the best assignment without this pair
//     costs at least confMarginMs more (in large groups: every other
//     candidate fits at least that much worse);
//   - low: the timing is a close call, or unknown.
func pairConfidence(f legFit, all []legFit, regret float64) Confidence {
	if f.byXFF {
		same := 0
		for _, g := range all {
			if g.leg.conn.Client.Addr() == f.leg.conn.Client.Addr() {
				same++
			}
		}
		if same == 1 {
			return ConfHigh
		}
	}
	if !f.timed || millis(f.conn) > confTightMs || f.answered && millis(f.resp) > 2*confTightMs {
		return ConfLow
	}
	if f.mirrored >= 2 && f.mirrored == f.frames {
		return ConfHigh
	}
	if regret < 0 {
		regret = runnerUp(f, all) - f.cost
	}
	if regret >= confMarginMs {
		return ConfMedium
	}
	return ConfLow
}

// runnerUp is the cost of the next best candidate (costUnpaired if none).
func runnerUp(f legFit, all []legFit) float64 {
	best := costUnpaired
	for _, g := range all {
		if g.leg != f.leg && g.cost < best {
			best = g.cost
		}
	}
	return best
}

// pairingEvidence says how a keyless leg was paired.
func pairingEvidence(f legFit, all []legFit, regret float64, conf Confidence) string {
	var why []string
	if f.byXFF {
		why = append(why, "the upstream request's X-Forwarded-For/X-Real-IP/Forwarded names "+f.leg.conn.Client.Addr().String())
	}
	if f.timed {
		s := fmt.Sprintf("the proxy opened the upstream connection %.2f ms after its last exchange on this TLS connection", millis(f.conn))
		if f.answered {
			s += fmt.Sprintf(", and sent it a record %.2f ms after the backend answered", millis(f.resp))
		}
		why = append(why, s)
	} else {
		why = append(why, "the TLS connection was open when the upstream request left (its record timing is not known yet)")
	}
	if f.frames > 0 {
		why = append(why, fmt.Sprintf("%d of %d relayed frames match the sizes of its records", f.mirrored, f.frames))
	}
	s := fmt.Sprintf("client→proxy: paired without keys (%s): %s", conf, strings.Join(why, "; "))
	if len(all) > 1 {
		s += fmt.Sprintf("; one-to-one assignment over %d candidate TLS connections", len(all))
		switch {
		case regret >= costUnpaired/2:
			s += ", without this pair some upstream request would get no client leg"
		case regret >= 0:
			s += fmt.Sprintf(", the best one without this pair fits %.2f ms worse", regret)
		}
	}
	return s
}

// forwardedAddrsAll is forwardedAddrs plus the for= addresses of
// Forwarded (RFC 7239): whether the request names its client at all.
func forwardedAddrsAll(h reassembly.Headers) []netip.Addr {
	out := forwardedAddrs(h)
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") || len(out) >= maxForwarded {
					continue
				}
				val = strings.Trim(val, `"`)
				if a, err := netip.ParseAddr(strings.Trim(val, "[]")); err == nil {
					out = append(out, a.Unmap())
				} else if ap, err := netip.ParseAddrPort(val); err == nil {
					out = append(out, ap.Addr().Unmap())
				}
			}
		}
	}
	return out
}

func tlsInfoOf(l *tlsLeg) *reassembly.TLSInfo {
	if l.end == nil {
		return nil
	}
	return l.end.TLSInfo
}
