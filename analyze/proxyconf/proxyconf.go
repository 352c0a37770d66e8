// Package proxyconf reads the configurations of HAProxy, Apache httpd and
// Caddy lightly: enough to say which frontend, virtual host or site a
// request arriving at an address and port went to, with its file and
// line, and what that block says about WebSocket (a ProxyPass without
// upgrade=websocket, haproxy's timeout tunnel). nginx, whose rules are
// intricate, has its own package (nginxconf).
package proxyconf

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Limits: configs are small; these keep a hostile one cheap.
const (
	maxBytes = 8 << 20
	maxFiles = 512
	maxLine  = 64 << 10
)

// Site is one frontend, virtual host or site block.
type Site struct {
	Kind  string // "haproxy", "apache", "caddy"
	File  string
	Line  int
	Block string // "frontend fe", "<VirtualHost *:80>", "site http://127.0.0.1:8080"
	Binds []Bind
	// Hosts are the names the block answers to (Apache ServerName and
	// ServerAlias, Caddy site hosts); empty: any.
	Hosts []string
	// Default: Apache's first virtual host of an address, the fallback.
	Default bool
	// Timeout is the idle timeout after an upgrade (haproxy timeout
	// tunnel); 0: unknown. TimeoutAt says where it is set.
	Timeout   time.Duration
	TimeoutAt string
	// Routes are Apache ProxyPass lines (path prefix → target).
	Routes []Route
	// Servers are the "host:port" of haproxy's server lines this
	// frontend or listen section can send to (its own, and those of
	// every backend it names in default_backend or use_backend).
	Servers []string
}

// Bind is an address a block listens on; an invalid Addr is any address.
type Bind struct {
	Addr netip.Addr
	Port uint16
}

// Route is one Apache ProxyPass.
type Route struct {
	Prefix, Target string
	Upgrade        bool // upgrade=websocket, or a ws:// target
	File           string
	Line           int
}

// Config is one proxy's configuration.
type Config struct {
	Kind  string
	Sites []Site
}

// Load reads a configuration of kind "haproxy", "apache" or "caddy".
func Load(kind, file string) (*Config, error) {
	r := &reader{seen: map[string]bool{}}
	var err error
	c := &Config{Kind: kind}
	switch kind {
	case "haproxy":
		c.Sites, err = r.haproxy(file)
	case "apache":
		c.Sites, err = r.apache(file)
	case "caddy":
		c.Sites, err = r.caddy(file)
	default:
		return nil, fmt.Errorf("unknown proxy %q", kind)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Find returns the block a request at local with Host host went to, or nil.
func (c *Config) Find(local netip.AddrPort, host string) *Site {
	host = hostOnly(host)
	var byAddr, wild []*Site
	for i := range c.Sites {
		s := &c.Sites[i]
		for _, b := range s.Binds {
			if b.Port != local.Port() {
				continue
			}
			if b.Addr.IsValid() && !b.Addr.IsUnspecified() {
				if b.Addr == local.Addr().Unmap() {
					byAddr = append(byAddr, s)
				}
			} else {
				wild = append(wild, s)
			}
			break
		}
	}
	for _, group := range [][]*Site{byAddr, wild} {
		if len(group) == 0 {
			continue
		}
		for _, s := range group {
			for _, h := range s.Hosts {
				if matchHost(h, host) {
					return s
				}
			}
		}
		for _, s := range group {
			if len(s.Hosts) == 0 || s.Default {
				return s
			}
		}
		return group[0]
	}
	return nil
}

// Route returns the Apache ProxyPass that handles path, the longest
// prefix, or nil.
func (s *Site) Route(path string) *Route {
	var best *Route
	for i := range s.Routes {
		r := &s.Routes[i]
		if strings.HasPrefix(path, r.Prefix) && (best == nil || len(r.Prefix) > len(best.Prefix)) {
			best = r
		}
	}
	return best
}

func matchHost(pattern, host string) bool {
	pattern = strings.ToLower(pattern)
	if pattern == host {
		return true
	}
	if strings.HasPrefix(pattern, "*.") {
		return strings.HasSuffix(host, pattern[1:])
	}
	return false
}

func hostOnly(h string) string {
	h = strings.ToLower(h)
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i >= 0 {
			return h[1:i]
		}
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[:i], ":") {
		return h[:i]
	}
	return h
}

// reader reads files once each, bounded.
type reader struct {
	seen  map[string]bool
	bytes int
}

// line is one logical line of a file.
type line struct {
	file string
	n    int
	text string
}

func (r *reader) lines(file string) ([]line, error) {
	if r.seen[file] {
		return nil, nil // included twice: once is enough
	}
	r.seen[file] = true
	if len(r.seen) > maxFiles {
		return nil, fmt.Errorf("%s: more than %d files", file, maxFiles)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if r.bytes += len(data); r.bytes > maxBytes {
		return nil, fmt.Errorf("%s: configuration larger than %d MB", file, maxBytes>>20)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxLine)
	var out []line
	for n := 1; sc.Scan(); n++ {
		out = append(out, line{file, n, sc.Text()})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return out, nil
}

// parseBind reads "ADDR:PORT", ":PORT", "*:PORT", "[v6]:PORT" or "PORT".
func parseBind(s string, defPort uint16) (Bind, bool) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := s[:i]
		s = s[i+3:]
		if scheme == "https" {
			defPort = 443
		} else {
			defPort = 80
		}
		if j := strings.IndexByte(s, '/'); j >= 0 {
			s = s[:j]
		}
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "]")
		if i < 0 {
			return Bind{}, false
		}
		host, port = s[1:i], strings.TrimPrefix(s[i+1:], ":")
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	} else if _, err := strconv.Atoi(s); err == nil {
		host, port = "", s
	}
	b := Bind{Port: defPort}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return Bind{}, false
		}
		b.Port = uint16(n)
	}
	if host != "" && host != "*" {
		if a, err := netip.ParseAddr(host); err == nil {
			b.Addr = a.Unmap()
		}
	}
	return b, b.Port != 0
}

// duration reads haproxy's times: "30s", "1m", "500" (ms), "1h", "1d".
func duration(s string) (time.Duration, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, false
	}
	u := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[s[i:]]
	if u == 0 {
		return 0, false
	}
	return time.Duration(n) * u, true
}

// fields splits a line into words, honouring double quotes, and drops a
// trailing comment.
func fields(s string) []string {
	var out []string
	var cur strings.Builder
	in, q := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			q = !q
			in = true
		case !q && c == '#' && !in:
			return out
		case !q && (c == ' ' || c == '\t'):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

func abs(base, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

func parseIP(s string) (netip.Addr, error) { return netip.ParseAddr(s) }
