package nginxconf

import "fmt"

// token kinds
const (
	tWord = iota
	tSemi
	tOpen
	tClose
	tEOF
)

type token struct {
	kind   int
	text   string
	line   int
	quoted bool
	pos    int // offset of the token's first byte
}

// lexer splits nginx config text as ngx_conf_read_token does: words
// separated by white space, ";", "{" and "}" on their own, "#" comments to
// the end of the line, single and double quotes with backslash escapes.
type lexer struct {
	src  []byte
	pos  int
	line int // 1-based line of src[pos]
}

func (l *lexer) next() (token, error) {
	if l.line == 0 {
		l.line = 1
	}
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		default:
			return l.word()
		}
	}
	return token{kind: tEOF, line: l.line}, nil
}

func (l *lexer) word() (token, error) {
	start := l.line
	at := l.pos
	switch c := l.src[l.pos]; c {
	case ';':
		l.pos++
		return token{kind: tSemi, line: start, pos: at}, nil
	case '{':
		l.pos++
		return token{kind: tOpen, line: start, pos: at}, nil
	case '}':
		l.pos++
		return token{kind: tClose, line: start, pos: at}, nil
	case '"', '\'':
		l.pos++
		var out []byte
		for l.pos < len(l.src) {
			b := l.src[l.pos]
			if b == c {
				l.pos++
				return token{kind: tWord, text: string(out), line: start, quoted: true, pos: at}, nil
			}
			if b == '\\' && l.pos+1 < len(l.src) {
				n := l.src[l.pos+1]
				switch n {
				case '"', '\'', '\\':
					out = append(out, n)
				case 't':
					out = append(out, '\t')
				case 'n':
					out = append(out, '\n')
				case 'r':
					out = append(out, '\r')
				default:
					out = append(out, b, n)
				}
				l.pos += 2
				continue
			}
			if b == '\n' {
				l.line++
			}
			out = append(out, b)
			l.pos++
			if len(out) > maxTokenLen {
				return token{}, fmt.Errorf("line %d: a quoted string longer than %d bytes", start, maxTokenLen)
			}
		}
		return token{}, fmt.Errorf("line %d: unterminated quoted string", start)
	}
	begin := l.pos
	for l.pos < len(l.src) {
		b := l.src[l.pos]
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == ';' || b == '{' || b == '}' {
			break
		}
		if b == '\\' && l.pos+1 < len(l.src) {
			l.pos++
		}
		l.pos++
		if l.pos-begin > maxTokenLen {
			return token{}, fmt.Errorf("line %d: a word longer than %d bytes", start, maxTokenLen)
		}
	}
	return token{kind: tWord, text: string(l.src[begin:l.pos]), line: start, pos: at}, nil
}

// indentOf returns the white space that starts the line holding offset.
func indentOf(src []byte, line int) string {
	n := 1
	i := 0
	for i < len(src) && n < line {
		if src[i] == '\n' {
			n++
		}
		i++
	}
	j := i
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	return string(src[i:j])
}

type parser struct {
	lx   lexer
	file string
}

func (p *parser) errf(line int, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, line, fmt.Sprintf(format, a...))
}

// block parses directives until EOF (top level) or the closing brace.
func (p *parser) block(depth int, inner bool) ([]*Directive, error) {
	if depth > maxDepth {
		return nil, p.errf(p.lx.line, "blocks nested deeper than %d", maxDepth)
	}
	var out []*Directive
	var cur *Directive
	for {
		t, err := p.lx.next()
		if err != nil {
			return nil, fmt.Errorf("%s:%v", p.file, err)
		}
		switch t.kind {
		case tEOF:
			if cur != nil {
				return nil, p.errf(cur.Line, "directive %q has no ending \";\"", cur.Name)
			}
			if inner {
				return nil, p.errf(t.line, "unexpected end of file, expecting \"}\"")
			}
			return out, nil
		case tWord:
			if cur == nil {
				cur = &Directive{Name: t.text, File: p.file, Line: t.line, End: t.line, pos: t.pos}
			} else {
				cur.Args = append(cur.Args, t.text)
			}
		case tSemi:
			if cur == nil {
				return nil, p.errf(t.line, "unexpected \";\"")
			}
			cur.End = t.line
			cur.endPos = t.pos + 1
			cur.Indent = indentOf(p.lx.src, cur.Line)
			out = append(out, cur)
			cur = nil
		case tOpen:
			if cur == nil {
				return nil, p.errf(t.line, "unexpected \"{\"")
			}
			d := cur
			cur = nil
			d.IsBlock = true
			d.open = t.pos + 1
			d.Indent = indentOf(p.lx.src, d.Line)
			b, err := p.block(depth+1, true)
			if err != nil {
				return nil, err
			}
			d.Block = b
			d.End = p.lx.line
			d.endPos = p.lx.pos
			out = append(out, d)
		case tClose:
			if cur != nil {
				return nil, p.errf(cur.Line, "directive %q has no ending \";\"", cur.Name)
			}
			if !inner {
				return nil, p.errf(t.line, "unexpected \"}\"")
			}
			return out, nil
		}
	}
}
