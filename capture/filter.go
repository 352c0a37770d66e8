package capture

// A small pcap-filter compiler: a documented subset of tcpdump's filter
// language, compiled to classic BPF for the kernel (live capture) and to a
// pure-Go matcher for capture files, from the same parse tree.
//
// Supported grammar (the rest of pcap-filter(7) is rejected with an error
// naming the token):
//
//	[src|dst|src or dst|src and dst] host ADDR   IPv4 or IPv6 address, no names
//	[src|dst|...] net CIDR                       10.0.0.0/8, 2001:db8::/32 (or a bare address)
//	[src|dst|...] port N                         0-65535, numbers only
//	[src|dst|...] portrange A-B
//	tcp, ip, ip6                                 also as qualifiers: "tcp port 80",
//	                                             "ip host 10.0.0.1", "ip6 net fd00::/8"
//	and &&  or ||  not !  ( )
//
// As in pcap, "and" and "or" have the same precedence and group left to
// right ("a or b and c" is "(a or b) and c"), "not" binds tightest, and a
// bare value repeats the previous primitive's keywords ("port 80 or 443",
// "host 10.0.0.1 or 10.0.0.2"). A bare address with nothing before it is a
// host. "src ADDR" is "src host ADDR".
//
// Every compiled filter is implicitly ANDed with "tcp": wsdiag reads nothing
// else. Fragmented IPv4 packets are never matched (the decoder drops them
// too). For IPv6 the filter follows what the decoder follows: TCP as the
// fixed header's next header, or behind one hop-by-hop options header
// (gopacket's IPv6 layer skips that one); packets with any other extension
// header before TCP are not matched. Ethernet frames must carry IPv4/IPv6
// directly (no 802.1Q tag in the frame data: Linux hands VLAN tags to
// packet sockets out of band).

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// FilterSyntax lists what the filter language supports; it ends every
// error about an unsupported token.
const FilterSyntax = "supported: [src|dst] host ADDR, [src|dst] net CIDR, [src|dst] port N, " +
	"[src|dst] portrange A-B, tcp, ip, ip6, combined with and/&&, or/||, not/! and parentheses"

// A FilterError describes what is wrong with a filter expression.
type FilterError struct {
	Expr string // the expression
	Pos  int    // byte offset of the offending token (len(Expr) at the end)
	Msg  string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("filter %q: %s", e.Expr, e.Msg)
}

// ---------------------------------------------------------------------------
// parse tree

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

// ---------------------------------------------------------------------------
// tokenizer

type ftoken struct {
	s   string
	pos int
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == ':' || c == '/' || c == '-' || c == '_' || c == '%'
}

func tokenize(s string) []ftoken {
	var toks []ftoken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, ftoken{s[i : i+1], i})
			i++
		case c == '!' && i+1 < len(s) && s[i+1] == '=':
			toks = append(toks, ftoken{"!=", i})
			i += 2
		case c == '!':
			toks = append(toks, ftoken{"!", i})
			i++
		case (c == '&' || c == '|') && i+1 < len(s) && s[i+1] == c:
			toks = append(toks, ftoken{s[i : i+2], i})
			i += 2
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, ftoken{s[i:j], i})
			i = j
		default:
			// one character we do not understand ([, ], =, <, &, ...)
			toks = append(toks, ftoken{s[i : i+1], i})
			i++
		}
	}
	return toks
}

// ---------------------------------------------------------------------------
// parser

// pcap keywords outside the subset, to say so instead of "unknown word".
var unsupportedKeywords = map[string]string{
	"udp": "wsdiag captures TCP only", "icmp": "wsdiag captures TCP only", "icmp6": "wsdiag captures TCP only",
	"sctp": "wsdiag captures TCP only", "igmp": "wsdiag captures TCP only", "arp": "wsdiag captures TCP only",
	"rarp": "wsdiag captures TCP only", "ether": "link-layer filters are not supported",
	"vlan": "link-layer filters are not supported", "mpls": "link-layer filters are not supported",
	"gateway": "", "proto": "", "broadcast": "", "multicast": "", "less": "", "greater": "", "len": "",
	"inbound": "", "outbound": "", "ifname": "", "on": "", "protochain": "", "decnet": "", "wlan": "",
	"link": "", "ppp": "", "slip": "", "fddi": "", "tr": "", "atalk": "", "aarp": "", "iso": "",
	"stp": "", "ipx": "", "netbeui": "", "mask": "", "type": "", "subtype": "", "dir": "",
}

type fparser struct {
	expr string
	toks []ftoken
	i    int
	// the last primitive's keywords, for "port 80 or 443"
	last     string // "host", "net", "port", "portrange" or ""
	lastDir  direction
	lastQual string // "", "ip", "ip6", "tcp"
}

func (p *fparser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].s
	}
	return ""
}

func (p *fparser) pos() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].pos
	}
	return len(p.expr)
}

func (p *fparser) errf(format string, args ...any) error {
	return &FilterError{Expr: p.expr, Pos: p.pos(), Msg: fmt.Sprintf(format, args...)}
}

func (p *fparser) unsupported() error {
	if p.i >= len(p.toks) {
		return p.errf("unexpected end of expression; %s", FilterSyntax)
	}
	t := p.peek()
	if why, ok := unsupportedKeywords[strings.ToLower(t)]; ok {
		if why == "" {
			why = "not in the supported subset"
		}
		return p.errf("%q is not supported (%s); %s", t, why, FilterSyntax)
	}
	return p.errf("unsupported token %q at offset %d; %s", t, p.pos(), FilterSyntax)
}

// parseFilter parses expr; an empty (or all-blank) expression is nil.
func parseFilter(expr string) (*fnode, error) {
	p := &fparser{expr: expr, toks: tokenize(expr)}
	if len(p.toks) == 0 {
		return nil, nil
	}
	n, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		if p.peek() == ")" {
			return nil, p.errf("unbalanced %q at offset %d", ")", p.pos())
		}
		if isKeyword(p.peek()) || looksLikeValue(p.peek()) {
			return nil, p.errf("expected \"and\" or \"or\" before %q at offset %d", p.peek(), p.pos())
		}
		return nil, p.unsupported()
	}
	return n, nil
}

func isAnd(s string) bool { return s == "and" || s == "&&" }
func isOr(s string) bool  { return s == "or" || s == "||" }
func isKeyword(s string) bool {
	switch s {
	case "host", "net", "port", "portrange", "src", "dst", "tcp", "ip", "ip6", "not", "!", "(":
		return true
	}
	return false
}

func (p *fparser) parseExpr() (*fnode, error) {
	n, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		var k fkind
		switch {
		case isAnd(t):
			k = fAnd
		case isOr(t):
			k = fOr
		default:
			return n, nil
		}
		p.i++
		m, err := p.parseTerm()
		if err != nil {
			return nil, err
		}
		n = &fnode{k: k, a: n, b: m}
	}
}

func (p *fparser) parseTerm() (*fnode, error) {
	switch t := p.peek(); {
	case t == "not" || t == "!":
		p.i++
		n, err := p.parseTerm()
		if err != nil {
			return nil, err
		}
		return &fnode{k: fNot, a: n}, nil
	case t == "(":
		open := p.pos()
		p.i++
		n, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			if p.i >= len(p.toks) {
				return nil, &FilterError{Expr: p.expr, Pos: open, Msg: fmt.Sprintf("unbalanced \"(\" at offset %d", open)}
			}
			if isKeyword(p.peek()) || looksLikeValue(p.peek()) {
				return nil, p.errf("expected \"and\", \"or\" or \")\" before %q at offset %d", p.peek(), p.pos())
			}
			return nil, p.unsupported()
		}
		p.i++
		return n, nil
	}
	return p.parsePrimitive()
}

func looksLikeValue(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return c >= '0' && c <= '9' || strings.Contains(s, ":")
}

func (p *fparser) parsePrimitive() (*fnode, error) {
	t := p.peek()
	switch t {
	case "":
		return nil, p.errf("unexpected end of expression; %s", FilterSyntax)
	case "tcp", "ip", "ip6":
		p.i++
		next := p.peek()
		qualifies := next == "host" || next == "net" || next == "port" || next == "portrange" || next == "src" || next == "dst"
		if !qualifies {
			switch t {
			case "tcp":
				return &fnode{k: fTCP}, nil
			case "ip":
				return &fnode{k: fIP4}, nil
			default:
				return &fnode{k: fIP6}, nil
			}
		}
		return p.parseQualified(t)
	case "src", "dst", "host", "net", "port", "portrange":
		return p.parseQualified("")
	}
	if looksLikeValue(t) {
		if p.last == "" {
			// a bare address is a host (as in pcap); a bare number means nothing
			if strings.Contains(t, "/") {
				return p.parseValue("", "net", dirEither)
			}
			if strings.ContainsAny(t, ".:") {
				return p.parseValue("", "host", dirEither)
			}
			return nil, p.errf("%q at offset %d: a value needs a keyword before it (host, net, port or portrange); %s", t, p.pos(), FilterSyntax)
		}
		return p.parseValue(p.lastQual, p.last, p.lastDir)
	}
	return nil, p.unsupported()
}

// parseQualified parses [dir] [host|net|port|portrange] VALUE after an
// optional protocol qualifier.
func (p *fparser) parseQualified(qual string) (*fnode, error) {
	dir := dirEither
	if t := p.peek(); t == "src" || t == "dst" {
		p.i++
		dir = dirSrc
		if t == "dst" {
			dir = dirDst
		}
		// "src or dst", "src and dst"
		if c := p.peek(); (isOr(c) || isAnd(c)) && p.i+1 < len(p.toks) {
			other := p.toks[p.i+1].s
			if (t == "src" && other == "dst") || (t == "dst" && other == "src") {
				if isOr(c) {
					dir = dirEither
				} else {
					dir = dirBoth
				}
				p.i += 2
			}
		}
	}
	word := p.peek()
	switch word {
	case "host", "net", "port", "portrange":
		p.i++
	default:
		if dir != dirEither && looksLikeValue(word) {
			// "src 10.0.0.1", "dst 10.0.0.0/8"
			if strings.Contains(word, "/") {
				word = "net"
			} else {
				word = "host"
			}
		} else if word == "" {
			return nil, p.errf("unexpected end of expression: expected host, net, port or portrange")
		} else {
			return nil, p.errf("expected host, net, port or portrange at offset %d, found %q; %s", p.pos(), word, FilterSyntax)
		}
	}
	switch {
	case qual == "tcp" && (word == "host" || word == "net"):
		return nil, p.errf("\"tcp %s\" is not supported: write \"tcp and %s ...\"", word, word)
	case (qual == "ip" || qual == "ip6") && (word == "port" || word == "portrange"):
		return nil, p.errf("\"%s %s\" is not supported: write \"%s and %s ...\"", qual, word, qual, word)
	}
	return p.parseValue(qual, word, dir)
}

func (p *fparser) parseValue(qual, word string, dir direction) (*fnode, error) {
	v := p.peek()
	if v == "" || !isValueToken(v) {
		if v == "" {
			return nil, p.errf("unexpected end of expression: %s needs a value", word)
		}
		return nil, p.errf("%s needs a value at offset %d, found %q", word, p.pos(), v)
	}
	n := &fnode{dir: dir, word: word}
	switch word {
	case "host":
		if strings.Contains(v, "/") {
			return nil, p.errf("host %s: host takes an address; for a CIDR use \"net %s\"", v, v)
		}
		a, err := parseAddr(v)
		if err != nil {
			return nil, p.errf("host %s: %v", v, err)
		}
		n.k, n.pfx = fNet, netip.PrefixFrom(a, a.BitLen())
	case "net":
		var pfx netip.Prefix
		if strings.Contains(v, "/") {
			a, bits, _ := strings.Cut(v, "/")
			addr, err := parseAddr(a)
			if err != nil {
				return nil, p.errf("net %s: %v", v, err)
			}
			b, err := strconv.Atoi(bits)
			if err != nil || b < 0 || b > addr.BitLen() {
				return nil, p.errf("net %s: prefix length must be 0-%d", v, addr.BitLen())
			}
			pfx = netip.PrefixFrom(addr, b)
			if pfx.Masked() != pfx {
				return nil, p.errf("net %s: non-network bits set (did you mean %s?)", v, pfx.Masked())
			}
		} else {
			addr, err := parseAddr(v)
			if err != nil {
				return nil, p.errf("net %s: %v", v, err)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		n.k, n.pfx = fNet, pfx
	case "port":
		if strings.Contains(v, "-") {
			return nil, p.errf("port %s: for a range use \"portrange %s\"", v, v)
		}
		x, err := parsePort(v)
		if err != nil {
			return nil, p.errf("port %s: %v", v, err)
		}
		n.k, n.lo, n.hi = fPort, x, x
	case "portrange":
		a, b, ok := strings.Cut(v, "-")
		if !ok {
			return nil, p.errf("portrange %s: expected A-B", v)
		}
		lo, err := parsePort(a)
		if err != nil {
			return nil, p.errf("portrange %s: %v", v, err)
		}
		hi, err := parsePort(b)
		if err != nil {
			return nil, p.errf("portrange %s: %v", v, err)
		}
		if lo > hi { // as pcap does
			lo, hi = hi, lo
		}
		n.k, n.lo, n.hi = fPort, lo, hi
	}
	if n.k == fNet {
		switch {
		case qual == "ip" && !n.pfx.Addr().Is4():
			return nil, p.errf("ip %s %s: not an IPv4 address", word, v)
		case qual == "ip6" && !n.pfx.Addr().Is6():
			return nil, p.errf("ip6 %s %s: not an IPv6 address", word, v)
		}
	}
	p.i++
	p.last, p.lastDir, p.lastQual = word, dir, qual
	return n, nil
}

func isValueToken(s string) bool {
	if s == "" || isKeyword(s) || isAnd(s) || isOr(s) || s == ")" {
		return false
	}
	return isWordByte(s[0])
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if !strings.ContainsAny(s, ".:") || strings.IndexFunc(s, func(r rune) bool { return r >= 'g' && r <= 'z' }) >= 0 {
			return netip.Addr{}, errors.New("only numeric IPv4/IPv6 addresses are supported (no name lookup)")
		}
		return netip.Addr{}, errors.New("not a valid IPv4 or IPv6 address")
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New("addresses with a zone (%…) are not supported")
	}
	return a, nil
}

func parsePort(s string) (uint16, error) {
	x, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, errors.New("expected a port number 0-65535 (service names are not supported)")
	}
	return uint16(x), nil
}

// WatchFilter is the filter expression for the traffic wsdiag watches: TCP
// on one of clientPorts, or to/from one of upstreams. With no upstreams it
// is "" (all TCP): HTTP is recognised by content on any port. An upstream
// with an unspecified address matches its port on any address; one with
// port 0 matches every port of its address.
func WatchFilter(clientPorts []uint16, upstreams []netip.AddrPort) string {
	if len(upstreams) == 0 {
		return ""
	}
	var parts []string
	for _, p := range clientPorts {
		parts = append(parts, "port "+strconv.Itoa(int(p)))
	}
	for _, u := range upstreams {
		a, port := u.Addr().Unmap(), u.Port()
		switch {
		case !a.IsValid() || a.IsUnspecified():
			if port == 0 {
				return "" // everything
			}
			parts = append(parts, "port "+strconv.Itoa(int(port)))
		case port == 0:
			parts = append(parts, "host "+a.String())
		default:
			ps := strconv.Itoa(int(port))
			parts = append(parts, "(src host "+a.String()+" and src port "+ps+") or (dst host "+a.String()+" and dst port "+ps+")")
		}
	}
	return strings.Join(parts, " or ")
}

// CombineFilters returns "(a) and (b)", or the non-empty one.
func CombineFilters(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + ") and (" + b + ")"
}

// ---------------------------------------------------------------------------
// BPF: the parse tree is specialised per address family into a tree of
// comparisons, then code is generated with true/false labels.

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

func irAndOf(a, b *irNode) *irNode {
	switch {
	case a.k == irConst && !a.val, b.k == irConst && !b.val:
		return irFalse
	case a.k == irConst:
		return b
	case b.k == irConst:
		return a
	}
	return &irNode{k: irAnd, a: a, b: b}
}

func irOrOf(a, b *irNode) *irNode {
	switch {
	case a.k == irConst && a.val, b.k == irConst && b.val:
		return irTrue
	case a.k == irConst:
		return b
	case b.k == irConst:
		return a
	}
	return &irNode{k: irOr, a: a, b: b}
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

// CompileFilter compiles a filter expression (see FilterSyntax; "" is all
// TCP) into a classic BPF program for packets of link type lt (Ethernet,
// Linux SLL/SLL2 or raw IP). The program accepts TCP over IPv4/IPv6 that
// matches expr, returning libpcap's maximum snap length, and rejects the
// rest.
func CompileFilter(expr string, lt layers.LinkType) ([]bpf.RawInstruction, error) {
	ll, err := layoutFor(lt)
	if err != nil {
		return nil, err
	}
	n, err := parseFilter(expr)
	if err != nil {
		return nil, err
	}
	prog, err := compileIR(ll.program(irTrue, n), defaultFilterSnaplen)
	if err != nil {
		return nil, err
	}
	return assembleRaw(prog)
}

// ---------------------------------------------------------------------------
// Matcher: the same expression evaluated on decoded packets.

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

// NewMatcher parses expr (see FilterSyntax; "" matches everything) for
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

// Match reports whether the packet matches. Packets are TCP already (the
// decoder keeps nothing else), so "tcp" always holds.
func (m Matcher) Match(p *Packet) bool {
	if len(m.nodes) == 0 {
		return true
	}
	var f matchFields
	if p.TCP == nil {
		return false
	}
	if m.addrs && !flowAddrs(p, &f) {
		return false
	}
	f.sp, f.dp = uint16(p.TCP.SrcPort), uint16(p.TCP.DstPort)
	return m.eval(int32(len(m.nodes)-1), &f)
}

func flowAddrs(p *Packet, f *matchFields) bool {
	src, dst := p.Net.Endpoints()
	switch p.Net.EndpointType() {
	case layers.EndpointIPv4:
		s, d := src.Raw(), dst.Raw()
		if len(s) != 4 || len(d) != 4 {
			return false
		}
		f.src = netip.AddrFrom4([4]byte(s))
		f.dst = netip.AddrFrom4([4]byte(d))
	case layers.EndpointIPv6:
		s, d := src.Raw(), dst.Raw()
		if len(s) != 16 || len(d) != 16 {
			return false
		}
		f.src = netip.AddrFrom16([16]byte(s))
		f.dst = netip.AddrFrom16([16]byte(d))
		f.v6 = true
	default:
		return false
	}
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
