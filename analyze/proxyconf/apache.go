package proxyconf

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// apache reads httpd's main file and its Include/IncludeOptional files:
// Listen lines, <VirtualHost> blocks with ServerName/ServerAlias, and the
// ProxyPass lines in each (the main server's too).
func (r *reader) apache(file string) ([]Site, error) {
	st := &apacheState{root: filepath.Dir(file)}
	main := Site{Kind: "apache", File: file, Line: 1, Block: "main server"}
	st.cur = &main
	if err := r.apacheFile(file, st, 0); err != nil {
		return nil, err
	}
	main.Binds = st.listens
	sites := append([]Site{main}, st.vhosts...)
	// The first virtual host of an address is its default.
	first := map[Bind]bool{}
	for i := 1; i < len(sites); i++ {
		for _, b := range sites[i].Binds {
			if !first[b] {
				first[b] = true
				sites[i].Default = true
			}
		}
	}
	if len(st.vhosts) > 0 && len(main.Routes) == 0 {
		// Requests to an address with virtual hosts never reach the main server.
		sites = sites[1:]
	}
	return sites, nil
}

type apacheState struct {
	root    string
	listens []Bind
	vhosts  []Site
	cur     *Site // the main server or the open <VirtualHost>
	inVhost bool
}

func (r *reader) apacheFile(file string, st *apacheState, depth int) error {
	if depth > 16 {
		return fmt.Errorf("%s: includes nested more than 16 deep", file)
	}
	ls, err := r.lines(file)
	if err != nil {
		return err
	}
	main := st.cur
	for _, l := range ls {
		w := fields(l.text)
		if len(w) == 0 {
			continue
		}
		key := strings.ToLower(w[0])
		switch {
		case key == "serverroot" && len(w) > 1:
			st.root = w[1]
		case key == "listen" && len(w) > 1:
			if b, ok := parseBind(w[1], 0); ok {
				st.listens = append(st.listens, b)
			}
		case key == "include" || key == "includeoptional":
			if len(w) < 2 {
				continue
			}
			m, _ := filepath.Glob(abs(st.root, w[1]))
			sort.Strings(m)
			if len(m) == 0 && key == "include" && !strings.ContainsAny(w[1], "*?[") {
				return fmt.Errorf("%s:%d: Include %s: no such file", l.file, l.n, w[1])
			}
			for _, f := range m {
				if err := r.apacheFile(f, st, depth+1); err != nil {
					return err
				}
			}
		case strings.HasPrefix(key, "<virtualhost"):
			spec := strings.TrimSuffix(strings.TrimSpace(l.text[strings.Index(strings.ToLower(l.text), "<virtualhost")+len("<virtualhost"):]), ">")
			v := Site{Kind: "apache", File: l.file, Line: l.n, Block: "<VirtualHost " + strings.TrimSpace(spec) + ">"}
			for _, a := range strings.Fields(spec) {
				if b, ok := parseBind(a, 80); ok {
					v.Binds = append(v.Binds, b)
				}
			}
			st.vhosts = append(st.vhosts, v)
			st.cur, st.inVhost = &st.vhosts[len(st.vhosts)-1], true
		case key == "</virtualhost>":
			st.cur, st.inVhost = main, false
		case (key == "servername" || key == "serveralias") && st.inVhost:
			for _, h := range w[1:] {
				st.cur.Hosts = append(st.cur.Hosts, hostOnly(h))
			}
		case key == "proxypass" && len(w) > 2 && w[2] != "!":
			rt := Route{Prefix: w[1], Target: w[2], File: l.file, Line: l.n}
			rt.Upgrade = strings.HasPrefix(w[2], "ws://") || strings.HasPrefix(w[2], "wss://")
			for _, o := range w[3:] {
				if strings.EqualFold(o, "upgrade=websocket") {
					rt.Upgrade = true
				}
			}
			st.cur.Routes = append(st.cur.Routes, rt)
		}
	}
	return nil
}
