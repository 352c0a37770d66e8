package filter

import (
	"golang.org/x/net/bpf"
)

// Overlay packets on a node's underlay interface: VXLAN (UDP 4789, and
// 8472 as Flannel uses it), Geneve (UDP 6081), GRE (IP protocol 47) and
// IP in IP (4, and 41 for IPv6 inside). capture's decoder unwraps them and
// the connection is the inner one, so a live socket keeps them too
// (Socket.Tunnels) and the expression applies to the inner packet, as it
// does to a capture file's: "port 9000" is the pods' port 9000, not the
// outer UDP port.
//
// The kernel judges the inner packet where its place is fixed: behind an
// outer IPv4 header without options or an IPv6 header, a VXLAN header
// (inner Ethernet without a VLAN tag), a Geneve header without options,
// a GRE header of 4 bytes or 8 with a key, or directly (IPIP). Other
// overlay packets (outer IPv4 options, Geneve options, GRE checksums or
// sequence numbers, a VLAN tag or another tunnel inside) are kept whole,
// and capture applies the expression to what it decodes. UDP on other
// ports is never kept: a busy host does not pay for its UDP, and VXLAN
// on another port is seen only in a capture file (the decoder finds it by
// content there).

const (
	udpVXLAN        = 4789
	udpVXLANFlannel = 8472
	udpGeneve       = 6081

	ipProtoUDP  = 17
	ipProtoGRE  = 47
	ipProtoIPv4 = 4
	ipProtoIPv6 = 41

	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherBridge = 0x6558 // transparent Ethernet bridging
)

// tunnels is what a live socket keeps of overlay traffic, for the
// expression n; exact: the inner packet is judged where its place is
// fixed (false: every overlay packet is kept, for a program that would
// be too big otherwise).
func (ll linkLayout) tunnels(n *fnode, exact bool) *irNode {
	inner := innerJudged(n)
	keep := func(v6 bool) *irNode {
		o := ll.outer(v6)
		if !exact {
			return irAndOf(o.whole, o.cand)
		}
		return irAndOf(o.whole, irIfOf(o.fixed, o.judge(inner), o.cand))
	}
	// an if, not an or: what the inner packet decides is the answer
	return irIfOf(ll.family(false), keep(false), irAndOf(ll.family(true), keep(true)))
}

// outerIP is an overlay packet's outer IP header, of one family.
type outerIP struct {
	ll linkLayout
	// whole: not a fragment; cand: an overlay packet (its protocol, its
	// UDP port); fixed: its header has the fixed size, base past it.
	whole, cand, fixed *irNode
	proto              uint32 // offset of the protocol (next header)
	base               uint32
}

func (ll linkLayout) outer(v6 bool) outerIP {
	o := outerIP{ll: ll, whole: irTrue, fixed: irTrue}
	var dport *irNode
	if v6 {
		o.proto, o.base = ll.l3+6, ll.l3+40
		dport = irCmpOf(ldH, o.base+2, 0, bpf.JumpEqual, 0)
	} else {
		o.proto, o.base = ll.l3+9, ll.l3+20
		o.whole = irNotOf(irCmpOf(ldH, ll.l3+6, 0, bpf.JumpBitsSet, 0x3fff)) // fragments are not decoded
		dport = irCmpOf(ldIndH, ll.l3+2, 0, bpf.JumpEqual, 0)
		dport.xoff = ll.l3
		o.fixed = irCmpOf(ldB, ll.l3, 0, bpf.JumpEqual, 0x45) // no options
	}
	port := func(p uint32) *irNode { c := *dport; c.kval = p; return &c }
	o.cand = irIfOf(o.isProto(ipProtoUDP), irOrOf(port(udpVXLAN), irOrOf(port(udpVXLANFlannel), port(udpGeneve))),
		irOrOf(o.isProto(ipProtoGRE), irOrOf(o.isProto(ipProtoIPv4), o.isProto(ipProtoIPv6))))
	return o
}

func (o outerIP) isProto(p uint32) *irNode { return irCmpOf(ldB, o.proto, 0, bpf.JumpEqual, p) }

func (o outerIP) half(off, v uint32) *irNode { return irCmpOf(ldH, o.base+off, 0, bpf.JumpEqual, v) }

// judge decides an overlay packet whose outer header has the fixed size:
// the inner packet where its place is fixed (VXLAN, Geneve without
// options, GRE of 4 or 8 bytes, IPIP), kept otherwise; false for what
// capture would not decode.
func (o outerIP) judge(inner *irNode) *irNode {
	// The inner IP packet at off, judged where it starts; an inner
	// Ethernet frame with a VLAN tag is kept.
	ip := func(off uint32) *irNode { return irSetOf(o.base+off, inner) }
	eth := func(off uint32) *irNode { return irIfOf(o.half(off+12, 0x8100), irTrue, ip(off+14)) }
	isIP := func(off uint32) *irNode { return irOrOf(o.half(off, etherIPv4), o.half(off, etherIPv6)) }
	// VXLAN: the I flag, then Ethernet after the 8-byte header.
	vxlan := irIfOf(irCmpOf(ldB, o.base+8, 0, bpf.JumpBitsSet, 0x08), eth(16), irTrue)
	// Geneve: version 0 without options, then Ethernet or IP.
	geneve := irIfOf(irCmpOf(ldB, o.base+8, 0, bpf.JumpEqual, 0),
		irIfOf(o.half(8+2, etherBridge), eth(16), irAndOf(isIP(8+2), ip(16))), irTrue)
	udp := irIfOf(irOrOf(o.half(2, udpVXLAN), o.half(2, udpVXLANFlannel)), vxlan,
		irAndOf(o.half(2, udpGeneve), geneve))
	// GRE: no flags (4 bytes) or a key (8), then IP or Ethernet.
	greBody := func(off uint32) *irNode {
		return irIfOf(isIP(2), ip(off), irAndOf(o.half(2, etherBridge), eth(off)))
	}
	gre := irIfOf(o.half(0, 0), greBody(4), irIfOf(o.half(0, 0x2000), greBody(8), irTrue))
	return irIfOf(o.isProto(ipProtoUDP), udp,
		irIfOf(o.isProto(ipProtoGRE), gre, irAndOf(irOrOf(o.isProto(ipProtoIPv4), o.isProto(ipProtoIPv6)), ip(0))))
}

// innerLayout is where an overlay packet's inner packet is (off, from
// the outer IP payload) and how it is framed, when guard holds.
type innerLayout struct {
	guard *irNode
	off   uint32
	eth   bool // an Ethernet frame (else an IP packet)
}

// layouts are the overlay packets judge looks into, one by one (for
// FanoutProgram, which hashes the inner packet).
func (o outerIP) layouts() []innerLayout {
	udp := func(ports ...uint32) *irNode {
		p := irFalse
		for _, n := range ports {
			p = irOrOf(p, o.half(2, n))
		}
		return irAndOf(o.isProto(ipProtoUDP), p)
	}
	geneve := irAndOf(udp(udpGeneve), irCmpOf(ldB, o.base+8, 0, bpf.JumpEqual, 0))
	isIP := func(off uint32) *irNode { return irOrOf(o.half(off, etherIPv4), o.half(off, etherIPv6)) }
	gre := func(flags uint32) *irNode { return irAndOf(o.isProto(ipProtoGRE), o.half(0, flags)) }
	return []innerLayout{
		{irAndOf(udp(udpVXLAN, udpVXLANFlannel), irCmpOf(ldB, o.base+8, 0, bpf.JumpBitsSet, 0x08)), 16, true},
		{irAndOf(geneve, o.half(8+2, etherBridge)), 16, true},
		{irAndOf(geneve, isIP(8+2)), 16, false},
		{irAndOf(gre(0), isIP(2)), 4, false},
		{irAndOf(gre(0), o.half(2, etherBridge)), 4, true},
		{irAndOf(gre(0x2000), isIP(2)), 8, false},
		{irAndOf(gre(0x2000), o.half(2, etherBridge)), 8, true},
		{irOrOf(o.isProto(ipProtoIPv4), o.isProto(ipProtoIPv6)), 0, false},
	}
}

// inner is the layout of an inner packet at off.
func (ll linkLayout) inner(off uint32, eth bool) linkLayout {
	if eth {
		return linkLayout{l3: off + 14, ethOff: int(off + 12), linkType: ll.linkType}
	}
	return linkLayout{l3: off, ethOff: -1, nibble: true, linkType: ll.linkType}
}

// innerJudged decides an inner IP packet, wherever the base says it
// starts: TCP that matches n (capture does not decode an inner IPv6
// packet with extension headers), or an overlay packet itself (a tunnel
// in a tunnel), kept for capture to judge. It is emitted once: each
// overlay layout sets the base and jumps to it.
func innerJudged(n *fnode) *irNode {
	ll := linkLayout{l3: 0, ethOff: -1, nibble: true}
	out := irFalse
	for _, v6 := range []bool{false, true} {
		o := ll.outer(v6)
		out = irOrOf(out, irAndOf(ll.family(v6), irOrOf(irAndOf(ll.tcp(v6), ll.lower(n, v6)), irAndOf(o.whole, o.cand))))
	}
	shared := *relative(out)
	shared.shared = true
	return &shared
}
