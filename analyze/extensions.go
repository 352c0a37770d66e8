package analyze

import "github.com/wsdiag/wsdiag/reassembly"

// WebSocket extensions a proxy changes: nginx's proxy_hide_header
// Sec-WebSocket-Extensions hides the backend's agreement to
// permessage-deflate from the client, while the backend compresses anyway
// (the client then fails on RSV1); proxy_set_header
// Sec-WebSocket-Extensions "" (or haproxy's del-header) strips the
// client's offer, so that the backend never agrees and the tunnel works
// uncompressed: a finding, not a failure.

// hidden101 are the headers of a backend's 101 that settle what the
// session speaks: a proxy must pass them on.
var hidden101 = [2]string{"Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol"}

// hiddenRule: hop i's proxy passed on a 101 without a header its upstream
// 101 carried (and the capture kept the whole block): ws_header_altered,
// at the proxy; the frames that follow are the consequence.
func hiddenRule(a *attempt, out []finding) []finding {
	for i := range a.hops {
		x, y := a.chain[i], a.chain[i+1]
		if !x.switched() || !y.switched() || x.resp.Truncated || x.resp.Status != 101 {
			continue
		}
		_, rx := a.legName(i)
		_, ry := a.legName(i + 1)
		var ev []string
		for _, name := range hidden101 {
			if hasHeader(y.resp.Headers, name) && !hasHeader(x.resp.Headers, name) {
				ev = append(ev, headerEv(ry, name, y.resp.Headers), headerEv(rx, name, x.resp.Headers)+" in the proxy's 101: "+hiddenWhy(name))
			}
		}
		if len(ev) > 0 {
			out = append(out, found(WSHeaderAltered, i, ev...))
		}
	}
	return out
}

func hiddenWhy(name string) string {
	if name == "Sec-WebSocket-Extensions" {
		return "the client does not know the backend agreed to compress, and takes its compressed frames (RSV1) for a protocol error"
	}
	return "the client does not know the subprotocol the backend chose"
}

// strippedOffer: hop h's only change to the handshake headers is that the
// client's Sec-WebSocket-Extensions offer did not go on, and no 101 on the
// two legs agreed to an extension: the tunnel runs uncompressed.
func strippedOffer(h *hopFacts, x, y *exchange) bool {
	const ext = "Sec-WebSocket-Extensions"
	if !h.wsAltered[3] || h.wsAltered[0] || h.wsAltered[1] || h.wsAltered[2] ||
		!hasHeader(x.req.Headers, ext) || hasHeader(y.req.Headers, ext) || y.req.Truncated {
		return false
	}
	for _, r := range []*reassembly.Response{x.resp, y.resp} {
		if r != nil && hasHeader(r.Headers, ext) {
			return false
		}
	}
	return true
}
