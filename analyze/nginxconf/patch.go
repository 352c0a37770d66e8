package nginxconf

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// edit replaces File[from:to] with text.
type edit struct {
	file     string
	from, to int
	text     string
}

// Patch returns one unified diff that makes each of the given locations
// pass WebSocket upgrades: proxy_http_version 1.1, Upgrade and Connection
// set (copying the proxy_set_header lines the location would otherwise
// stop inheriting), and the $connection_upgrade map once in http {}. File
// names in the diff are relative to the config prefix (the main file's
// directory), so `cd PREFIX && patch -p0 < FILE` applies it. It returns
// an empty string when nothing needs changing.
func (c *Config) Patch(ms []Match) string {
	var edits []edit
	seen := map[*Directive]bool{}
	mapAdded := map[*Directive]bool{}
	for i := range ms {
		m := &ms[i]
		leaf := m.Leaf()
		if leaf == nil || seen[leaf] {
			continue
		}
		seen[leaf] = true
		u := m.Effective()
		if u.Pass == nil || len(u.Problems(leaf)) == 0 {
			continue
		}
		edits = append(edits, c.fixLocation(leaf, &u)...)
		if u.ConnectionMap == nil && m.HTTP != nil && !mapAdded[m.HTTP] {
			mapAdded[m.HTTP] = true
			edits = append(edits, c.addMap(m.HTTP))
		}
	}
	return c.diff(edits)
}

// innerIndent is the indent of a block's directives: that of its first
// directive on a line of its own, else the block's own plus four spaces.
func innerIndent(b *Directive) string {
	for _, d := range b.Block {
		if d.Line > b.Line {
			return d.Indent
		}
	}
	return b.Indent + "    "
}

func (c *Config) fixLocation(loc *Directive, u *Upstream) []edit {
	in := innerIndent(loc)
	var add []string
	var edits []edit
	own := find(loc.Block, "proxy_http_version")
	if u.HTTPVersion != "1.1" {
		if len(own) > 0 {
			edits = append(edits, edit{loc.File, own[0].pos, own[0].endPos, "proxy_http_version 1.1;"})
		} else {
			add = append(add, "proxy_http_version 1.1;")
		}
	}
	ownHeaders := u.HeadersLevel == loc
	if !ownHeaders {
		// Setting any proxy_set_header here stops inheritance of the outer
		// ones: carry them over, except the two this patch sets.
		for _, d := range u.Headers {
			if len(d.Args) >= 1 && (strings.EqualFold(d.Args[0], "Upgrade") || strings.EqualFold(d.Args[0], "Connection")) {
				continue
			}
			add = append(add, "proxy_set_header "+quoteArgs(d.Args)+"; # inherited from "+blockName(u.HeadersLevel)+" (a location with its own proxy_set_header inherits none)")
		}
	}
	setHeader := func(name, value string) {
		line := "proxy_set_header " + name + " " + value + ";"
		if d, ok := u.Header(name); ok && ownHeaders {
			edits = append(edits, edit{loc.File, d.pos, d.endPos, line})
			return
		}
		add = append(add, line)
	}
	if d, ok := u.Header("Upgrade"); !ok || !ownHeaders || len(d.Args) < 2 || d.Args[1] != "$http_upgrade" {
		setHeader("Upgrade", "$http_upgrade")
	}
	if d, ok := u.Header("Connection"); !ok || !ownHeaders || len(d.Args) < 2 || !connectionUpgrades(d.Args[1]) {
		setHeader("Connection", "$connection_upgrade")
	}
	if len(add) > 0 {
		text := c.Files[loc.File]
		// After the "{": the new lines, then the rest of the block starts
		// on a line of its own.
		from := loc.open
		to := from
		for to < len(text) && (text[to] == ' ' || text[to] == '\t') {
			to++
		}
		var b strings.Builder
		for _, l := range add {
			b.WriteString("\n" + in + l)
		}
		if to < len(text) && text[to] != '\n' {
			b.WriteString("\n" + in)
		}
		edits = append(edits, edit{loc.File, from, to, b.String()})
		// A block written on one line now spans several: its closing
		// brace goes on a line of its own too.
		if brace := loc.endPos - 1; loc.End == loc.Line && brace > to && brace < len(text) && text[brace] == '}' {
			k := brace
			for k > to && (text[k-1] == ' ' || text[k-1] == '\t') {
				k--
			}
			edits = append(edits, edit{loc.File, k, brace, "\n" + loc.Indent})
		}
	}
	return edits
}

func (c *Config) addMap(http *Directive) edit {
	in := innerIndent(http)
	return edit{http.File, http.open, http.open,
		"\n" + in + "map $http_upgrade $connection_upgrade { default upgrade; '' close; }"}
}

func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t;{}#'\"") {
			a = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// diff applies edits to copies of the files and renders a unified diff.
func (c *Config) diff(edits []edit) string {
	byFile := map[string][]edit{}
	for _, e := range edits {
		byFile[e.file] = append(byFile[e.file], e)
	}
	files := make([]string, 0, len(byFile))
	for f := range byFile {
		files = append(files, f)
	}
	sort.Strings(files)
	var out strings.Builder
	for _, f := range files {
		es := byFile[f]
		sort.Slice(es, func(i, j int) bool { return es[i].from > es[j].from })
		old := c.Files[f]
		nw := append([]byte(nil), old...)
		for _, e := range es {
			nw = append(nw[:e.from:e.from], append([]byte(e.text), nw[e.to:]...)...)
		}
		name := f
		if rel, err := filepath.Rel(c.Prefix, f); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
		out.WriteString(unified(name, splitLines(old), splitLines(nw)))
	}
	return out.String()
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := strings.Split(string(bytes.TrimSuffix(b, []byte("\n"))), "\n")
	return s
}

// unified renders the changes between a and b, which differ only by
// insertions and replacements in a few places, as unified-diff hunks with
// three lines of context.
func unified(name string, a, b []string) string {
	ops := diffOps(a, b)
	if ops == nil {
		return ""
	}
	return hunks(name, ops)
}

// diffOp is one line of a diff: kept (' '), removed ('-') or added ('+').
type diffOp struct {
	kind byte
	text string
}

// diffOps lists a's lines and b's as a diff (nil when they are equal). It
// walks a longest-common-subsequence table only over the region between
// the first and last differing lines.
func diffOps(a, b []string) []diffOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	if pre == len(a) && pre == len(b) {
		return nil
	}
	var ops []diffOp
	for _, l := range a[:pre] {
		ops = append(ops, diffOp{' ', l})
	}
	ops = middleOps(ops, a[pre:len(a)-suf], b[pre:len(b)-suf])
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, diffOp{' ', l})
	}
	return ops
}

// middleOps appends the diff of the edited region ma → mb: by LCS while
// it is small; edits far apart in a long file make it large, and then the
// region is replaced whole, still a correct diff.
func middleOps(ops []diffOp, ma, mb []string) []diffOp {
	n, m := len(ma), len(mb)
	if n*m > 1<<22 {
		for _, l := range ma {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, diffOp{'+', l})
		}
		return ops
	}
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if ma[i] == mb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && ma[i] == mb[j]:
			ops = append(ops, diffOp{' ', ma[i]})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, diffOp{'-', ma[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', mb[j]})
			j++
		}
	}
	return ops
}

// hunks writes ops as unified-diff hunks: runs of changes with up to 3
// context lines around, merged when their context touches.
func hunks(name string, ops []diffOp) string {
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", name, name)
	const ctx = 3
	k := 0
	for k < len(ops) {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(k-ctx, 0)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		la, lb := lineCounts(ops[:start])
		ca, cb := lineCounts(ops[start:end])
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", la+1, ca, lb+1, cb)
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		k = end
	}
	return out.String()
}

// lineCounts counts the lines of ops on a's side and on b's.
func lineCounts(ops []diffOp) (na, nb int) {
	for _, o := range ops {
		if o.kind != '+' {
			na++
		}
		if o.kind != '-' {
			nb++
		}
	}
	return na, nb
}
