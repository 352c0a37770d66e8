package proxyconf

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// haproxy reads haproxy.cfg (or a directory of *.cfg, as -f allows): each
// frontend and listen section with its bind lines, and the timeout
// tunnel of the defaults section in force (or its own).
func (r *reader) haproxy(file string) ([]Site, error) {
	files := []string{file}
	if st, err := os.Stat(file); err == nil && st.IsDir() {
		m, _ := filepath.Glob(filepath.Join(file, "*.cfg"))
		sort.Strings(m)
		files = m
	}
	c := haproxyCfg{uses: map[int]string{}, backends: map[string]tunnelTimeout{}, names: map[int][]string{}, servers: map[string][]string{}}
	for _, f := range files {
		ls, err := r.lines(f)
		if err != nil {
			return nil, err
		}
		c.read(ls)
	}
	for i, b := range c.uses {
		if t, ok := c.backends[b]; ok {
			c.sites[i].Timeout, _ = duration(t.d)
			c.sites[i].TimeoutAt = t.at + " (backend " + b + ")"
		}
	}
	for i, names := range c.names {
		for _, b := range names {
			c.sites[i].Servers = append(c.sites[i].Servers, c.servers[b]...)
		}
	}
	for i := range c.sites {
		c.sites[i].Binds = dedupe(c.sites[i].Binds)
	}
	return c.sites, nil
}

// haproxyCfg is what haproxy's files say: the sites, each frontend's
// default_backend (uses, by site), and the tunnel timeout a backend sets
// itself (read after all sections).
type haproxyCfg struct {
	sites    []Site
	uses     map[int]string
	backends map[string]tunnelTimeout
	// names are the backends each site names (default_backend and
	// use_backend), servers each backend's server addresses.
	names   map[int][]string
	servers map[string][]string
}

// tunnelTimeout is a "timeout tunnel" line: its value and where it is.
type tunnelTimeout struct{ d, at string }

// haproxySection is the section a line of one file belongs to.
type haproxySection struct {
	cur        *Site // a frontend or listen section
	defaults   bool
	backend    string
	defTimeout tunnelTimeout // the defaults section's, in force from there on
}

// read takes the sections of one file.
func (c *haproxyCfg) read(ls []line) {
	var sec haproxySection
	for _, l := range ls {
		w := fields(l.text)
		if len(w) == 0 {
			continue
		}
		if l.text != "" && l.text[0] != ' ' && l.text[0] != '\t' {
			c.section(&sec, w, l)
			continue
		}
		switch {
		case w[0] == "bind" && sec.cur != nil && len(w) > 1:
			addBinds(sec.cur, w[1])
		case w[0] == "default_backend" && sec.cur != nil && len(w) > 1:
			c.uses[len(c.sites)-1] = w[1]
			c.names[len(c.sites)-1] = append(c.names[len(c.sites)-1], w[1])
		case w[0] == "use_backend" && sec.cur != nil && len(w) > 1:
			c.names[len(c.sites)-1] = append(c.names[len(c.sites)-1], w[1])
		case w[0] == "server" && len(w) > 2:
			// server NAME ADDR[:PORT] …
			switch {
			case sec.backend != "":
				c.servers[sec.backend] = append(c.servers[sec.backend], w[2])
			case sec.cur != nil:
				sec.cur.Servers = append(sec.cur.Servers, w[2])
			}
		case w[0] == "timeout" && len(w) > 2 && w[1] == "tunnel":
			t := tunnelTimeout{w[2], fmt.Sprintf("timeout tunnel %s at %s:%d", w[2], l.file, l.n)}
			switch {
			case sec.defaults:
				sec.defTimeout = t
			case sec.backend != "":
				c.backends[sec.backend] = t
			case sec.cur != nil:
				sec.cur.Timeout, _ = duration(t.d)
				sec.cur.TimeoutAt = t.at
			}
		}
	}
}

// section starts the section a line w opens.
func (c *haproxyCfg) section(sec *haproxySection, w []string, l line) {
	sec.cur, sec.defaults, sec.backend = nil, false, ""
	switch w[0] {
	case "backend":
		if len(w) > 1 {
			sec.backend = w[1]
		}
	case "frontend", "listen":
		name := ""
		if len(w) > 1 {
			name = w[1]
		}
		c.sites = append(c.sites, Site{Kind: "haproxy", File: l.file, Line: l.n, Block: w[0] + " " + name})
		sec.cur = &c.sites[len(c.sites)-1]
		if sec.defTimeout.d != "" {
			sec.cur.Timeout, _ = duration(sec.defTimeout.d)
			sec.cur.TimeoutAt = sec.defTimeout.at
		}
		if w[0] == "listen" && len(w) > 2 { // old style: listen NAME ADDR:PORT
			addBinds(sec.cur, w[2])
		}
	case "defaults":
		sec.defaults, sec.defTimeout = true, tunnelTimeout{}
	}
}

func addBinds(s *Site, spec string) {
	for _, a := range strings.Split(spec, ",") {
		if b, ok := parseBind(a, 0); ok {
			s.Binds = append(s.Binds, b)
		}
	}
}

func dedupe(bs []Bind) []Bind {
	out := bs[:0]
	seen := map[Bind]bool{}
	for _, b := range bs {
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out
}
