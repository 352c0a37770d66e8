package analyze

import "fmt"

// How evidence names the legs and their ends: "client→proxy" for the
// request on leg 0, "backend→proxy" for the answer on the last leg, and
// "proxy1"… in chains of more than one proxy.

// legName names leg i for evidence: who sends the request to whom, and
// who answers whom.
func (a *attempt) legName(i int) (req, resp string) {
	n := len(a.chain)
	if a.kind == fromUpstream {
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
		if !a.proxyEvident() {
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
// The facts show one (proxyFacts.evident), or a rule found the proxy out
// of connections.
func (a *attempt) proxyEvident() bool {
	return a.proxy.evident || a.has(ProxyAtCapacity)
}

// sender names who sends in a direction of leg i.
func (a *attempt) sender(i int, c2s bool) string {
	n := len(a.chain)
	if a.kind == fromUpstream {
		i, n = i+1, n+1
	}
	switch {
	case c2s && i == 0:
		return "client"
	case c2s:
		return "proxy"
	case i < n-1:
		return "proxy"
	case n == 1 && !a.proxyEvident():
		return "server"
	case n == 1:
		return "proxy"
	}
	return "backend"
}

// dirName names a direction of leg i: its request's way, or its answer's.
func (a *attempt) dirName(i int, c2s bool) string {
	req, resp := a.legName(i)
	if c2s {
		return req
	}
	return resp
}
