package nginxconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Limits that keep a hostile or broken config from costing more than a
// real one: the largest real configs (ingress-nginx) are a few MB.
const (
	maxBytes    = 16 << 20 // all files together
	maxFiles    = 4096
	maxDepth    = 64 // nesting of blocks and of includes
	maxTokenLen = 64 << 10
)

// Directive is one directive as written: `name args...;` or
// `name args... { block }`. Line is where its name stands, End the line of
// a block's closing brace.
type Directive struct {
	Name  string
	Args  []string
	File  string
	Line  int
	End   int
	Block []*Directive // nil for a simple directive
	// IsBlock is set for `name { }` even when the block is empty.
	IsBlock bool
	// Indent is the leading white space of the directive's line, for
	// patches that read like the file.
	Indent string

	// byte offsets in File's text: the name, just past the ";" or "}",
	// and just past a block's "{"
	pos, endPos, open int
}

// Config is a whole nginx configuration with its includes resolved.
type Config struct {
	// Main is the top level of the main file, includes spliced in.
	Main []*Directive
	// Files holds each file's text by name, for patches.
	Files map[string][]byte
	// Order is the files in the order nginx read them (main first).
	Order []string
	// Prefix is the directory relative include paths start from (the
	// main file's directory, nginx's conf prefix).
	Prefix string

	disk   *diskFiles // set by Load: includes are read from disk
	parses int        // files parsed, includes counted each time
}

// maxParses bounds the work of includes that fan out (a file including
// itself twice would otherwise double at every level).
const maxParses = 20000

// marker starts each file's section in `nginx -T` output.
var marker = []byte("# configuration file ")

// ParseDump reads the output of `nginx -T` (stdout; stderr's "nginx: ..."
// lines are skipped if they were mixed in). name is used in errors.
func ParseDump(r io.Reader, name string) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(data) > maxBytes {
		return nil, fmt.Errorf("%s: larger than %d MB", name, maxBytes>>20)
	}
	files := map[string][]byte{}
	var order []string
	var cur string
	var buf bytes.Buffer
	flush := func() {
		if cur != "" {
			files[cur] = append([]byte(nil), buf.Bytes()...)
		}
		buf.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxTokenLen*2)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, marker) && bytes.HasSuffix(line, []byte(":")) {
			flush()
			cur = string(line[len(marker) : len(line)-1])
			if _, dup := files[cur]; !dup {
				order = append(order, cur)
			}
			if len(order) > maxFiles {
				return nil, fmt.Errorf("%s: more than %d files", name, maxFiles)
			}
			continue
		}
		if cur == "" {
			continue // "nginx: the configuration file ... syntax is ok"
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	flush()
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: no \"# configuration file\" section: not the output of nginx -T", name)
	}
	// nginx -T adds an empty line after each file's text.
	for _, f := range order {
		files[f] = bytes.TrimSuffix(files[f], []byte("\n"))
	}
	c := &Config{Files: files, Order: order, Prefix: filepath.Dir(order[0])}
	main, err := c.parseFile(order[0], 0)
	if err != nil {
		return nil, err
	}
	c.Main = main
	return c, nil
}

// Load reads a config from disk starting at file, following includes
// (bounded, loops refused). It is for a config file given directly rather
// than as `nginx -T` output.
func Load(file string) (*Config, error) {
	c := &Config{Files: map[string][]byte{}, Prefix: filepath.Dir(file), Order: []string{file}}
	c.disk = &diskFiles{c: c}
	if err := c.disk.read(file); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	main, err := c.parseFile(file, 0)
	if err != nil {
		return nil, err
	}
	c.Main = main
	return c, nil
}

type diskFiles struct {
	c     *Config
	total int
}

func (d *diskFiles) read(name string) error {
	if _, ok := d.c.Files[name]; ok {
		return nil
	}
	if len(d.c.Files) >= maxFiles {
		return fmt.Errorf("%s: more than %d files included", name, maxFiles)
	}
	f, err := os.Open(name)
	if err != nil {
		return errors.Unwrap(err) // the caller names the file
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(maxBytes-d.total)+1))
	if err != nil {
		return err
	}
	d.total += len(b)
	if d.total > maxBytes {
		return fmt.Errorf("config larger than %d MB in all", maxBytes>>20)
	}
	d.c.Files[name] = b
	return nil
}

// includeTargets returns the files an include pattern names, in the order
// nginx reads them (glob results sorted).
func (c *Config) includeTargets(pattern string) ([]string, error) {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(c.Prefix, pattern)
	}
	if len(pattern) > 4096 {
		return nil, errors.New("include pattern longer than 4096 bytes")
	}
	if c.disk != nil {
		if !strings.ContainsAny(pattern, "*?[") {
			return []string{pattern}, c.disk.read(pattern)
		}
		// filepath.Match backtracks: many stars cost exponential time.
		if strings.Count(pattern, "*") > 4 {
			return nil, errors.New("include pattern with more than 4 \"*\"")
		}
		names, err := filepath.Glob(pattern)
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		for _, n := range names {
			if err := c.disk.read(n); err != nil {
				return nil, err
			}
		}
		return names, nil
	}
	re, err := globRegexp(pattern)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range c.Order {
		if f == pattern || re.MatchString(f) {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	return names, nil
}

// globRegexp turns a glob(3) pattern into a regexp, which matches in
// linear time (path.Match backtracks on hostile patterns).
func globRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(p[i+1:], ']')
			if j < 0 {
				b.WriteString(regexp.QuoteMeta("["))
				continue
			}
			class := p[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("include pattern %q: %v", p, err)
	}
	return re, nil
}

// parseFile parses one file and splices its includes in.
func (c *Config) parseFile(name string, depth int) ([]*Directive, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: includes nested deeper than %d (an include loop?)", name, maxDepth)
	}
	if c.parses++; c.parses > maxParses {
		return nil, fmt.Errorf("%s: more than %d files included in all (an include loop?)", name, maxParses)
	}
	text, ok := c.Files[name]
	if !ok {
		return nil, fmt.Errorf("%s: not in the configuration", name)
	}
	p := &parser{lx: lexer{src: text}, file: name}
	ds, err := p.block(0, false)
	if err != nil {
		return nil, err
	}
	return c.splice(ds, depth)
}

func (c *Config) splice(ds []*Directive, depth int) ([]*Directive, error) {
	out := ds[:0:0]
	for _, d := range ds {
		if d.Name == "include" && !d.IsBlock && len(d.Args) == 1 {
			names, err := c.includeTargets(d.Args[0])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: include %s: %v", d.File, d.Line, d.Args[0], err)
			}
			for _, n := range names {
				sub, err := c.parseFile(n, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
			continue
		}
		if d.IsBlock {
			b, err := c.splice(d.Block, depth+1)
			if err != nil {
				return nil, err
			}
			d.Block = b
		}
		out = append(out, d)
	}
	return out, nil
}
