package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Syntax lists what the filter language supports; it ends every error
// about an unsupported token.
const Syntax = "supported: [src|dst] host ADDR, [src|dst] net CIDR, [src|dst] port N, " +
	"[src|dst] portrange A-B, tcp, ip, ip6, combined with and/&&, or/||, not/! and parentheses"

// An Error describes what is wrong with a filter expression.
type Error struct {
	Expr string // the expression
	Pos  int    // byte offset of the offending token (len(Expr) at the end)
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("filter %q: %s", e.Expr, e.Msg)
}

// Expr is a parsed expression. The zero Expr is "tcp": everything wsdiag
// reads.
type Expr struct{ n *fnode }

// Parse parses expr (see Syntax); an empty or all-blank expression is the
// zero Expr. Errors are *Error.
func Parse(expr string) (Expr, error) {
	n, err := parseFilter(expr)
	return Expr{n}, err
}

// And is "e and f".
func (e Expr) And(f Expr) Expr { return Expr{fand(e.n, f.n)} }

// String is the expression as it was understood: every keyword a bare
// value repeats written out, and/or grouped in parentheses.
func (e Expr) String() string { return e.n.String() }

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
	return &Error{Expr: p.expr, Pos: p.pos(), Msg: fmt.Sprintf(format, args...)}
}

func (p *fparser) unsupported() error {
	if p.i >= len(p.toks) {
		return p.errf("unexpected end of expression; %s", Syntax)
	}
	t := p.peek()
	if why, ok := unsupportedKeywords[strings.ToLower(t)]; ok {
		if why == "" {
			why = "not in the supported subset"
		}
		return p.errf("%q is not supported (%s); %s", t, why, Syntax)
	}
	return p.errf("unsupported token %q at offset %d; %s", t, p.pos(), Syntax)
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
				return nil, &Error{Expr: p.expr, Pos: open, Msg: fmt.Sprintf("unbalanced \"(\" at offset %d", open)}
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
		return nil, p.errf("unexpected end of expression; %s", Syntax)
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
			return nil, p.errf("%q at offset %d: a value needs a keyword before it (host, net, port or portrange); %s", t, p.pos(), Syntax)
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
			return nil, p.errf("expected host, net, port or portrange at offset %d, found %q; %s", p.pos(), word, Syntax)
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
	n, err := valueNode(word, v)
	if err != nil {
		return nil, p.errf("%s %s: %v", word, v, err)
	}
	n.dir, n.word = dir, word
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

// valueNode is the primitive "word v" (host, net, port or portrange);
// its errors are said after "word v: ".
func valueNode(word, v string) (*fnode, error) {
	switch word {
	case "host":
		if strings.Contains(v, "/") {
			return nil, fmt.Errorf("host takes an address; for a CIDR use \"net %s\"", v)
		}
		fallthrough // a host is the net of one address
	case "net":
		a, bits, cidr := strings.Cut(v, "/")
		addr, err := parseAddr(a)
		if err != nil {
			return nil, err
		}
		if !cidr {
			return &fnode{k: fNet, pfx: netip.PrefixFrom(addr, addr.BitLen())}, nil
		}
		b, err := strconv.Atoi(bits)
		if err != nil || b < 0 || b > addr.BitLen() {
			return nil, fmt.Errorf("prefix length must be 0-%d", addr.BitLen())
		}
		pfx := netip.PrefixFrom(addr, b)
		if pfx.Masked() != pfx {
			return nil, fmt.Errorf("non-network bits set (did you mean %s?)", pfx.Masked())
		}
		return &fnode{k: fNet, pfx: pfx}, nil
	case "port":
		if strings.Contains(v, "-") {
			return nil, fmt.Errorf("for a range use \"portrange %s\"", v)
		}
		x, err := parsePort(v)
		if err != nil {
			return nil, err
		}
		return &fnode{k: fPort, lo: x, hi: x}, nil
	}
	a, b, ok := strings.Cut(v, "-") // portrange
	if !ok {
		return nil, errors.New("expected A-B")
	}
	lo, err := parsePort(a)
	if err != nil {
		return nil, err
	}
	hi, err := parsePort(b)
	if err != nil {
		return nil, err
	}
	return &fnode{k: fPort, lo: min(lo, hi), hi: max(lo, hi)}, nil // A > B is swapped, as pcap does
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
