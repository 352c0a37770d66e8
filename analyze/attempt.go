package analyze

import "time"

// An attempt is one WebSocket attempt as the rules see it: its chain of
// legs, the facts computed from them once, before any rule runs (one type
// per leg and phase: facts.go), and the findings of the rules so far.
// Rules read facts and the findings of the rules above them in the table
// (rules.go) and return findings; nothing else of an attempt changes while
// it is judged.
type attempt struct {
	// chain is the legs, leg 0 first: the client's, or with fromUpstream
	// the first upstream leg.
	chain []*exchange
	// an is the analyzer, with the state across connections. Rules only
	// read it; observing claims what only this attempt may use (the TLS
	// legs its proxy opened upstream) and records what other attempts
	// compare with (its tunnel's cut).
	an *Analyzer
	// fromUpstream: enc, the opaque TLS client leg paired with the chain
	// (nil: not captured), and how sure that pairing is; lone, a single
	// leg to an --upstream backend.
	enc     *tlsLeg
	encConf Confidence
	kind    kind
	lone    bool

	client  clientFacts
	cut     cutFacts
	proxy   proxyFacts
	hops    []hopFacts    // hop i: the proxy between leg i and leg i+1
	accepts []acceptState // leg i's 101 against its request's key
	connect connectFacts
	alone   aloneFacts
	backend backendFacts
	session *sessionFacts // nil: the client's leg did not upgrade and end
	mid     *midFacts     // midSession only
	// Observed when their rules' turn comes (phase): the configuration
	// block, for the hop the findings so far blame; what other
	// connections show, again when a held verdict is released.
	config configFacts
	cross  *crossFacts // nil: the client's leg did not upgrade and end

	findings []finding

	// Room for the usual chain (two legs, up to four findings), so that
	// judging it allocates no slices.
	acceptBuf [3]acceptState
	hopBuf    [1]hopFacts
	foundBuf  [4]finding
}

// kind is how much of an attempt the capture holds; each rule names the
// kinds it judges.
type kind uint8

const (
	// fromClient: leg 0 is the client's request.
	fromClient kind = 1 << iota
	// fromUpstream: the chain starts at a proxy's upstream request, the
	// client's leg being opaque TLS without keys or not in the capture.
	fromUpstream
	// midSession: the legs began before the capture: frames, no handshake.
	midSession

	handshake = fromClient | fromUpstream
	anyKind   = fromClient | fromUpstream | midSession
)

// finding is what a rule found: a code, the hop it concerns (the proxy of
// hop i sits between leg i and leg i+1) and its evidence.
type finding struct {
	code     Code
	evidence []string
	hop      int32
	// note: explains, never primary (a normal close frame on an ok session).
	note bool
	// demotes: the findings before this one only explain (whether the
	// attempt was one at all is in what the capture cut).
	demotes bool
	// atBackend: the code sits at the backend, not at its row's hop
	// (headers_too_large, origin_mismatch: the backend refused).
	atBackend bool
	// by is the rule that found it (its index in rules).
	by uint8
}

// found is a finding of code c at hop with its evidence.
func found(c Code, hop int, ev ...string) finding {
	return finding{code: c, hop: int32(hop), evidence: ev}
}

// explains is a finding that explains but is never the primary code.
func explains(c Code, hop int, ev ...string) finding {
	return finding{code: c, hop: int32(hop), evidence: ev, note: true}
}

// has reports whether a rule above found c.
func (a *attempt) has(c Code) bool {
	for i := range a.findings {
		if a.findings[i].code == c {
			return true
		}
	}
	return false
}

// keep adds what a rule returned to the attempt's findings, one finding
// per code: the first stands, a later one of the same code is dropped.
// out may lie in the spare room of a.findings (runRules passes it so):
// each finding is read before its place can be written.
func (a *attempt) keep(out []finding) {
	for _, f := range out {
		if a.has(f.code) {
			continue
		}
		if f.demotes {
			for i := range a.findings {
				a.findings[i].note = true
			}
		}
		a.findings = append(a.findings, f)
	}
}

// judge applies the rules to a chain of legs (leg 0 is the client's,
// or the first upstream leg when enc is the opaque client leg), waiting
// for no other connection.
func judge(chain []*exchange, an *Analyzer, enc *tlsLeg, encConf Confidence) *Verdict {
	v, a, _ := judgeHeld(chain, an, enc, encConf)
	if v == nil {
		v = a.release()
	}
	return v
}

// judgeHeld judges a chain; a nil verdict means the attempt waits for
// what other connections will show, until the time returned (capture
// time): then release judges it.
func judgeHeld(chain []*exchange, an *Analyzer, enc *tlsLeg, encConf Confidence) (*Verdict, *attempt, time.Time) {
	a := observe(chain, an, enc, encConf)
	a.runRules(onWire)
	if t := a.cross.wait(); !t.IsZero() {
		return nil, a, t
	}
	return a.verdict(), a, time.Time{}
}

// release judges a held attempt on what is known now: the rules that
// look across connections again, then the verdict.
func (a *attempt) release() *Verdict {
	a.runRules(acrossConnections)
	return a.verdict()
}
