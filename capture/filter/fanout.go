package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// A live capture spreads connections over its sockets with PACKET_FANOUT,
// and each socket's worker needs both directions of each connection. The
// kernel's flow hash is symmetric, but on an overlay it hashes the outer
// packet: VXLAN and Geneve send each direction from another UDP source
// port, so the two directions of a pod's connection would land on two
// workers. FanoutProgram is a PACKET_FANOUT_CBPF program that hashes the
// inner 4-tuple where its place is fixed (the layouts the filter judges,
// tunnel.go), else the packet's own TCP 4-tuple; other packets (overlay
// packets of other layouts among them) all go to the first socket, so
// that they stay together too.

// skfNetOff is the kernel's SKF_NET_OFF: loads from it on are relative to
// the network header, which is where the packet starts on a cooked socket
// and after the link header on a raw one, or before the link header is
// pulled (the fanout program runs on the packet as it arrives).
const skfNetOff = 0xfff00000 // -0x100000

// FanoutProgram is the program for a group of n sockets: a symmetric
// hash of the connection's addresses and ports (inner ones in an
// overlay), modulo n.
func FanoutProgram(n int) ([]bpf.RawInstruction, error) { return fanoutProgram(n, skfNetOff) }

// fanoutProgram builds it with network-relative loads from base (0: the
// packet starts at its IP header, for a test's VM).
func fanoutProgram(n int, base uint32) ([]bpf.RawInstruction, error) {
	if n < 1 {
		return nil, fmt.Errorf("filter: a fanout group of %d sockets", n)
	}
	ll := linkLayout{l3: base, ethOff: -1, nibble: true}
	g := &codegen{}
	hashCase := func(cond *irNode, at linkLayout, v6 bool) {
		match, next := g.label(), g.label()
		g.gen(cond, match, next)
		g.place(match)
		at.hash(g, v6)
		g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0x9e3779b1})
		g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
		g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(n)})
		g.emit(bpf.RetA{})
		g.place(next)
	}
	for _, v6 := range []bool{false, true} {
		hashCase(irAndOf(ll.family(v6), ll.tcp(v6)), ll, v6)
	}
	for _, v6 := range []bool{false, true} {
		o := ll.outer(v6)
		for _, c := range o.layouts() {
			in := ll.inner(o.base+c.off, c.eth)
			for _, iv6 := range []bool{false, true} {
				cond := irAndOf(irAndOf(ll.family(v6), irAndOf(o.whole, o.fixed)), irAndOf(c.guard, irAndOf(in.family(iv6), in.tcp(iv6))))
				hashCase(cond, in, iv6)
			}
		}
	}
	g.emit(bpf.RetConstant{Val: 0})
	prog, err := g.assemble()
	if err != nil {
		return nil, err
	}
	return assembleRaw(prog)
}

// tcp: the packet (of the family, at ll) is TCP, not a fragment, the TCP
// header right after the IP header.
func (ll linkLayout) tcp(v6 bool) *irNode {
	if v6 {
		return irCmpOf(ldB, ll.l3+6, 0, bpf.JumpEqual, 6)
	}
	return irAndOf(irCmpOf(ldB, ll.l3+9, 0, bpf.JumpEqual, 6), irNotOf(irCmpOf(ldH, ll.l3+6, 0, bpf.JumpBitsSet, 0x3fff)))
}

// hash leaves in A the xor of the packet's source and destination
// addresses and ports (the same both ways).
func (ll linkLayout) hash(g *codegen, v6 bool) {
	words := []uint32{ll.l3 + 12, ll.l3 + 16}
	if v6 {
		words = words[:0]
		for i := uint32(0); i < 8; i++ {
			words = append(words, ll.l3+8+4*i)
		}
	}
	for i, w := range words {
		g.emit(bpf.LoadAbsolute{Off: w, Size: 4})
		if i > 0 {
			g.emit(bpf.LoadScratch{Dst: bpf.RegX, N: 0})
			g.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
		}
		g.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	}
	if v6 {
		g.emit(bpf.LoadAbsolute{Off: ll.l3 + 40, Size: 2})
		g.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
		g.emit(bpf.LoadAbsolute{Off: ll.l3 + 42, Size: 2})
	} else {
		g.emit(bpf.LoadMemShift{Off: ll.l3})
		g.emit(bpf.LoadIndirect{Off: ll.l3, Size: 2})
		g.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
		g.emit(bpf.LoadIndirect{Off: ll.l3 + 2, Size: 2})
	}
	g.emit(bpf.LoadScratch{Dst: bpf.RegX, N: 1})
	g.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
	g.emit(bpf.LoadScratch{Dst: bpf.RegX, N: 0})
	g.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
}
