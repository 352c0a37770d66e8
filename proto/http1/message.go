package http1

import (
	"bytes"
	"strconv"
	"strings"
)

// This file holds the HTTP/1.x syntax the Parser (parser.go) relies on:
// what a direction's first bytes are, where a header block ends, and how
// a start line, header fields, body length and chunk size are read.

// isMethodChar reports whether c may appear in an HTTP method.
func isMethodChar(c byte) bool { return c >= 'A' && c <= 'Z' || c == '-' || c == '_' }

// sniff decides what b starts with. It returns KindUnknown when b is too
// short to tell.
func sniff(b []byte) Kind {
	if len(b) == 0 {
		return KindUnknown
	}
	if b[0] == 0x16 || b[0] == 0x15 || b[0] == 0x17 || b[0] == 0x14 { // TLS content types
		if len(b) < 2 {
			return KindUnknown
		}
		if b[1] == 0x03 {
			return KindTLS
		}
		return KindOther
	}
	const httpPrefix = "HTTP/1."
	n := min(len(b), len(httpPrefix))
	if string(b[:n]) == httpPrefix[:n] {
		if n < len(httpPrefix) {
			return KindUnknown
		}
		return KindResponse
	}
	// A method: 1 to 20 capital letters, then a space.
	for i := 0; i < len(b) && i <= 20; i++ {
		c := b[i]
		if c == ' ' && i > 0 {
			return KindRequest
		}
		if !isMethodChar(c) {
			return KindOther
		}
	}
	if len(b) > 20 {
		return KindOther
	}
	return KindUnknown
}

// startsMessage reports whether b (at a line start) begins a message of kind k.
// Used to resynchronise after a gap.
func startsMessage(b []byte, k Kind) bool {
	if k == KindResponse {
		return bytes.HasPrefix(b, []byte("HTTP/1."))
	}
	for _, m := range knownMethods {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

var knownMethods = []string{"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "}

// headerEnd returns the index just past the blank line that ends a header
// block in b, or -1. Bare LF line ends are accepted, as servers do.
func headerEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}

// block is a parsed start line and header block. Its strings share one
// allocation copied from the wire bytes.
type block struct {
	// request: a=method, b=target, c=version; response: a=version, b=status, c=reason
	a, b, c string
	headers Headers
}

// parseBlock parses a complete header block (terminator included).
func parseBlock(raw []byte, maxHeaders int) block {
	s := string(raw)
	var blk block
	line, rest, _ := strings.Cut(s, "\n")
	// one allocation for the fields: at most a field per line
	blk.headers = make(Headers, 0, max(0, min(strings.Count(rest, "\n")+1, maxHeaders)))
	line = strings.TrimSuffix(line, "\r")
	blk.a, line, _ = strings.Cut(line, " ")
	blk.b, blk.c, _ = strings.Cut(line, " ")
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obsolete line folding: ignored
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || len(blk.headers) >= maxHeaders {
			continue
		}
		blk.headers = append(blk.headers, Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	}
	return blk
}

// bodyLength decides how a message body is delimited, from its headers.
// It returns chunked, or a length, or -1 for "until close".
func bodyLength(h Headers) (chunked bool, n int64) {
	if te, ok := h.Get("Transfer-Encoding"); ok {
		if strings.EqualFold(lastToken(te), "chunked") {
			return true, 0
		}
		return false, -1
	}
	if cl, ok := h.Get("Content-Length"); ok {
		v, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if err != nil || v < 0 {
			return false, -1
		}
		return false, v
	}
	return false, -1
}

func lastToken(s string) string {
	if i := strings.LastIndexByte(s, ','); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

// parseChunkSize reads the hex size at the start of a chunk-size line
// (extensions after ';' ignored). ok is false for a malformed line.
func parseChunkSize(line []byte) (n int64, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}
