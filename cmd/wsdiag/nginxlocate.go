package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/analyze/nginxconf"
)

// nginxLocator answers analyze's ConfigLocator from an nginx config: the
// server and location nginx chose, and what their directives mean for a
// WebSocket upgrade after inheritance.
type nginxLocator struct {
	cfg  *nginxconf.Config
	name string // what the user gave: the -T dump or the main file
}

func (n *nginxLocator) Locate(proxy netip.AddrPort, host, path string) *analyze.ConfigBlock {
	m, ok := n.cfg.Find(proxy, host, path)
	if !ok {
		return nil
	}
	return blockOf(m)
}

// LocateUpstream implements analyze.UpstreamLocator: the locations that
// pass from proxy to backend.
func (n *nginxLocator) LocateUpstream(proxy, backend netip.AddrPort) []*analyze.ConfigBlock {
	var bs []*analyze.ConfigBlock
	for _, m := range n.cfg.FindUpstream(proxy, backend) {
		bs = append(bs, blockOf(m))
	}
	return bs
}

// blockOf describes what nginx chose.
func blockOf(m nginxconf.Match) *analyze.ConfigBlock {
	b := &analyze.ConfigBlock{Server: serverLabel(m.Server), Ref: m}
	at := m.Leaf()
	if at == nil {
		at, b.Server = m.Server, ""
		b.Block = serverLabel(m.Server)
	} else {
		b.Block = nginxconf.BlockName(at)
	}
	b.File, b.Line = at.File, at.Line
	u := m.Effective()
	if u.Pass != nil {
		for _, p := range u.Problems(at) {
			b.Problems = append(b.Problems, problemText(p, at))
		}
	}
	b.NotInherited = notInherited(&u)
	b.ReadTimeout, _ = nginxDuration(u.ReadTimeout)
	if d := u.ReadTimeoutFrom; d != nil {
		b.ReadTimeoutAt = "proxy_read_timeout " + u.ReadTimeout
		if d.File != at.File || d.Line != at.Line {
			b.ReadTimeoutAt += fmt.Sprintf(" at %s:%d", d.File, d.Line)
		}
	}
	return b
}

// problemText says a problem with where to look, when that is not the
// block itself and the text does not say it already.
func problemText(p nginxconf.Problem, block *nginxconf.Directive) string {
	switch {
	case p.At == nil || p.At == block || strings.Contains(p.What, p.At.File+":"):
		return p.What
	case p.At.File == block.File:
		return fmt.Sprintf("%s (line %d)", p.What, p.At.Line)
	}
	return fmt.Sprintf("%s (%s:%d)", p.What, p.At.File, p.At.Line)
}

// notInherited explains upgrade headers set in an outer block that the
// location in force does not inherit, or "".
func notInherited(u *nginxconf.Upstream) string {
	var lost []string
	for _, name := range []string{"Upgrade", "Connection"} {
		if _, ok := u.Header(name); ok {
			continue
		}
		for _, d := range u.Shadowed {
			if len(d.Args) >= 1 && strings.EqualFold(d.Args[0], name) {
				lost = append(lost, fmt.Sprintf("proxy_set_header %s at %s:%d", d.Args[0], d.File, d.Line))
				break
			}
		}
	}
	if len(lost) == 0 || u.HeadersLevel == nil {
		return ""
	}
	return fmt.Sprintf("%s not inherited: %s at %s:%d sets its own proxy_set_header, so it inherits none from outer blocks",
		strings.Join(lost, " and "), nginxconf.BlockName(u.HeadersLevel), u.HeadersLevel.File, u.HeadersLevel.Line)
}

// serverLabel names a server block by its first server_name, else its
// first listen.
func serverLabel(s *nginxconf.Directive) string {
	if s == nil {
		return ""
	}
	var listen string
	for _, d := range s.Block {
		if d.Name == "server_name" && len(d.Args) > 0 && d.Args[0] != "" && d.Args[0] != "_" {
			return "server " + d.Args[0]
		}
		if d.Name == "listen" && listen == "" && len(d.Args) > 0 {
			listen = d.Args[0]
		}
	}
	if listen != "" {
		return "server listen " + listen
	}
	return "server"
}

// nginxDuration reads an nginx time value: "60", "5s", "1m30s", "500ms", "1h".
func nginxDuration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, true
	}
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		j := i
		for j < len(s) && (s[j] < '0' || s[j] > '9') {
			j++
		}
		n, err := strconv.Atoi(s[:i])
		u, ok := units[s[i:j]]
		if err != nil || !ok {
			return 0, false
		}
		total += time.Duration(n) * u
		s = s[j:]
	}
	return total, true
}
