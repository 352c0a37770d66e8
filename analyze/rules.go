package analyze

// A rule reads an attempt's facts, and the findings of the rules above it
// in the table (a.has), and returns what it found appended to out.
type ruleFunc func(a *attempt, out []finding) []finding

type rule struct {
	name  string
	on    kind  // the kinds of attempt it judges
	phase phase // the facts it needs beyond the legs'
	find  ruleFunc
}

// phase says which facts a rule needs beyond those of the legs: they are
// observed when the first rule of the phase runs.
type phase uint8

const (
	onWire            phase = iota // the legs, as observed
	withConfig                     // and the proxy's configuration block (configFacts)
	acrossConnections              // and what other connections show (crossFacts)
)

// rules are every rule, in the order they run: the handshake as it
// travels (client, proxy's request, its upstream connect, backend,
// proxy's answer), the session after the 101 ordered by cause, what the
// capture cut, then what needs the proxy's configuration and other
// connections. Where two rules find the same code, the one above stands.
// Adding a rule: its function, a row here where what it reads is known,
// a case in rules_test.go (and a code row in codes.go if it is a new code).
var rules = [...]rule{
	{"client's request", fromClient, onWire, clientRule},
	{"PROXY protocol on one end", fromClient, onWire, proxyProtocolRule},
	{"HTTP/2 client leg", fromClient, onWire, h2Rule},
	{"upstream request of an unseen client", fromUpstream, onWire, strippedRule},
	{"proxy's requests", handshake, onWire, proxyRequestRule},
	{"one leg: who answered", fromClient, onWire, aloneRule},
	{"backend's silence", handshake, onWire, backendSilentRule},
	{"backend's 101", handshake, onWire, backendAcceptRule},
	{"plain HTTP to a TLS backend", handshake, onWire, backendSchemeRule},
	{"why the backend refused", handshake, onWire, refusalRule},
	{"backend refused the upgrade", handshake, onWire, backendRejectedRule},
	{"backend not WebSocket", handshake, onWire, backendNotWebSocketRule},
	{"proxy's answers", handshake, onWire, proxyResponseRule},
	{"101's headers hidden", handshake, onWire, hiddenRule},
	{"101 not relayed", handshake, onWire, notRelayedRule},
	{"frame protocol error", anyKind, onWire, protocolErrorRule},
	{"message too big", anyKind, onWire, tooBigRule},
	{"proxy's idle timeout", anyKind, onWire, idleRule},
	{"frames not relayed", anyKind, onWire, relayRule},
	{"abnormal close", anyKind, onWire, abnormalRule},
	{"close frame", anyKind, onWire, closeFrameRule},
	{"client leg opaque or not captured", fromUpstream, onWire, upstreamOnlyRule},
	{"handshake before the capture", midSession, onWire, midSessionRule},
	{"snap length cut", handshake, onWire, cutRule},
	{"a leg without its answer", handshake, onWire, unansweredRule},
	{"config: headers not inherited", fromClient, withConfig, configInheritRule},
	{"config: read timeout short", fromClient, withConfig, configTimeoutRule},
	{"mass close", fromClient, acrossConnections, massCloseRule},
	{"cut in front of the proxy", fromClient, acrossConnections, frontCutRule},
	{"sticky session, tunnel", fromClient, acrossConnections, stickyTunnelRule},
}

// runRules runs the rules of the attempt's kind, from phase from on, in
// the table's order, observing each phase's facts before its first rule.
func (a *attempt) runRules(from phase) {
	var cur phase // the phase whose facts were observed last
	started := false
	for i := range rules {
		r := &rules[i]
		if r.phase < from || r.on&a.kind == 0 {
			continue
		}
		if !started || r.phase != cur {
			cur, started = r.phase, true
			a.observePhase(cur)
		}
		n := len(a.findings)
		out := r.find(a, a.findings[n:n])
		for k := range out {
			out[k].by = uint8(i)
		}
		a.keep(out)
	}
}

// observePhase computes the facts a phase's rules need beyond the legs'.
func (a *attempt) observePhase(p phase) {
	switch p {
	case withConfig:
		a.config = a.locateConfig()
	case acrossConnections:
		a.cross = a.observeCross()
	}
}
