package nginxconf

import (
	"fmt"
	"strings"
)

// Upstream is the proxy configuration in force for a matched request,
// after nginx's inheritance: each value with the directive it came from
// (nil: nginx's default).
type Upstream struct {
	// Pass is the leaf location's proxy_pass (never inherited).
	Pass *Directive
	// HTTPVersion is "1.0" (nginx ≤ 1.29.6's default) or "1.1".
	HTTPVersion     string
	HTTPVersionFrom *Directive
	// Headers are the proxy_set_header directives in force: those of the
	// innermost level that has any, and only those.
	Headers []*Directive
	// HeadersLevel is the block whose proxy_set_header directives are in
	// force (nil: none anywhere, nginx's defaults).
	HeadersLevel *Directive
	// Shadowed are proxy_set_header directives of outer levels that the
	// innermost level's own proxy_set_header hides: the inheritance trap.
	Shadowed        []*Directive
	ReadTimeout     string
	ReadTimeoutFrom *Directive
	// ConnectionMap is the `map $http_upgrade $connection_upgrade` block
	// in http {}, when there is one.
	ConnectionMap *Directive
}

// levels returns the blocks whose directives apply to m, innermost first:
// the locations, the server, http.
func (m *Match) levels() []*Directive {
	var ls []*Directive
	for i := len(m.Location) - 1; i >= 0; i-- {
		ls = append(ls, m.Location[i])
	}
	return append(ls, m.Server, m.HTTP)
}

func find(ds []*Directive, name string) []*Directive {
	var out []*Directive
	for _, d := range ds {
		if d.Name == name && !d.IsBlock {
			out = append(out, d)
		}
	}
	return out
}

// Effective works out the upstream directives in force for m.
func (m *Match) Effective() Upstream {
	u := Upstream{HTTPVersion: "1.0", ReadTimeout: "60s"}
	if leaf := m.Leaf(); leaf != nil {
		if p := find(leaf.Block, "proxy_pass"); len(p) > 0 {
			u.Pass = p[0]
		}
	}
	gotVersion, gotTimeout, gotHeaders := false, false, false
	for _, lv := range m.levels() {
		if lv == nil {
			continue
		}
		if v := find(lv.Block, "proxy_http_version"); !gotVersion && len(v) > 0 && len(v[0].Args) > 0 {
			u.HTTPVersion, u.HTTPVersionFrom, gotVersion = v[0].Args[0], v[0], true
		}
		if v := find(lv.Block, "proxy_read_timeout"); !gotTimeout && len(v) > 0 && len(v[0].Args) > 0 {
			u.ReadTimeout, u.ReadTimeoutFrom, gotTimeout = v[0].Args[0], v[0], true
		}
		if h := find(lv.Block, "proxy_set_header"); len(h) > 0 {
			if !gotHeaders {
				u.Headers, u.HeadersLevel, gotHeaders = h, lv, true
			} else {
				u.Shadowed = append(u.Shadowed, h...)
			}
		}
	}
	if m.HTTP != nil {
		for _, d := range m.HTTP.Block {
			if d.Name == "map" && d.IsBlock && len(d.Args) == 2 &&
				strings.EqualFold(d.Args[0], "$http_upgrade") && d.Args[1] == "$connection_upgrade" {
				u.ConnectionMap = d
			}
		}
	}
	return u
}

// Header returns the proxy_set_header in force for name (any case).
func (u *Upstream) Header(name string) (*Directive, bool) {
	for _, d := range u.Headers {
		if len(d.Args) >= 1 && strings.EqualFold(d.Args[0], name) {
			return d, true
		}
	}
	return nil, false
}

// shadowed returns an outer level's proxy_set_header for name that the
// inheritance rule hides.
func (u *Upstream) shadowed(name string) *Directive {
	for _, d := range u.Shadowed {
		if len(d.Args) >= 1 && strings.EqualFold(d.Args[0], name) {
			return d
		}
	}
	return nil
}

// Problem is a mistake in the upstream directives, said in nginx's terms.
type Problem struct {
	What string     // e.g. "no proxy_set_header Upgrade"
	At   *Directive // the directive at fault, or the block where one is missing
}

// Problems lists what keeps a WebSocket upgrade from passing this block.
func (u *Upstream) Problems(block *Directive) []Problem {
	var ps []Problem
	if u.HTTPVersion != "1.1" {
		at := u.HTTPVersionFrom
		if at == nil {
			at = block
		}
		ps = append(ps, Problem{fmt.Sprintf("proxy_http_version is %s (1.1 needed)", u.HTTPVersion), at})
	}
	if d, ok := u.Header("Upgrade"); !ok || len(d.Args) < 2 || d.Args[1] == "" {
		ps = append(ps, u.missing("Upgrade", block))
	}
	if d, ok := u.Header("Connection"); !ok {
		ps = append(ps, u.missing("Connection", block))
	} else if len(d.Args) < 2 || !connectionUpgrades(d.Args[1]) {
		v := ""
		if len(d.Args) >= 2 {
			v = d.Args[1]
		}
		ps = append(ps, Problem{fmt.Sprintf("proxy_set_header Connection %q does not carry \"upgrade\"", v), d})
	} else if d.Args[1] == "$connection_upgrade" && u.ConnectionMap == nil {
		ps = append(ps, Problem{"$connection_upgrade is used but no map $http_upgrade $connection_upgrade in http {}", d})
	}
	return ps
}

func (u *Upstream) missing(name string, block *Directive) Problem {
	if s := u.shadowed(name); s != nil && u.HeadersLevel != nil {
		return Problem{fmt.Sprintf("proxy_set_header %s at %s:%d is not inherited: %s at %s:%d sets its own proxy_set_header, so it inherits none",
			name, s.File, s.Line, blockName(u.HeadersLevel), u.HeadersLevel.File, u.HeadersLevel.Line), u.HeadersLevel}
	}
	return Problem{"no proxy_set_header " + name, block}
}

func connectionUpgrades(v string) bool {
	if v == "$connection_upgrade" || v == "$http_connection" {
		return true
	}
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
			return true
		}
	}
	return false
}

// blockName says a block as people write it: `location /ws`, `server`.
func blockName(d *Directive) string {
	if d == nil {
		return ""
	}
	if len(d.Args) == 0 {
		return d.Name
	}
	return d.Name + " " + strings.Join(d.Args, " ")
}

// BlockName is blockName for callers outside the package.
func BlockName(d *Directive) string { return blockName(d) }
