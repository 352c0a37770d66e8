package reassembly

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/flow"
)

// Connections in overlay tunnels are keyed by their tunnel too: two
// tenants' pods may use the same inner 4-tuple in different VNIs (or GRE
// keys, or between other hosts), and are two connections. A segment that
// came in no tunnel keeps connKey.tun 0, so the untunnelled path does what
// it did.
//
// A capture on every interface of an overlay host holds a tunnelled
// connection twice: encapsulated on the underlay, decapsulated on the
// overlay device (no tunnel there). Those copies are one connection: a
// tunnelled connection is also found under its 4-tuple alone (an alias,
// when no untunnelled connection holds it), and a tunnelled segment with
// no connection of its own joins an untunnelled one of its 4-tuple. An
// untunnelled copy cannot tell two tenants apart; it joins the first.

// tunnelID is connKey.tun for a tunnel: a hash of its kind, identifier,
// port and outer addresses (in either order, so that both directions
// agree); never 0.
func tunnelID(t *capture.Tunnel) uint32 {
	const prime = 16777619
	h := uint32(2166136261)
	mix := func(b byte) { h = (h ^ uint32(b)) * prime }
	mix(byte(t.Kind))
	if t.HasKey {
		mix(1)
	}
	for _, b := range [...]byte{byte(t.VNI >> 24), byte(t.VNI >> 16), byte(t.VNI >> 8), byte(t.VNI), byte(t.Port >> 8), byte(t.Port)} {
		mix(b)
	}
	lo, hi := t.Src, t.Dst
	if hi.Less(lo) {
		lo, hi = hi, lo
	}
	for _, a := range [...][16]byte{lo.As16(), hi.As16()} {
		for _, b := range a {
			mix(b)
		}
	}
	if h == 0 {
		h = 1
	}
	return h
}

// untunnelled finds the connection a tunnelled segment (key k, found
// under none of its own) joins: an untunnelled one of its 4-tuple, the
// decapsulated copy of it.
func (a *Assembler) untunnelled(k connKey) connRef {
	k.tun = 0
	if r := a.conns[k]; r.s != nil && r.s.key.tun == 0 {
		return r
	}
	return connRef{}
}

// alias enters tunnelled connection s (key k) under its 4-tuple alone, for
// its decapsulated copy, unless a connection holds that key.
func (a *Assembler) alias(s *stream, k connKey) {
	k.tun = 0
	if a.conns[k].s != nil {
		return
	}
	a.conns[k] = connRef{s, flow.Fwd}
	if r := k.reverse(); r != k {
		a.conns[r] = connRef{s, flow.Rev}
	}
}

// unalias drops s's alias, when it has one.
func (a *Assembler) unalias(s *stream) {
	k := s.key
	k.tun = 0
	if a.conns[k].s == s {
		delete(a.conns, k)
		delete(a.conns, k.reverse())
	}
}

// slowFlow is the network flow gopacket's reassembly keys a segment of a
// connection in tunnel tun by: the tunnel folded into the endpoint type,
// so that two tenants' connections of one 4-tuple stay apart there too.
// Addresses taken from it are the inner ones.
func slowFlow(nf gopacket.Flow, tun uint32) gopacket.Flow {
	if tun == 0 {
		return nf
	}
	src, dst := nf.Endpoints()
	return gopacket.NewFlow(nf.EndpointType()|gopacket.EndpointType(tun)<<16|1<<62, src.Raw(), dst.Raw())
}

// slowOnlyFlow is slowFlow in slowOnly mode, where no connKey map says
// which connection a segment joins: the first connection seen on a
// 4-tuple decides, as in the fast path (an untunnelled copy joins it, a
// tunnelled segment joins it when it is untunnelled or in the same
// tunnel). Test mode only: the map is never trimmed.
func (a *Assembler) slowOnlyFlow(nf gopacket.Flow, tcp *layers.TCP) gopacket.Flow {
	if a.slowTuns == nil {
		a.slowTuns = map[connKey]uint32{}
	}
	k := connKey{nf, uint16(tcp.SrcPort), uint16(tcp.DstPort), 0}
	held, ok := a.slowTuns[k]
	switch {
	case !ok:
		a.slowTuns[k], a.slowTuns[k.reverse()] = a.tun, a.tun
		return slowFlow(nf, a.tun)
	case a.tun == 0 || held == 0:
		return slowFlow(nf, held)
	}
	return slowFlow(nf, a.tun)
}
