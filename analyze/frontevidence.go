package analyze

import (
	"net/netip"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// frontEvidence says what shows a hop in front of the proxy on the cut
// client leg ("" when nothing does): the cut came as a RST (load
// balancers reset; a client that quits closes), the leg's peer is not the
// client its request names (X-Forwarded-For, X-Real-IP, Forwarded, or a
// PROXY header), or other tunnels through the proxy were cut after the
// same silence ("siblings": their evidence line is already there).
func frontEvidence(a *attempt, f *frontCutFacts) string {
	x := a.chain[0]
	peer := x.req.Client.Addr()
	if n := x.req.Node; n != nil && n.Proxy != nil && n.Proxy.Src.IsValid() && n.Proxy.Src.Addr() != peer {
		return "the leg began with a PROXY header naming the client " + n.Proxy.Src.String() + ": " + peer.String() + " is a hop in front of the proxy"
	}
	for _, name := range []string{"X-Forwarded-For", "X-Real-IP", "Forwarded"} {
		if v, ok := x.req.Headers.Get(name); ok {
			if c := firstForwarded(name, v); c.IsValid() && c != peer {
				leg, _ := a.legName(0)
				return headerEv(leg, name, x.req.Headers) + " names a client behind " + peer.String() + ": a hop in front of the proxy"
			}
		}
	}
	if f.client.Kind == reassembly.CloseRST {
		return "the cut is a RST: what sits in front of the proxy resets on its idle timeout, where a client that quits closes"
	}
	if len(f.siblings) > 0 {
		return "siblings"
	}
	return ""
}

// firstForwarded is the first address a forwarding header names.
func firstForwarded(name, v string) netip.Addr {
	first, _, _ := strings.Cut(v, ",")
	first = strings.TrimSpace(first)
	if strings.EqualFold(name, "Forwarded") {
		for _, part := range strings.Split(first, ";") {
			if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "for") {
				first = strings.Trim(val, `"[]`)
			}
		}
	}
	if ap, err := netip.ParseAddrPort(first); err == nil {
		return ap.Addr()
	}
	a, _ := netip.ParseAddr(first)
	return a.Unmap()
}
