package proxyconf

import (
	"fmt"
	"strings"
)

// caddy reads a Caddyfile: each site block's addresses (the global
// options block, a bare "{" first, is skipped). `caddy adapt` would give
// JSON without line numbers, so the Caddyfile itself is read.
func (r *reader) caddy(file string) ([]Site, error) {
	ls, err := r.lines(file)
	if err != nil {
		return nil, err
	}
	var sites []Site
	depth := 0
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if depth == 0 && t != "{" && !strings.HasPrefix(t, "(") && !strings.HasPrefix(t, "import") {
			addrs := strings.TrimSpace(strings.TrimSuffix(t, "{"))
			s := Site{Kind: "caddy", File: l.file, Line: l.n, Block: "site " + addrs}
			for _, a := range strings.FieldsFunc(addrs, func(r rune) bool { return r == ',' || r == ' ' }) {
				host, defPort := a, uint16(443)
				if i := strings.Index(a, "://"); i >= 0 {
					if a[:i] == "http" {
						defPort = 80
					}
					host = a[i+3:]
				}
				if strings.HasPrefix(host, ":") {
					defPort = 0
				}
				b, ok := parseBind(a, defPort)
				if !ok {
					continue
				}
				// Caddy binds every address; a host name (not an IP) also
				// matches Host.
				if h := hostOnly(strings.SplitN(host, "/", 2)[0]); h != "" {
					if _, err := parseIP(h); err != nil {
						s.Hosts = append(s.Hosts, h)
					}
				}
				s.Binds = append(s.Binds, Bind{Port: b.Port})
			}
			sites = append(sites, s)
		}
		depth += strings.Count(t, "{") - strings.Count(t, "}")
		if depth < 0 {
			return nil, fmt.Errorf("%s:%d: unbalanced }", l.file, l.n)
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%s: a { is never closed", file)
	}
	return sites, nil
}
