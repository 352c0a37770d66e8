package analyze

import "strings"

// hopFacts are what the proxy of hop i did: the request it sent on (leg
// i+1) against the one it got (leg i), and the answer it gave (leg i)
// against the one it got (leg i+1).
type hopFacts struct {
	// upgradeDropped: Upgrade: websocket was asked for and not sent on;
	// nginxProof, in a block the capture cut, names the relayed header
	// that proves nginx sent no Upgrade. connectionLost: the same of
	// Connection: upgrade; http10: sent on as HTTP/1.0.
	upgradeDropped bool
	nginxProof     string
	connectionLost bool
	http10         bool
	// wsAltered: the Sec-WebSocket-* header of wsForwarded changed.
	wsAltered                    [4]bool
	hostRewritten, pathRewritten bool
	answer                       passedOn
}

// passedOn is what a proxy did with the answer it got.
type passedOn uint8

const (
	passedAsIs      passedOn = iota // or nothing to compare
	passedStatus                    // another status than the one it got (a 101 not passed on)
	passedNoUpgrade                 // a 101 without Upgrade: websocket
	passed101                       // a 101: checked as any leg's (accepts)
)

// wsForwarded are the handshake headers a proxy forwards untouched.
var wsForwarded = [4]string{"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"}

func hopFactsOf(chain []*exchange, i int) hopFacts {
	x, y := chain[i].req, chain[i+1].req
	var h hopFacts
	wsIn := wsAsked(x)
	if wsIn && !y.Headers.HasToken("Upgrade", "websocket") {
		if hasHeader(y.Headers, "Upgrade") || !y.Truncated {
			h.upgradeDropped = true
		} else if rel, ok := nginxSetHeaders(productAt(chain, i, true), x, y); ok {
			// cut before Upgrade could show; nginx's header order tells
			h.upgradeDropped, h.nginxProof = true, rel
		}
	}
	h.connectionLost = wsIn && asksConnectionUpgrade(x) && !y.Headers.HasToken("Connection", "upgrade") && !absentCut(y, "Connection")
	h.http10 = y.Version == "HTTP/1.0" && x.Version != "HTTP/1.0"
	for k, name := range wsForwarded {
		if k == 0 && h2WebSocket(x) {
			continue // HTTP/2 has no key: the proxy makes one
		}
		vx, _ := joinValues(x.Headers, name)
		vy, _ := joinValues(y.Headers, name)
		h.wsAltered[k] = vx != vy && !absentCut(x, name) && !absentCut(y, name)
	}
	h.hostRewritten = !strings.EqualFold(hostOf(x), hostOf(y)) && !absentCut(x, hostName(x)) && !absentCut(y, hostName(y))
	h.pathRewritten = pathOf(x.Target) != pathOf(y.Target)
	h.answer = passedOnOf(chain[i], chain[i+1])
	return h
}

// passedOnOf says what a proxy answered on x to the answer it got on y.
func passedOnOf(x, y *exchange) passedOn {
	xr := x.resp
	if xr == nil || y.resp == nil {
		return passedAsIs
	}
	switch {
	case y.switched() && !x.switched():
		return passedStatus
	case x.switched() && xr.Status != 101: // a 2xx on an HTTP/2 stream: nothing more to check
	case xr.Status == 101 && !xr.Headers.HasToken("Upgrade", "websocket") && !(xr.Truncated && !hasHeader(xr.Headers, "Upgrade")):
		return passedNoUpgrade
	case xr.Status == 101:
		return passed101
	case xr.Status != y.resp.Status && y.resp.Status >= 200:
		return passedStatus
	}
	return passedAsIs
}

// proxyRequestRule compares the request each proxy got with the one it
// sent on: upgrade_header_dropped, connection_not_upgrade,
// upstream_http10, ws_header_altered, host_rewritten, path_rewritten.
func proxyRequestRule(a *attempt, out []finding) []finding {
	for i := range a.hops {
		h := &a.hops[i]
		x, y := a.chain[i].req, a.chain[i+1].req
		lx, _ := a.legName(i)
		ly, _ := a.legName(i + 1)
		switch {
		case h.upgradeDropped && h.nginxProof != "":
			out = append(out, found(UpgradeHeaderDropped, i, upgradeEvCut(lx, x),
				ly+": no Upgrade among the headers nginx sets (it writes them before those it relays, and the relayed "+h.nginxProof+" is in the part the capture kept)"))
		case h.upgradeDropped:
			out = append(out, found(UpgradeHeaderDropped, i, upgradeEvCut(lx, x), headerEv(ly, "Upgrade", y.Headers)))
		}
		if h.connectionLost {
			out = append(out, found(ConnectionNotUpgrade, i, headerEv(lx, "Connection", x.Headers), headerEv(ly, "Connection", y.Headers)))
		}
		if h.http10 {
			out = append(out, found(UpstreamHTTP10, i, lx+" request line: "+requestLine(x), ly+" request line: "+requestLine(y)))
		}
		var ev []string
		for k, name := range wsForwarded {
			if h.wsAltered[k] {
				ev = append(ev, headerEv(lx, name, x.Headers), headerEv(ly, name, y.Headers))
			}
		}
		switch {
		case len(ev) > 0 && strippedOffer(h, a.chain[i], a.chain[i+1]):
			out = append(out, explains(ExtensionsStripped, i, append(ev, "no 101 agreed to an extension: the tunnel runs uncompressed")...))
		case len(ev) > 0:
			out = append(out, found(WSHeaderAltered, i, ev...))
		}
		if h.hostRewritten && (a.an.opt.Explain || a.refusedAfter(i)) {
			out = append(out, found(HostRewritten, i, headerEv(lx, hostName(x), x.Headers), headerEv(ly, hostName(y), y.Headers)))
		}
		if h.pathRewritten {
			out = append(out, found(PathRewritten, i, lx+" request line: "+requestLine(x), ly+" request line: "+requestLine(y)))
		}
	}
	return out
}

// refusedAfter reports whether the server behind hop i answered its
// upgrade with anything but a 101 (a refusal, a redirect, a page of
// another virtual host): there the Host the proxy sent may be why.
func (a *attempt) refusedAfter(i int) bool {
	y := a.chain[i+1]
	return y.resp != nil && y.resp.Status >= 200 && !y.switched()
}

// proxyResponseRule compares what each proxy answered with what it was
// answered, from the backend's side back to the client's:
// response_altered, and bad_accept on a 101 it passed on.
func proxyResponseRule(a *attempt, out []finding) []finding {
	for i := len(a.hops) - 1; i >= 0; i-- {
		x, y := a.chain[i], a.chain[i+1]
		_, rx := a.legName(i)
		_, ry := a.legName(i + 1)
		switch a.hops[i].answer {
		case passedStatus:
			out = append(out, found(ResponseAltered, i, ry+": "+statusLine(y.resp), rx+": "+statusLine(x.resp)))
		case passedNoUpgrade:
			out = append(out, found(ResponseAltered, i, headerEv(rx, "Upgrade", x.resp.Headers)))
		case passed101:
			out = a.acceptRule(out, i)
		}
	}
	return out
}
