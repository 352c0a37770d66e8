package analyze

import "strings"

// clientFacts are what the client's own request lacks for a WebSocket
// handshake (RFC 6455 §4.1; on HTTP/2, RFC 8441 §4), as far as its bytes
// show: a header in the part the capture cut is not lacking.
type clientFacts struct {
	noUpgrade, noConnection, badKey, badVersion, badLine bool
	// noPseudo: an extended CONNECT without :scheme, :path, :authority.
	noPseudo [3]bool
	h2       h2Facts
}

// h2Pseudo are the pseudo-headers an extended CONNECT needs.
var h2Pseudo = [3]string{":scheme", ":path", ":authority"}

func clientFactsOf(a *attempt) clientFacts {
	r := a.chain[0].req
	c := clientFacts{h2: h2FactsOf(a.chain)}
	if c.h2.ws {
		for k, p := range h2Pseudo {
			if v, ok := r.Headers.Get(p); !ok || v == "" {
				c.noPseudo[k] = true
			}
		}
		v, _ := r.Headers.Get("Sec-WebSocket-Version")
		c.badVersion = strings.TrimSpace(v) != "13"
		return c
	}
	tr := r.Truncated
	c.noUpgrade = !r.Headers.HasToken("Upgrade", "websocket") && !absentCut(r, "Upgrade")
	c.noConnection = !r.Headers.HasToken("Connection", "upgrade") && !absentCut(r, "Connection")
	k, ok := r.Headers.Get("Sec-WebSocket-Key")
	c.badKey = (ok || !tr) && (!ok || !validKey(k))
	v, ok := r.Headers.Get("Sec-WebSocket-Version")
	c.badVersion = (ok || !tr) && strings.TrimSpace(v) != "13"
	c.badLine = r.Method != "GET" || r.Version != "HTTP/1.1"
	return c
}

// clientRule: the client's own request is not a WebSocket handshake
// (client_not_websocket).
func clientRule(a *attempt, out []finding) []finding {
	c := &a.client
	r := a.chain[0].req
	leg, _ := a.legName(0)
	var ev []string
	if c.h2.ws {
		for k, p := range h2Pseudo {
			if c.noPseudo[k] {
				ev = append(ev, leg+": no "+p+" (extended CONNECT needs it)")
			}
		}
		if c.badVersion {
			ev = append(ev, headerEv(leg, "Sec-WebSocket-Version", r.Headers)+" (need 13)")
		}
	} else {
		if c.noUpgrade {
			ev = append(ev, headerEv(leg, "Upgrade", r.Headers))
		}
		if c.noConnection {
			ev = append(ev, headerEv(leg, "Connection", r.Headers))
		}
		if c.badKey {
			ev = append(ev, headerEv(leg, "Sec-WebSocket-Key", r.Headers)+" (need 16 random bytes, base64)")
		}
		if c.badVersion {
			ev = append(ev, headerEv(leg, "Sec-WebSocket-Version", r.Headers)+" (need 13)")
		}
		if c.badLine {
			ev = append(ev, leg+" request line: "+requestLine(r)+" (need GET … HTTP/1.1)")
		}
	}
	if len(ev) == 0 {
		return out
	}
	return append(out, found(ClientNotWebSocket, 0, ev...))
}
