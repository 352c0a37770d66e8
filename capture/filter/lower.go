package filter

import (
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// Lowering: the parse tree is specialised per address family into a tree
// of comparisons of packet bytes at fixed offsets (irNode), which codegen.go
// turns into BPF instructions.

type irKind uint8

const (
	irConst irKind = iota
	irAnd
	irOr
	irNot
	irCmp
)

type loadKind uint8

const (
	ldB    loadKind = iota // ldb [off]
	ldH                    // ldh [off]
	ldW                    // ld [off]
	ldIndH                 // ldx 4*([xoff]&0xf); ldh [x+off]
	ldHBH                  // ldb [xoff]; lsh #3; tax; ldh [x+off]: after an IPv6 hop-by-hop header
	ldExt                  // ld #ext
)

type irNode struct {
	k    irKind
	val  bool
	a, b *irNode

	load loadKind
	off  uint32
	xoff uint32
	ext  bpf.Extension
	mask uint32 // 0: none
	cond bpf.JumpTest
	kval uint32
}

var (
	irTrue  = &irNode{k: irConst, val: true}
	irFalse = &irNode{k: irConst, val: false}
)

func irAndOf(a, b *irNode) *irNode { return irJoin(irAnd, irFalse, a, b) }

func irOrOf(a, b *irNode) *irNode { return irJoin(irOr, irTrue, a, b) }

// irJoin is "a k b" (irAnd or irOr) with constants folded: decides is the
// constant that decides it alone (false for and, true for or); the other
// constant drops out.
func irJoin(k irKind, decides, a, b *irNode) *irNode {
	switch {
	case a.k == irConst && a.val == decides.val, b.k == irConst && b.val == decides.val:
		return decides
	case a.k == irConst:
		return b
	case b.k == irConst:
		return a
	}
	return &irNode{k: k, a: a, b: b}
}

func irNotOf(a *irNode) *irNode {
	switch {
	case a.k == irConst:
		if a.val {
			return irFalse
		}
		return irTrue
	case a.k == irNot:
		return a.a
	}
	return &irNode{k: irNot, a: a}
}

func irCmpOf(load loadKind, off uint32, mask uint32, cond bpf.JumpTest, k uint32) *irNode {
	return &irNode{k: irCmp, load: load, off: off, mask: mask, cond: cond, kval: k}
}

func irExt(ext bpf.Extension, k uint32) *irNode {
	return &irNode{k: irCmp, load: ldExt, ext: ext, cond: bpf.JumpEqual, kval: k}
}

// linkLayout says where the network header starts and how the address
// family is told.
type linkLayout struct {
	l3       uint32 // offset of the IP header
	ethOff   int    // offset of a 16-bit EtherType, or -1
	nibble   bool   // tell the family by the IP version nibble
	only4    bool   // link type carries IPv4 only
	only6    bool   // link type carries IPv6 only
	linkType layers.LinkType
}

func layoutFor(lt layers.LinkType) (linkLayout, error) {
	switch lt {
	case layers.LinkTypeEthernet:
		return linkLayout{l3: 14, ethOff: 12, linkType: lt}, nil
	case layers.LinkTypeLinuxSLL:
		return linkLayout{l3: 16, ethOff: 14, linkType: lt}, nil
	case layers.LinkTypeLinuxSLL2:
		return linkLayout{l3: 20, ethOff: 0, linkType: lt}, nil
	case layers.LinkTypeRaw, 12, 14:
		return linkLayout{l3: 0, ethOff: -1, nibble: true, linkType: lt}, nil
	case layers.LinkTypeIPv4:
		return linkLayout{l3: 0, ethOff: -1, only4: true, linkType: lt}, nil
	case layers.LinkTypeIPv6:
		return linkLayout{l3: 0, ethOff: -1, only6: true, linkType: lt}, nil
	}
	return linkLayout{}, fmt.Errorf("filter: cannot compile for link type %d (%s): supported are Ethernet, Linux SLL, Linux SLL2 and raw IP", int(lt), lt)
}

func (ll linkLayout) family(v6 bool) *irNode {
	switch {
	case ll.only4:
		if v6 {
			return irFalse
		}
		return irTrue
	case ll.only6:
		if v6 {
			return irTrue
		}
		return irFalse
	case ll.nibble:
		v := uint32(0x40)
		if v6 {
			v = 0x60
		}
		return irCmpOf(ldB, ll.l3, 0xf0, bpf.JumpEqual, v)
	}
	v := uint32(0x0800)
	if v6 {
		v = 0x86dd
	}
	return irCmpOf(ldH, uint32(ll.ethOff), 0, bpf.JumpEqual, v)
}

// lower specialises the parse tree for one address family (for IPv6:
// TCP right after the fixed header).
func (ll linkLayout) lower(n *fnode, v6 bool) *irNode { return ll.lowerHBH(n, v6, false) }

// lowerHBH specialises the parse tree for one address family; hbh: IPv6
// with a hop-by-hop options header between the fixed header and TCP.
func (ll linkLayout) lowerHBH(n *fnode, v6, hbh bool) *irNode {
	if n == nil {
		return irTrue
	}
	switch n.k {
	case fAnd:
		return irAndOf(ll.lowerHBH(n.a, v6, hbh), ll.lowerHBH(n.b, v6, hbh))
	case fOr:
		return irOrOf(ll.lowerHBH(n.a, v6, hbh), ll.lowerHBH(n.b, v6, hbh))
	case fNot:
		return irNotOf(ll.lowerHBH(n.a, v6, hbh))
	case fTCP:
		return irTrue
	case fIP4:
		if v6 {
			return irFalse
		}
		return irTrue
	case fIP6:
		if v6 {
			return irTrue
		}
		return irFalse
	case fNet:
		if n.pfx.Addr().Is6() != v6 {
			return irFalse
		}
		src, dst := ll.l3+12, ll.l3+16
		if v6 {
			src, dst = ll.l3+8, ll.l3+24
		}
		return ll.byDir(n.dir, ll.netCmp(src, n.pfx), ll.netCmp(dst, n.pfx))
	case fPort:
		var src, dst *irNode
		switch {
		case v6 && hbh:
			src = portCmp(ldHBH, ll.l3+48, ll.l3+41, n.lo, n.hi)
			dst = portCmp(ldHBH, ll.l3+50, ll.l3+41, n.lo, n.hi)
		case v6:
			src = portCmp(ldH, ll.l3+40, 0, n.lo, n.hi)
			dst = portCmp(ldH, ll.l3+42, 0, n.lo, n.hi)
		default:
			src = portCmp(ldIndH, ll.l3, ll.l3, n.lo, n.hi)
			dst = portCmp(ldIndH, ll.l3+2, ll.l3, n.lo, n.hi)
		}
		return ll.byDir(n.dir, src, dst)
	}
	panic("filter: unknown node")
}

func (ll linkLayout) byDir(d direction, src, dst *irNode) *irNode {
	switch d {
	case dirSrc:
		return src
	case dirDst:
		return dst
	case dirBoth:
		return irAndOf(src, dst)
	}
	return irOrOf(src, dst)
}

func (ll linkLayout) netCmp(off uint32, pfx netip.Prefix) *irNode {
	raw := pfx.Addr().AsSlice()
	bits := pfx.Bits()
	out := irTrue
	for w := 0; w*32 < bits; w++ {
		k := uint32(raw[4*w])<<24 | uint32(raw[4*w+1])<<16 | uint32(raw[4*w+2])<<8 | uint32(raw[4*w+3])
		var mask uint32
		if rem := bits - w*32; rem < 32 {
			mask = ^uint32(0) << (32 - rem)
			k &= mask
		}
		out = irAndOf(out, irCmpOf(ldW, off+uint32(4*w), mask, bpf.JumpEqual, k))
	}
	return out
}

func portCmp(load loadKind, off, xoff uint32, lo, hi uint16) *irNode {
	mk := func(cond bpf.JumpTest, k uint16) *irNode {
		n := irCmpOf(load, off, 0, cond, uint32(k))
		n.xoff = xoff
		return n
	}
	if lo == hi {
		return mk(bpf.JumpEqual, lo)
	}
	out := irTrue
	if lo > 0 {
		out = mk(bpf.JumpGreaterOrEqual, lo)
	}
	if hi < 0xffff {
		out = irAndOf(out, irNotOf(mk(bpf.JumpGreaterThan, hi)))
	}
	return out
}

// program is the whole filter: the kernel-only prefix (ancillary data),
// then per family: the TCP check and the user's expression.
func (ll linkLayout) program(prefix *irNode, n *fnode) *irNode {
	tcp4 := irAndOf(irCmpOf(ldB, ll.l3+9, 0, bpf.JumpEqual, 6),
		irNotOf(irCmpOf(ldH, ll.l3+6, 0, bpf.JumpBitsSet, 0x3fff)))
	tcp6 := irCmpOf(ldB, ll.l3+6, 0, bpf.JumpEqual, 6)
	hbh6 := irAndOf(irCmpOf(ldB, ll.l3+6, 0, bpf.JumpEqual, 0), irCmpOf(ldB, ll.l3+40, 0, bpf.JumpEqual, 6))
	v4 := irAndOf(ll.family(false), irAndOf(tcp4, ll.lower(n, false)))
	v6 := irAndOf(ll.family(true), irOrOf(
		irAndOf(tcp6, ll.lowerHBH(n, true, false)),
		irAndOf(hbh6, ll.lowerHBH(n, true, true))))
	return irAndOf(prefix, irOrOf(v4, v6))
}

// Socket is what a live capture's program checks before the expression,
// on what only the kernel knows of a packet (the packet socket's
// ancillary data). The zero Socket checks nothing: a capture file's
// filter.
type Socket struct {
	// IPOnly keeps IPv4 and IPv6 by the kernel's protocol field: packets
	// without a link header (a cooked socket, raw IP) are told apart by
	// their version nibble, which must not be tried on ARP and the like.
	IPOnly bool
	// Loopback: the socket is on a loopback interface, which shows every
	// packet twice (outgoing and incoming): the outgoing copy is dropped.
	Loopback bool
	// Any: the socket is on every interface; the outgoing copies are
	// dropped on the loopback interfaces (Loopbacks, by index) only, since
	// on a real interface they are the upstream leg.
	Any       bool
	Loopbacks []int
}

// packetOutgoing is skb->pkt_type (PACKET_OUTGOING) of what the host sends.
const packetOutgoing = 4

// prefix is the comparison tree of what s checks.
func (s Socket) prefix() *irNode {
	p := irTrue
	if s.IPOnly {
		p = irOrOf(irExt(bpf.ExtProto, 0x0800), irExt(bpf.ExtProto, 0x86dd))
	}
	switch {
	case s.Any:
		los := irFalse
		for _, i := range s.Loopbacks {
			los = irOrOf(los, irExt(bpf.ExtInterfaceIndex, uint32(i)))
		}
		p = irAndOf(irNotOf(irAndOf(irExt(bpf.ExtType, packetOutgoing), los)), p)
	case s.Loopback:
		p = irAndOf(irNotOf(irExt(bpf.ExtType, packetOutgoing)), p)
	}
	return p
}
