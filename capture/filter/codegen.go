package filter

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// BPF code generation: the comparison tree (lower.go) is emitted with
// true/false labels, and far jumps are resolved.

// maxBPFInsns is the kernel's BPF_MAXINSNS.
const maxBPFInsns = 4096

// defaultFilterSnaplen is what an accepting filter returns without a
// snap length: libpcap's maximum.
const defaultFilterSnaplen = 262144

type cgLabel struct{ at int }

type cgInsn struct {
	ins  bpf.Instruction // plain instruction, or nil for a jump
	ja   *cgLabel        // unconditional jump
	cond bpf.JumpTest
	k    uint32
	t, f *cgLabel
}

type codegen struct {
	insns []cgInsn
}

func (g *codegen) label() *cgLabel        { return &cgLabel{at: -1} }
func (g *codegen) place(l *cgLabel)       { l.at = len(g.insns) }
func (g *codegen) emit(i bpf.Instruction) { g.insns = append(g.insns, cgInsn{ins: i}) }

func (g *codegen) gen(n *irNode, t, f *cgLabel) {
	switch n.k {
	case irConst:
		if n.val {
			g.insns = append(g.insns, cgInsn{ja: t})
		} else {
			g.insns = append(g.insns, cgInsn{ja: f})
		}
	case irAnd:
		m := g.label()
		g.gen(n.a, m, f)
		g.place(m)
		g.gen(n.b, t, f)
	case irOr:
		m := g.label()
		g.gen(n.a, t, m)
		g.place(m)
		g.gen(n.b, t, f)
	case irNot:
		g.gen(n.a, f, t)
	case irCmp:
		switch n.load {
		case ldB:
			g.emit(bpf.LoadAbsolute{Off: n.off, Size: 1})
		case ldH:
			g.emit(bpf.LoadAbsolute{Off: n.off, Size: 2})
		case ldW:
			g.emit(bpf.LoadAbsolute{Off: n.off, Size: 4})
		case ldIndH:
			g.emit(bpf.LoadMemShift{Off: n.xoff})
			g.emit(bpf.LoadIndirect{Off: n.off, Size: 2})
		case ldHBH:
			g.emit(bpf.LoadAbsolute{Off: n.xoff, Size: 1})
			g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3})
			g.emit(bpf.TAX{})
			g.emit(bpf.LoadIndirect{Off: n.off, Size: 2})
		case ldExt:
			g.emit(bpf.LoadExtension{Num: n.ext})
		}
		if n.mask != 0 {
			g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: n.mask})
		}
		g.insns = append(g.insns, cgInsn{cond: n.cond, k: n.kval, t: t, f: f})
	}
}

// assemble resolves labels; conditional jumps reach 255 instructions at
// most, so farther targets get an unconditional jump next to the branch.
func (g *codegen) assemble() ([]bpf.Instruction, error) {
	type pin struct {
		ins  bpf.Instruction
		ja   *pin
		cond bpf.JumpTest
		k    uint32
		t, f *pin
	}
	pins := make([]*pin, len(g.insns))
	for i := range g.insns {
		pins[i] = &pin{ins: g.insns[i].ins, cond: g.insns[i].cond, k: g.insns[i].k}
	}
	for i, in := range g.insns {
		switch {
		case in.ja != nil:
			pins[i].ja = pins[in.ja.at]
		case in.t != nil:
			pins[i].t, pins[i].f = pins[in.t.at], pins[in.f.at]
			if in.t == in.f || in.t.at == in.f.at {
				pins[i].ja, pins[i].t, pins[i].f = pins[in.t.at], nil, nil
			}
		}
	}
	pos := make(map[*pin]int, len(pins))
	for {
		if len(pins) > maxBPFInsns {
			return nil, fmt.Errorf("filter: too complex (more than %d BPF instructions)", maxBPFInsns)
		}
		for i, p := range pins {
			pos[p] = i
		}
		changed := false
		out := make([]*pin, 0, len(pins))
		for i, p := range pins {
			out = append(out, p)
			if p.t == nil {
				continue
			}
			if pos[p.t]-i-1 > 255 {
				tr := &pin{ja: p.t}
				p.t = tr
				out = append(out, tr)
				changed = true
			}
			if pos[p.f]-i-1 > 255 {
				tr := &pin{ja: p.f}
				p.f = tr
				out = append(out, tr)
				changed = true
			}
		}
		pins = out
		if !changed {
			break
		}
	}
	prog := make([]bpf.Instruction, len(pins))
	for i, p := range pins {
		switch {
		case p.ja != nil:
			prog[i] = bpf.Jump{Skip: uint32(pos[p.ja] - i - 1)}
		case p.t != nil:
			prog[i] = bpf.JumpIf{Cond: p.cond, Val: p.k, SkipTrue: uint8(pos[p.t] - i - 1), SkipFalse: uint8(pos[p.f] - i - 1)}
		default:
			prog[i] = p.ins
		}
	}
	return prog, nil
}

// compileIR generates the program; accepted packets are cut to snaplen.
func compileIR(root *irNode, snaplen int) ([]bpf.Instruction, error) {
	if snaplen <= 0 {
		snaplen = defaultFilterSnaplen
	}
	g := &codegen{}
	accept, reject := g.label(), g.label()
	g.gen(root, accept, reject)
	g.place(accept)
	g.emit(bpf.RetConstant{Val: uint32(snaplen)})
	g.place(reject)
	g.emit(bpf.RetConstant{Val: 0})
	return g.assemble()
}

func assembleRaw(prog []bpf.Instruction) ([]bpf.RawInstruction, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("filter: %v", err)
	}
	return raw, nil
}

// Compile compiles a filter expression (see Syntax; "" is all TCP) into
// a classic BPF program for packets of link type lt (Ethernet, Linux
// SLL/SLL2 or raw IP). The program accepts TCP over IPv4/IPv6 that matches
// expr, returning libpcap's maximum snap length, and rejects the rest.
func Compile(expr string, lt layers.LinkType) ([]bpf.RawInstruction, error) {
	if _, err := layoutFor(lt); err != nil {
		return nil, err
	}
	e, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	return e.Program(lt, Socket{}, defaultFilterSnaplen)
}

// Program compiles e for a live socket s delivering packets of link type
// lt: what s checks first, then TCP over IPv4/IPv6 that matches e.
// Accepted packets are cut to snaplen (0: libpcap's maximum).
func (e Expr) Program(lt layers.LinkType, s Socket, snaplen int) ([]bpf.RawInstruction, error) {
	ll, err := layoutFor(lt)
	if err != nil {
		return nil, err
	}
	prog, err := compileIR(ll.program(s.prefix(), e.n), snaplen)
	if err != nil {
		return nil, err
	}
	return assembleRaw(prog)
}
