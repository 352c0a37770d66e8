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
	var sites []Site
	// The tunnel timeout of a frontend's default_backend, when the
	// backend sets its own (read after all sections).
	uses := map[int]string{}
	type tt struct {
		d  string
		at string
	}
	backends := map[string]tt{}
	for _, f := range files {
		ls, err := r.lines(f)
		if err != nil {
			return nil, err
		}
		var cur *Site
		var defTimeout, defAt string
		inDefaults, backend := false, ""
		for _, l := range ls {
			w := fields(l.text)
			if len(w) == 0 {
				continue
			}
			section := l.text != "" && l.text[0] != ' ' && l.text[0] != '\t'
			if section {
				cur, inDefaults, backend = nil, false, ""
				switch w[0] {
				case "backend":
					if len(w) > 1 {
						backend = w[1]
					}
				case "frontend", "listen":
					name := ""
					if len(w) > 1 {
						name = w[1]
					}
					sites = append(sites, Site{Kind: "haproxy", File: l.file, Line: l.n, Block: w[0] + " " + name})
					cur = &sites[len(sites)-1]
					if defTimeout != "" {
						cur.Timeout, _ = duration(defTimeout)
						cur.TimeoutAt = defAt
					}
					if w[0] == "listen" && len(w) > 2 { // old style: listen NAME ADDR:PORT
						addBinds(cur, w[2])
					}
				case "defaults":
					inDefaults, defTimeout, defAt = true, "", ""
				}
				continue
			}
			switch {
			case w[0] == "bind" && cur != nil && len(w) > 1:
				addBinds(cur, w[1])
			case w[0] == "default_backend" && cur != nil && len(w) > 1:
				uses[len(sites)-1] = w[1]
			case w[0] == "timeout" && len(w) > 2 && w[1] == "tunnel":
				at := fmt.Sprintf("timeout tunnel %s at %s:%d", w[2], l.file, l.n)
				switch {
				case inDefaults:
					defTimeout, defAt = w[2], at
				case backend != "":
					backends[backend] = tt{w[2], at}
				case cur != nil:
					cur.Timeout, _ = duration(w[2])
					cur.TimeoutAt = at
				}
			}
		}
	}
	for i, b := range uses {
		if t, ok := backends[b]; ok {
			sites[i].Timeout, _ = duration(t.d)
			sites[i].TimeoutAt = t.at + " (backend " + b + ")"
		}
	}
	for i := range sites {
		sites[i].Binds = dedupe(sites[i].Binds)
	}
	return sites, nil
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
