package filter

import (
	"net/netip"
	"strconv"
)

// The parse tree: what an expression says, before it is lowered for the
// kernel (lower.go) or turned into a Matcher (match.go).

type direction uint8

const (
	dirEither direction = iota // src or dst (the default)
	dirSrc
	dirDst
	dirBoth // src and dst
)

type fkind uint8

const (
	fAnd fkind = iota
	fOr
	fNot
	fNet  // host is a net with a full-length prefix
	fPort // port is a range lo-lo
	fIP4
	fIP6
	fTCP
)

type fnode struct {
	k      fkind
	dir    direction
	a, b   *fnode
	pfx    netip.Prefix
	lo, hi uint16
	// what the user wrote, for String
	word string // "host", "net", "port", "portrange"
}

func (n *fnode) String() string {
	if n == nil {
		return "tcp"
	}
	dir := [...]string{"", "src ", "dst ", "src and dst "}[n.dir]
	switch n.k {
	case fAnd:
		return "(" + n.a.String() + " and " + n.b.String() + ")"
	case fOr:
		return "(" + n.a.String() + " or " + n.b.String() + ")"
	case fNot:
		return "not " + n.a.String()
	case fNet:
		if n.pfx.IsSingleIP() {
			return dir + "host " + n.pfx.Addr().String()
		}
		return dir + "net " + n.pfx.String()
	case fPort:
		if n.lo == n.hi {
			return dir + "port " + strconv.Itoa(int(n.lo))
		}
		return dir + "portrange " + strconv.Itoa(int(n.lo)) + "-" + strconv.Itoa(int(n.hi))
	case fIP4:
		return "ip"
	case fIP6:
		return "ip6"
	case fTCP:
		return "tcp"
	}
	return "?"
}

func fand(a, b *fnode) *fnode {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return &fnode{k: fAnd, a: a, b: b}
}
