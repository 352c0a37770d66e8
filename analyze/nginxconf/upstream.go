package nginxconf

import (
	"net/netip"
	"strconv"
	"strings"
)

// FindUpstream returns what nginx may have chosen for requests that
// arrived at local and were passed to backend, when the request itself is
// not known (a tunnel whose handshake came before the capture): every
// location of the servers listening at local whose proxy_pass names
// backend, as an address or through an upstream {} block that lists it.
// A proxy_pass with variables or a host name names nothing here.
func (c *Config) FindUpstream(local, backend netip.AddrPort) []Match {
	backend = netip.AddrPortFrom(backend.Addr().Unmap(), backend.Port())
	var out []Match
	for _, h := range blocks(c.Main, "http") {
		for _, g := range listening(h, local) {
			walkLocations(g.s.Block, nil, func(chain []*Directive) {
				for _, p := range find(chain[len(chain)-1].Block, "proxy_pass") {
					if len(p.Args) > 0 && passesTo(h, p.Args[0], backend) {
						out = append(out, Match{HTTP: h, Server: g.s, Location: append([]*Directive(nil), chain...)})
						return
					}
				}
			})
		}
	}
	return out
}

// walkLocations calls f with the chain of every location block under
// level, outermost first.
func walkLocations(level, chain []*Directive, f func([]*Directive)) {
	for _, d := range level {
		if d.Name != "location" || !d.IsBlock {
			continue
		}
		c := append(chain[:len(chain):len(chain)], d)
		f(c)
		walkLocations(d.Block, c, f)
	}
}

// passesTo reports whether proxy_pass URL u (in http block h) sends to
// backend.
func passesTo(h *Directive, u string, backend netip.AddrPort) bool {
	port := uint16(80)
	switch {
	case strings.HasPrefix(u, "http://"):
		u = u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		u, port = u[len("https://"):], 443
	default:
		return false
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	if strings.Contains(u, "$") {
		return false
	}
	if a, ok := hostPort(u, port); ok {
		return a == backend
	}
	for _, up := range blocks(h.Block, "upstream") {
		if len(up.Args) != 1 || up.Args[0] != u {
			continue
		}
		for _, s := range find(up.Block, "server") {
			if len(s.Args) > 0 {
				if a, ok := hostPort(s.Args[0], 80); ok && a == backend {
					return true
				}
			}
		}
	}
	return false
}

// hostPort reads "ADDR", "ADDR:PORT" or "[V6]:PORT" with an IP address
// (localhost too); def is the port when none is given.
func hostPort(s string, def uint16) (netip.AddrPort, bool) {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return netip.AddrPort{}, false
		}
		host = s[1:i]
		port = strings.TrimPrefix(s[i+1:], ":")
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		host, port = s[:i], s[i+1:]
	}
	p := def
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return netip.AddrPort{}, false
		}
		p = uint16(n)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), p), true
}
