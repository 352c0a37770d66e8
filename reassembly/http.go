package reassembly

import (
	"bytes"
	"strconv"
	"strings"
)

// This file holds the push-style HTTP/1.x parser: one per direction, fed
// whatever bytes TCP reassembly hands over, in pieces of any size. It never
// waits for more data than a header block, skips bodies by length, and
// survives gaps by resynchronising on the next start line.

// msgKind is what a direction carries, decided by its first bytes.
type msgKind uint8

const (
	kindUnknown  msgKind = iota // not decided yet
	kindRequest                 // request lines
	kindResponse                // status lines
	kindTLS                     // a TLS record
	kindOther                   // neither: ignored
)

// pstate is the parser's position in the message grammar.
type pstate uint8

const (
	stSniff      pstate = iota // deciding what the direction carries
	stHeader                   // inside a start line + header block
	stBody                     // Content-Length body: remain bytes left
	stChunkSize                // reading a chunk-size line
	stChunkData                // inside chunk data: remain bytes left
	stChunkCRLF                // the CRLF after chunk data
	stTrailer                  // trailer lines after the last chunk
	stUntilClose               // body delimited by the connection's close
	stTunnel                   // after a 101: not HTTP any more
	stResync                   // lost our place: looking for a start line
	stDead                     // ignoring everything
)

// Limits bound what one direction may buffer.
type Limits struct {
	// MaxHeaderBytes caps a start line plus header block.
	MaxHeaderBytes int
	// MaxHeaders caps the header lines kept per message.
	MaxHeaders int
	// BodyPrefix is how much of a response body is kept (error pages).
	BodyPrefix int
	// MaxPending caps requests waiting for their responses (pipelining).
	MaxPending int
}

// DefaultLimits are safe for hostile input and ample for real proxies
// (nginx's own default for a client header block is 4 x 8 KiB).
var DefaultLimits = Limits{MaxHeaderBytes: 32 << 10, MaxHeaders: 100, BodyPrefix: 512, MaxPending: 32}

// parser is the state of one direction.
type parser struct {
	// buf holds a header block (or the bytes of a start line being sniffed
	// or a chunk-size line) that spans segments. Bounded by MaxHeaderBytes.
	buf    []byte
	remain int64
	// body collects the prefix of the current response body.
	body  []byte
	kind  msgKind
	state pstate
	// chunked, for the body state after the current header block
	chunked bool
	// afterGap: bytes were lost just before the next data.
	afterGap bool
}

// isTokenChar reports whether c may appear in an HTTP method.
func isMethodChar(c byte) bool { return c >= 'A' && c <= 'Z' || c == '-' || c == '_' }

// sniff decides what b starts with. It returns kindUnknown when b is too
// short to tell.
func sniff(b []byte) msgKind {
	if len(b) == 0 {
		return kindUnknown
	}
	if b[0] == 0x16 || b[0] == 0x15 || b[0] == 0x17 || b[0] == 0x14 { // TLS content types
		if len(b) < 2 {
			return kindUnknown
		}
		if b[1] == 0x03 {
			return kindTLS
		}
		return kindOther
	}
	const httpPrefix = "HTTP/1."
	n := min(len(b), len(httpPrefix))
	if string(b[:n]) == httpPrefix[:n] {
		if n < len(httpPrefix) {
			return kindUnknown
		}
		return kindResponse
	}
	// A method: 1 to 20 capital letters, then a space.
	for i := 0; i < len(b) && i <= 20; i++ {
		c := b[i]
		if c == ' ' && i > 0 {
			return kindRequest
		}
		if !isMethodChar(c) {
			return kindOther
		}
	}
	if len(b) > 20 {
		return kindOther
	}
	return kindUnknown
}

// startsMessage reports whether b (at a line start) begins a message of kind k.
// Used to resynchronise after a gap.
func startsMessage(b []byte, k msgKind) bool {
	if k == kindResponse {
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
	// malformed start line
	bad bool
}

// parseBlock parses a complete header block (terminator included).
func parseBlock(raw []byte, maxHeaders int) block {
	s := string(raw)
	var blk block
	line, rest, _ := strings.Cut(s, "\n")
	line = strings.TrimSuffix(line, "\r")
	var ok bool
	blk.a, line, ok = strings.Cut(line, " ")
	if !ok {
		blk.bad = true
	}
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
