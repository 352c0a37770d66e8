package analyze

import (
	"fmt"
	"net/netip"
)

// An attempt judged from the upstream legs alone (kind fromUpstream):
// the client's leg is TLS without keys, or not in the capture. Its first
// leg is a proxy's upstream request; what the proxy did shows in that
// request alone (nginx drops Upgrade but forwards the client's key).

// strippedRule judges the first upstream request against what any
// WebSocket client sends: a key without Upgrade means the proxy dropped
// it (upgrade_header_dropped); no Connection: upgrade, HTTP/1.0.
func strippedRule(a *attempt, out []finding) []finding {
	r := a.chain[0].req
	leg, _ := a.legName(0)
	if _, key := r.Headers.Get("Sec-WebSocket-Key"); key && !r.Headers.HasToken("Upgrade", "websocket") {
		out = append(out, found(UpgradeHeaderDropped, 0, headerEv(leg, "Upgrade", r.Headers)+", yet the request carries the client's Sec-WebSocket-Key: the proxy dropped the client's Upgrade"))
	}
	if !r.Headers.HasToken("Connection", "upgrade") {
		out = append(out, found(ConnectionNotUpgrade, 0, headerEv(leg, "Connection", r.Headers)))
	}
	if r.Version == "HTTP/1.0" {
		out = append(out, found(UpstreamHTTP10, 0, leg+" request line: "+requestLine(r)))
	}
	return out
}

// upstreamOnlyRule says what became of the client's leg: opaque TLS
// (encrypted_leg, and client_http2 when its handshake tells), or not in
// the capture (unpaired: the verdict's code when the leg goes to an
// --upstream backend with nothing else to say).
func upstreamOnlyRule(a *attempt, out []finding) []finding {
	r := a.chain[0].req
	switch {
	case a.enc != nil:
		out = append(out, explains(EncryptedLeg, 0, encryptedEvidence(a.enc)...))
		return keylessH2(out, a.enc)
	case a.lone && !strippedUpstream(r):
		return append(out, found(Unpaired, 0, fmt.Sprintf("client→proxy: not in the capture; %s is an --upstream backend, so %s→%s is a proxy's upstream leg (capture the client's side too: --client-ports, -i any, or a filter with the proxy's port)",
			r.Server, r.Client, r.Server)))
	}
	return append(out, explains(Unpaired, 0, fmt.Sprintf("client→proxy: not in the capture; %s→%s carries a WebSocket client's Sec-WebSocket-Key without Upgrade, so it is a proxy's upstream request (capture the client's side too: -i any, or a filter with the proxy's port)",
		r.Client, r.Server)))
}

// upstreamAddresses sets who the verdict names for an attempt seen from
// its upstream legs: the opaque client leg's ends, or only the proxy's
// own upstream socket; no status on the client's side.
func (a *attempt) upstreamAddresses(v *Verdict) {
	n := len(a.chain)
	r := a.chain[0].req
	if a.enc != nil {
		v.Client, v.Proxy = a.enc.conn.Client, a.enc.conn.Server
		v.PairConfidence = a.encConf
	} else {
		v.Client, v.Proxy, v.PairConfidence = netip.AddrPort{}, r.Client, ConfNone
	}
	v.StatusClient = 0 // not seen
	if L := a.chain[n-1]; L.resp != nil {
		v.StatusBackend = L.resp.Status
	}
	v.Backend = a.chain[n-1].req.Server
}
