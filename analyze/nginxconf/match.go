package nginxconf

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Match is what nginx chose for one request: the server block, the
// location blocks from the outermost to the one that handled it, and the
// http block they sit in.
type Match struct {
	HTTP     *Directive
	Server   *Directive
	Location []*Directive // outermost first; empty when no location matched
}

// Leaf is the location that handled the request, or nil.
func (m *Match) Leaf() *Directive {
	if len(m.Location) == 0 {
		return nil
	}
	return m.Location[len(m.Location)-1]
}

// listen is one listen directive's address.
type listen struct {
	addr     netip.Addr // invalid: any address
	port     uint16
	def      bool
	unixPath string
}

func parseListen(d *Directive) (listen, bool) {
	if len(d.Args) == 0 {
		return listen{}, false
	}
	var l listen
	for _, a := range d.Args[1:] {
		if a == "default_server" || a == "default" {
			l.def = true
		}
	}
	s := d.Args[0]
	if strings.HasPrefix(s, "unix:") {
		l.unixPath = s[5:]
		return l, true
	}
	host, port := s, "80"
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "]")
		if i < 0 {
			return l, false
		}
		host = s[1:i]
		if rest := s[i+1:]; strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	} else if _, err := strconv.Atoi(s); err == nil {
		host, port = "*", s
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return l, false
	}
	l.port = uint16(p)
	switch host {
	case "*", "", "0.0.0.0", "::":
	case "localhost":
		l.addr = netip.MustParseAddr("127.0.0.1")
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return l, false // a name nginx would resolve: treat as no match
		}
		l.addr = a.Unmap()
	}
	return l, true
}

func listensOf(server *Directive) []listen {
	var ls []listen
	for _, d := range server.Block {
		if d.Name == "listen" {
			if l, ok := parseListen(d); ok {
				ls = append(ls, l)
			}
		}
	}
	if len(ls) == 0 {
		ls = append(ls, listen{port: 80}) // nginx's default (8000 when not root)
	}
	return ls
}

// blocks returns the children of ds named name that are blocks.
func blocks(ds []*Directive, name string) []*Directive {
	var out []*Directive
	for _, d := range ds {
		if d.Name == name && d.IsBlock {
			out = append(out, d)
		}
	}
	return out
}

// Find returns what nginx chooses for a request that arrived at local
// (the proxy's address and port of the client leg) with Host header host
// and request target uri. ok is false when no server listens there.
func (c *Config) Find(local netip.AddrPort, host, uri string) (Match, bool) {
	var m Match
	for _, h := range blocks(c.Main, "http") {
		s := c.server(h, local, host)
		if s == nil {
			continue
		}
		m.HTTP, m.Server = h, s
		m.Location = findLocation(s.Block, normalizePath(uri))
		return m, true
	}
	return m, false
}

// server picks the server block as nginx does: the listen sockets of the
// most specific address for the port, then server_name, then the default.
func (c *Config) server(h *Directive, local netip.AddrPort, host string) *Directive {
	group := listening(h, local)
	if len(group) == 0 {
		return nil
	}
	servers := make([]*Directive, len(group))
	for i, g := range group {
		servers[i] = g.s
	}
	if s := byServerName(servers, hostOnly(host)); s != nil {
		return s
	}
	for _, g := range group {
		if g.def {
			return g.s
		}
	}
	return group[0].s
}

// cand is a server block listening at an address, and whether it is that
// listen socket's default server.
type cand struct {
	s   *Directive
	def bool
}

// listening returns the server blocks of h that get the connections to
// local: those listening on its exact address, else on the wildcard.
func listening(h *Directive, local netip.AddrPort) []cand {
	addr := local.Addr().Unmap()
	var exact, wild []cand
	for _, s := range blocks(h.Block, "server") {
		for _, l := range listensOf(s) {
			if l.unixPath != "" || l.port != local.Port() {
				continue
			}
			if l.addr.IsValid() {
				if l.addr == addr {
					exact = append(exact, cand{s, l.def})
				}
			} else {
				wild = append(wild, cand{s, l.def})
			}
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return wild
}

func hostOnly(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i >= 0 {
			return h[:i+1]
		}
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// byServerName applies nginx's order: exact name, longest wildcard
// starting with "*" (or ".example.com"), longest ending with "*", then the
// first matching regex in the order of the file.
func byServerName(servers []*Directive, host string) *Directive {
	var bestPre, bestSuf *Directive
	preLen, sufLen := -1, -1
	for _, s := range servers {
		for _, d := range s.Block {
			if d.Name != "server_name" {
				continue
			}
			for _, n := range d.Args {
				n = strings.ToLower(n)
				switch {
				case strings.HasPrefix(n, "~"):
				case n == host:
					return s
				case strings.HasPrefix(n, "*.") && strings.HasSuffix(host, n[1:]) && len(n) > preLen:
					bestPre, preLen = s, len(n)
				case strings.HasPrefix(n, ".") && (host == n[1:] || strings.HasSuffix(host, n)) && len(n) > preLen:
					bestPre, preLen = s, len(n)
				case strings.HasSuffix(n, ".*") && strings.HasPrefix(host, n[:len(n)-1]) && len(n) > sufLen:
					bestSuf, sufLen = s, len(n)
				}
			}
		}
	}
	if bestPre != nil {
		return bestPre
	}
	if bestSuf != nil {
		return bestSuf
	}
	for _, s := range servers {
		for _, d := range s.Block {
			if d.Name != "server_name" {
				continue
			}
			for _, n := range d.Args {
				if !strings.HasPrefix(n, "~") {
					continue
				}
				if re := compiled("(?i)" + n[1:]); re != nil && re.MatchString(host) {
					return s
				}
			}
		}
	}
	return nil
}

// normalizePath drops the query and resolves "." and ".." segments and
// repeated slashes, as nginx does before matching locations.
func normalizePath(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		rest := uri[strings.Index(uri, "//")+2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			uri = rest[i:]
		} else {
			uri = "/"
		}
	}
	if uri == "" || uri[0] != '/' {
		uri = "/" + uri
	}
	var segs []string
	for _, s := range strings.Split(uri[1:], "/") {
		switch s {
		case ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, s)
		}
	}
	out := "/" + strings.Join(segs, "/")
	for strings.Contains(out, "//") {
		out = strings.ReplaceAll(out, "//", "/")
	}
	return out
}

// locKind is a location's modifier.
type locKind int

const (
	locPrefix locKind = iota
	locNoRegex
	locExact
	locRegex
	locRegexI
	locNamed
)

func locationOf(d *Directive) (locKind, string) {
	switch len(d.Args) {
	case 1:
		a := d.Args[0]
		switch {
		case strings.HasPrefix(a, "@"):
			return locNamed, a
		case strings.HasPrefix(a, "="):
			return locExact, a[1:]
		case strings.HasPrefix(a, "^~"):
			return locNoRegex, a[2:]
		case strings.HasPrefix(a, "~*"):
			return locRegexI, a[2:]
		case strings.HasPrefix(a, "~"):
			return locRegex, a[1:]
		}
		return locPrefix, a
	case 2:
		switch d.Args[0] {
		case "=":
			return locExact, d.Args[1]
		case "^~":
			return locNoRegex, d.Args[1]
		case "~":
			return locRegex, d.Args[1]
		case "~*":
			return locRegexI, d.Args[1]
		}
	}
	return locNamed, ""
}

// findLocation follows ngx_http_core_find_location: an exact match ends
// the search; otherwise the longest prefix is remembered and its nested
// locations searched; then, unless that prefix was "^~", the regex
// locations of this level in order, the first match winning (and its own
// nested locations searched).
func findLocation(level []*Directive, uri string) []*Directive {
	var best *Directive
	bestLen := -1
	bestKind := locPrefix
	for _, d := range level {
		if d.Name != "location" || !d.IsBlock {
			continue
		}
		k, p := locationOf(d)
		switch k {
		case locExact:
			if uri == p {
				return []*Directive{d}
			}
		case locPrefix, locNoRegex:
			if strings.HasPrefix(uri, p) && len(p) > bestLen {
				best, bestLen, bestKind = d, len(p), k
			}
		}
	}
	var chain []*Directive
	if best != nil {
		chain = append(chain, best)
		nested := findLocation(best.Block, uri)
		if len(nested) > 0 {
			chain = append(chain, nested...)
			// a nested exact or regex match is final at this level too
			if k, _ := locationOf(nested[len(nested)-1]); k != locPrefix && k != locNoRegex {
				return chain
			}
		}
		if bestKind == locNoRegex {
			return chain
		}
	}
	for _, d := range level {
		if d.Name != "location" || !d.IsBlock {
			continue
		}
		k, p := locationOf(d)
		if k != locRegex && k != locRegexI {
			continue
		}
		if k == locRegexI {
			p = "(?i)" + p
		}
		re := compiled(p)
		if re == nil || !re.MatchString(uri) {
			continue
		}
		return append([]*Directive{d}, findLocation(d.Block, uri)...)
	}
	return chain
}

// regexCache keeps the compiled server_name and location regexes: Find
// runs for every attempt. nil marks a pattern RE2 cannot compile (PCRE
// lookarounds, backreferences): it never matches.
var (
	regexCache  sync.Map // string → *regexp.Regexp
	regexCached atomic.Int32
)

// maxCachedRegexes bounds the cache (configs read one after another, a
// fuzzer's inputs); past it patterns are compiled each time.
const maxCachedRegexes = 4096

func compiled(p string) *regexp.Regexp {
	if v, ok := regexCache.Load(p); ok {
		return v.(*regexp.Regexp)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		re = nil
	}
	if regexCached.Add(1) <= maxCachedRegexes {
		regexCache.Store(p, re)
	}
	return re
}
