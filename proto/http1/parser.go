package http1

import (
	"bytes"
	"strconv"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file holds the push-style HTTP/1.x parser: one per direction, fed
// whatever bytes TCP reassembly hands over, in pieces of any size. It never
// waits for more data than a header block, skips bodies by length, and
// survives gaps by resynchronising on the next start line.

// Kind is what a direction carries, decided by its first bytes.
type Kind uint8

const (
	KindUnknown  Kind = iota // not decided yet
	KindRequest              // request lines
	KindResponse             // status lines
	KindTLS                  // a TLS record
	KindOther                // neither: ignored
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
	// BodyPrefix is how much of a response body the caller keeps (error
	// pages); the Parser itself keeps none.
	BodyPrefix int
	// MaxPending caps requests the caller keeps waiting for their
	// responses (pipelining).
	MaxPending int
}

// DefaultLimits are safe for hostile input and ample for real proxies
// (nginx's own default for a client header block is 4 x 8 KiB).
var DefaultLimits = Limits{MaxHeaderBytes: 32 << 10, MaxHeaders: 100, BodyPrefix: 512, MaxPending: 32}

// Head is a start line and header block. It is passed by value, so that a
// message costs the Parser no allocation beyond its strings and Headers.
type Head struct {
	Response bool
	// Method and Target of a request; Status and Reason of a response.
	Method, Target string
	Status         int
	Reason         string
	Version        string // "HTTP/1.1"
	Headers        Headers
	// Start and End are the times of the first and last byte of the block.
	Start, End time.Time
	// Truncated: the block exceeded Limits.MaxHeaderBytes, or the capture
	// cut it (Cut); Headers holds what came before. The Parser then looks
	// for the next start line.
	Truncated bool
	// Cut: the capture's snap length kept only the first Kept bytes of the
	// block (Parser.Cut): its whole lines are in Headers, and a header
	// that is not is unknown rather than missing.
	Cut  bool
	Kept int
}

// Switches reports whether the head is a complete 101: the Parser has
// switched its direction to Tunnel, and the caller must switch the other
// one (Parser.Tunnel).
func (h *Head) Switches() bool { return h.Response && h.Status == 101 && (!h.Truncated || h.Cut) }

// Handler receives what a Parser finds, in the order of the bytes. d is
// the direction given to the Parser's Init, so that one Handler serves
// both directions of a connection.
type Handler interface {
	// Sniffed is called once the first bytes tell what the direction
	// carries. For KindRequest and KindResponse parsing goes on; for
	// KindOther the Parser ignores the direction from now on. For KindTLS,
	// data is everything from the record on: a handler that takes it
	// (returns true) leaves the Parser at the start, ready to sniff the
	// plaintext; otherwise the direction is ignored as KindOther.
	Sniffed(d flow.Dir, k Kind, data []byte, t time.Time) (took bool)
	// Head is called with every header block. noBody says, for a
	// response, that the request it answers forbids a body (HEAD, or a
	// CONNECT answered 2xx); the Parser knows the rest (1xx, 204, 304).
	Head(d flow.Dir, h Head) (noBody bool)
	// Body gets the bytes of the current message's body, chunk framing
	// removed.
	Body(d flow.Dir, b []byte)
	// End says the current message is complete, or that the rest of its
	// body will not be contiguous (a gap, a malformed chunk): any Body
	// bytes that still come for it are not its prefix.
	End(d flow.Dir)
	// Tunnel gets the bytes that follow a 101, from the same segment on.
	Tunnel(d flow.Dir, b []byte, t time.Time)
	// TunnelGap says n bytes after a 101 were lost.
	TunnelGap(d flow.Dir, n int)
}

// Parser is the HTTP/1.x state of one direction of a connection. The zero
// value is not usable; call Init. It does not keep its Handler: Feed and
// Gap take it, which keeps a connection's two Parsers small (a busy proxy
// host holds hundreds of thousands).
type Parser struct {
	lim *Limits
	// buf holds a header block (or the bytes of a start line being sniffed
	// or a chunk-size line) that spans segments. Bounded by MaxHeaderBytes.
	buf    []byte
	remain int64
	start  time.Time // of the header block being read
	kind   Kind
	state  pstate
	// afterGap: bytes were lost just before the next data.
	afterGap bool
	dir      flow.Dir // passed to the Handler
}

// Init prepares p for direction d (passed back to the Handler), within
// lim, which must outlive p.
func (p *Parser) Init(d flow.Dir, lim *Limits) {
	*p = Parser{lim: lim, dir: d}
}

// Kind returns what the direction carries, as far as it is known.
func (p *Parser) Kind() Kind { return p.kind }

// Held returns the bytes a direction still being sniffed holds (fewer
// than it needs to decide), nil otherwise. They stay the Parser's.
func (p *Parser) Held() []byte {
	if p.state == stSniff {
		return p.buf
	}
	return nil
}

// Buffered is the capacity of the buffer holding a header block that
// spans segments: what the parser holds beyond its own struct, for a
// memory budget.
func (p *Parser) Buffered() int { return cap(p.buf) }

// Tunnel switches the direction to the protocol a 101 started: from now on
// its bytes go to Handler.Tunnel.
func (p *Parser) Tunnel() {
	p.state = stTunnel
	p.buf = nil
}

// Feed runs the next in-order bytes of the direction, captured at t,
// through the parser, reporting to h.
func (p *Parser) Feed(h Handler, data []byte, t time.Time) {
	lim, d := p.lim, p.dir
	for len(data) > 0 {
		switch p.state {
		case stSniff:
			if len(p.buf) > 0 {
				// A start line split across segments (rare): join the
				// pieces, so the header buffer below only ever holds
				// bytes that were already searched.
				data = append(p.buf, data...)
				p.buf = nil
			}
			k := sniff(data)
			if k == KindUnknown && len(data) >= 32 {
				k = KindOther
			}
			switch k {
			case KindUnknown:
				p.buf = append(p.buf[:0], data...) // fewer than 32 bytes
				return
			case KindRequest, KindResponse:
				p.kind, p.state, p.start = k, stHeader, t
				h.Sniffed(d, k, data, t)
			case KindTLS:
				// The handler may feed decrypted bytes back into p before
				// it returns: p must be at the start, with nothing held.
				p.buf = nil
				if h.Sniffed(d, KindTLS, data, t) {
					return
				}
				p.kind, p.state = KindOther, stDead // TLS inside TLS: not ours
				return
			case KindOther:
				p.kind, p.state, p.buf = k, stDead, nil
				h.Sniffed(d, k, data, t)
				return
			}
		case stHeader:
			if len(p.buf) == 0 {
				// Empty lines between messages are ignored (RFC 9112 §2.2).
				for len(data) > 0 && (data[0] == '\r' || data[0] == '\n') {
					data = data[1:]
				}
				if len(data) == 0 {
					return
				}
				p.start = t
				if e := headerEnd(data); e >= 0 && e <= lim.MaxHeaderBytes {
					p.block(h, data[:e], t, false, 0)
					data = data[e:]
					continue
				}
			}
			old := len(p.buf)
			take := min(len(data), lim.MaxHeaderBytes-old)
			p.buf = append(p.buf, data[:take]...)
			// buf[:old] was searched already; the end may straddle.
			from := max(0, old-3)
			if e := headerEnd(p.buf[from:]); e >= 0 {
				e += from
				p.block(h, p.buf[:e], t, false, 0)
				p.resetBuf()
				data = data[e-old:] // the rest of data follows the block
				continue
			}
			data = data[take:]
			if len(p.buf) >= lim.MaxHeaderBytes {
				// A header block that never ends: report what it had and
				// look for the next message.
				p.block(h, p.buf, t, true, 0)
				p.resetBuf()
				p.state = stResync
			}
		case stBody, stChunkData:
			n := int(min(p.remain, int64(len(data))))
			h.Body(d, data[:n])
			p.remain -= int64(n)
			data = data[n:]
			if p.remain == 0 {
				if p.state == stChunkData {
					p.state = stChunkCRLF
				} else {
					p.endMessage(h)
				}
			}
		case stChunkCRLF:
			i := indexNL(data)
			if i < 0 {
				return
			}
			data = data[i+1:]
			p.state = stChunkSize
		case stChunkSize, stTrailer:
			line, rest, ok := p.line(data, 1024)
			data = rest
			if !ok {
				if line == nil && len(p.buf) >= 1024 {
					p.resetBuf()
					p.state = stResync
				}
				continue
			}
			if p.state == stTrailer {
				if len(trimCRLF(line)) == 0 {
					p.resetBuf()
					p.endMessage(h)
				} else {
					p.buf = p.buf[:0]
				}
				continue
			}
			n, good := parseChunkSize(line)
			p.buf = p.buf[:0]
			switch {
			case !good:
				h.End(d)
				p.state = stResync
			case n == 0:
				p.state = stTrailer
			default:
				p.state, p.remain = stChunkData, n
			}
		case stUntilClose:
			h.Body(d, data)
			return
		case stTunnel:
			// Bytes after a 101 in the same segment are already frames.
			h.Tunnel(d, data, t)
			return
		case stResync:
			i := 0
			if !p.afterGap || !startsMessage(data, p.kind) {
				i = resyncPoint(data, p.kind)
			}
			p.afterGap = false
			if i < 0 {
				return
			}
			data = data[i:]
			p.state = stHeader
		default: // stDead
			return
		}
	}
}

// Gap tells p that the next n bytes of its direction will never come.
func (p *Parser) Gap(h Handler, n int) {
	d := p.dir
	switch p.state {
	case stBody, stChunkData:
		if p.remain >= int64(n) {
			p.remain -= int64(n)
			h.End(d) // the body prefix is no longer contiguous
			return
		}
	case stTunnel:
		h.TunnelGap(d, n)
		return
	case stUntilClose, stDead:
		h.End(d)
		return
	case stSniff:
		p.buf = p.buf[:0]
		return
	}
	h.End(d)
	p.resetBuf()
	p.state = stResync
	// A message may start right where the lost bytes end.
	p.afterGap = true
}

// Cut tells the parser that the capture did not keep the next n bytes of
// the direction (a snap length shorter than the packet): unlike a Gap, the
// bytes were on the wire. A header block they cut short is reported with
// its whole lines, marked Cut; a cut 101 still switches to the tunnel. It
// reports whether the cut fell in a start line or header block.
func (p *Parser) Cut(h Handler, n int) (inHeader bool) {
	if p.state == stSniff && len(p.buf) > 0 {
		p.Gap(h, n) // fewer bytes kept than it takes to tell what they are
		return true
	}
	if p.state != stHeader || len(p.buf) == 0 {
		p.Gap(h, n)
		return false
	}
	raw, kept := p.buf, len(p.buf)
	if i := bytes.LastIndexByte(raw, '\n'); i >= 0 {
		raw = raw[:i+1] // a cut line ("Host: 127") is no header
	} else if !(p.kind == KindResponse && statusCut(raw)) {
		p.Gap(h, n) // a request line cut short: its target is unknown
		return true
	}
	p.block(h, raw, p.start, true, kept)
	p.resetBuf()
	if p.state == stTunnel {
		return true
	}
	h.End(p.dir)
	p.state = stResync
	p.afterGap = true // the next message may start right where the cut ends
	return true
}

// Unread ends a header block that will not go on: the process the bytes
// were read from refused it before reading the rest (TLS plaintext read at
// a proxy that answered "header too large" and closed). The lines so far
// are reported as a truncated block; it reports whether there was one.
func (p *Parser) Unread(h Handler) bool {
	if p.state != stHeader || len(p.buf) == 0 {
		return false
	}
	raw := p.buf
	if i := bytes.LastIndexByte(raw, '\n'); i >= 0 {
		raw = raw[:i+1]
	} else {
		return false // not even the request line
	}
	p.block(h, raw, p.start, true, 0)
	p.resetBuf()
	if p.state != stTunnel {
		h.End(p.dir)
		p.state = stResync
		p.afterGap = true
	}
	return true
}

// statusCut reports whether a status line cut short still holds its code
// ("HTTP/1.1 101 Switching Protoco").
func statusCut(b []byte) bool {
	return len(b) >= 13 && bytes.HasPrefix(b, []byte("HTTP/1.")) && b[8] == ' ' && b[12] == ' ' &&
		'1' <= b[9] && b[9] <= '5' && '0' <= b[10] && b[10] <= '9' && '0' <= b[11] && b[11] <= '9'
}

// block handles a complete (or, when truncated, overflowing or cut after
// kept bytes) header block.
func (p *Parser) block(hd Handler, raw []byte, t time.Time, truncated bool, kept int) {
	d := p.dir
	blk := parseBlock(raw, p.lim.MaxHeaders)
	h := Head{Headers: blk.headers, Start: p.start, End: t, Truncated: truncated, Cut: kept > 0, Kept: kept}
	if h.Start.IsZero() {
		h.Start = t
	}
	if p.kind == KindRequest {
		h.Method, h.Target, h.Version = blk.a, blk.b, blk.c
		hd.Head(d, h)
		if truncated {
			return
		}
		chunked, n := bodyLength(h.Headers)
		switch {
		case chunked:
			p.state = stChunkSize
		case n > 0:
			p.state, p.remain = stBody, n
		default: // requests without a length have no body
			p.state = stHeader
		}
		return
	}
	h.Response = true
	h.Status, _ = strconv.Atoi(blk.b)
	h.Version, h.Reason = blk.a, blk.c
	noBody := hd.Head(d, h)
	switch {
	case truncated && !h.Switches():
		return
	case h.Status == 101:
		p.Tunnel()
		return
	case noBody || h.Status < 200 || h.Status == 204 || h.Status == 304:
		p.endMessage(hd)
		return
	}
	chunked, n := bodyLength(h.Headers)
	switch {
	case chunked:
		p.state = stChunkSize
	case n == 0:
		p.endMessage(hd)
	case n > 0:
		p.state, p.remain = stBody, n
	default:
		p.state = stUntilClose
	}
}

// endMessage finishes the current message.
func (p *Parser) endMessage(h Handler) {
	h.End(p.dir)
	p.state = stHeader
}

func trimCRLF(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// line returns the next complete line (with its LF) from the buffered
// bytes plus data, and the rest of data. ok is false when data ended first;
// the partial line is then buffered (up to maxLen bytes).
func (p *Parser) line(data []byte, maxLen int) (line, rest []byte, ok bool) {
	i := indexNL(data)
	if i < 0 {
		room := maxLen - len(p.buf)
		if room > 0 {
			p.buf = append(p.buf, data[:min(room, len(data))]...)
		}
		return nil, nil, false
	}
	if len(p.buf) == 0 {
		return data[:i+1], data[i+1:], true
	}
	p.buf = append(p.buf, data[:i+1]...)
	return p.buf, data[i+1:], true
}

// resetBuf empties the buffer and lets a large one go, so that a
// connection that once saw a big header block does not keep it.
func (p *Parser) resetBuf() {
	if cap(p.buf) > 4096 {
		p.buf = nil
	} else {
		p.buf = p.buf[:0]
	}
}

// resyncPoint finds the first line start in data that begins a message of
// kind k, or -1. Only line starts inside data are considered; a message
// that starts exactly at a segment boundary after a gap is lost.
func resyncPoint(data []byte, k Kind) int {
	for i := 0; i < len(data); {
		j := indexNL(data[i:])
		if j < 0 {
			return -1
		}
		i += j + 1
		if startsMessage(data[i:], k) {
			return i
		}
	}
	return -1
}
