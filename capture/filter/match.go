package filter

import (
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The Matcher: the parse tree evaluated on decoded packets, the capture
// file's counterpart of the kernel's program.

type mop uint8

const (
	mAnd mop = iota
	mOr
	mNot
	mNet
	mPort
	mIP4
	mIP6
	mTrue
)

type mnode struct {
	op     mop
	dir    direction
	a, b   int32
	pfx    netip.Prefix
	lo, hi uint16
}

// A Matcher evaluates a filter expression on decoded packets, without
// allocating. The zero Matcher matches every packet.
type Matcher struct {
	nodes []mnode
	expr  string
	addrs bool // some node looks at addresses (port-only filters do not)
}

// NewMatcher parses expr (see Syntax; "" matches everything) for
// evaluation on decoded packets: capture files get the same filter as the
// kernel applies to live capture.
func NewMatcher(expr string) (Matcher, error) {
	n, err := parseFilter(expr)
	if err != nil {
		return Matcher{}, err
	}
	if n == nil {
		return Matcher{expr: expr}, nil
	}
	m := Matcher{expr: expr}
	m.add(n)
	return m, nil
}

func (m *Matcher) add(n *fnode) int32 {
	var x mnode
	switch n.k {
	case fAnd, fOr:
		x.op = mAnd
		if n.k == fOr {
			x.op = mOr
		}
		x.a = m.add(n.a)
		x.b = m.add(n.b)
	case fNot:
		x.op = mNot
		x.a = m.add(n.a)
	case fNet:
		x.op, x.dir, x.pfx = mNet, n.dir, n.pfx
		m.addrs = true
	case fPort:
		x.op, x.dir, x.lo, x.hi = mPort, n.dir, n.lo, n.hi
	case fIP4:
		x.op = mIP4
		m.addrs = true
	case fIP6:
		x.op = mIP6
		m.addrs = true
	case fTCP:
		x.op = mTrue
	}
	m.nodes = append(m.nodes, x)
	return int32(len(m.nodes) - 1)
}

// String is the expression the Matcher was made from.
func (m Matcher) String() string { return m.expr }

// matchFields are the packet's fields a filter looks at.
type matchFields struct {
	src, dst netip.Addr
	sp, dp   uint16
	v6       bool
}

// Match reports whether the TCP segment tcp, carried between the
// addresses of net, matches. Segments are TCP already (capture's decoder
// keeps nothing else), so "tcp" always holds.
func (m Matcher) Match(net gopacket.Flow, tcp *layers.TCP) bool {
	if len(m.nodes) == 0 {
		return true
	}
	var f matchFields
	if tcp == nil {
		return false
	}
	if m.addrs && !flowAddrs(net, &f) {
		return false
	}
	f.sp, f.dp = uint16(tcp.SrcPort), uint16(tcp.DstPort)
	return m.eval(int32(len(m.nodes)-1), &f)
}

func flowAddrs(net gopacket.Flow, f *matchFields) bool {
	n := 4
	switch net.EndpointType() {
	case layers.EndpointIPv4:
	case layers.EndpointIPv6:
		n, f.v6 = 16, true
	default:
		return false
	}
	src, dst := net.Endpoints()
	s, d := src.Raw(), dst.Raw()
	if len(s) != n || len(d) != n {
		return false
	}
	f.src, _ = netip.AddrFromSlice(s)
	f.dst, _ = netip.AddrFromSlice(d)
	return true
}

func (m Matcher) eval(i int32, f *matchFields) bool {
	n := &m.nodes[i]
	switch n.op {
	case mAnd:
		return m.eval(n.a, f) && m.eval(n.b, f)
	case mOr:
		return m.eval(n.a, f) || m.eval(n.b, f)
	case mNot:
		return !m.eval(n.a, f)
	case mIP4:
		return !f.v6
	case mIP6:
		return f.v6
	case mTrue:
		return true
	case mNet:
		s, d := n.pfx.Contains(f.src), n.pfx.Contains(f.dst)
		return byDir(n.dir, s, d)
	case mPort:
		s := f.sp >= n.lo && f.sp <= n.hi
		d := f.dp >= n.lo && f.dp <= n.hi
		return byDir(n.dir, s, d)
	}
	return false
}

func byDir(d direction, s, t bool) bool {
	switch d {
	case dirSrc:
		return s
	case dirDst:
		return t
	case dirBoth:
		return s && t
	}
	return s || t
}
