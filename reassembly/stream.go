package reassembly

import (
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/proto/wsframe"
	"net/netip"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	tcpr "github.com/gopacket/gopacket/reassembly"
)

// stream is one TCP connection: two push parsers and the connection
// record. gopacket's reassembly calls it in capture order; nothing here
// runs on its own goroutine.
type stream struct {
	asm *Assembler
	id  ConnID
	// ends[0] sent the first packet the assembler saw (gopacket's
	// client-to-server direction), ends[1] the other.
	ends [2]netip.AddrPort
	dir  [2]parser

	first, last time.Time
	closes      [2]Close
	bytes       [2]uint64
	gapBytes    uint64
	gaps        int
	upgradeTime time.Time
	nreq, nresp int
	pending     []*Request       // requests waiting for a response, oldest first
	ws          *wsframe.Session // frames after a 101
	tls         *tlsrec.Conn     // a TLS connection: bytes go through it first
	cur         *Response        // response whose body prefix is being collected
	hdrStart    [2]time.Time

	fast // in-order tracking while the connection needs no reassembly

	// clientDir is the index of the direction the client sends in;
	// roleKnown says whether a SYN or a request line has decided it.
	clientDir   uint8
	roleKnown   bool
	syn, synack bool
	upgraded    bool
	ended       bool
	ignored     bool // neither direction carries HTTP or TLS
}

func dirIndex(d tcpr.TCPFlowDirection) int {
	if d == tcpr.TCPDirClientToServer {
		return 0
	}
	return 1
}

func addrPort(ip gopacket.Endpoint, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip.Raw())
	return netip.AddrPortFrom(a.Unmap(), port)
}

func (s *stream) conn() Conn {
	c := int(s.clientDir)
	return Conn{ID: s.id, Client: s.ends[c], Server: s.ends[1-c], TLS: s.tls != nil}
}

// setClient fixes the client's direction once; later evidence does not
// overturn a SYN.
func (s *stream) setClient(d int) {
	if !s.roleKnown {
		s.clientDir, s.roleKnown = uint8(d), true
	}
}

// Accept sees every segment gopacket handles, in or out of order, before
// reassembly: the place for flags. It returns false once the connection is
// known to carry nothing we parse, so gopacket stops buffering it.
func (s *stream) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir tcpr.TCPFlowDirection, nextSeq tcpr.Sequence, start *bool, ac tcpr.AssemblerContext) bool {
	if s.asm.handing != nil {
		return true // the fast path's synthetic segments: not the wire's flags
	}
	s.flags(tcp, ci.Timestamp, dirIndex(dir))
	if tcp.RST {
		// gopacket ends only the half a RST came in; the connection is over
		// now, so report it after this segment rather than at idle eviction.
		s.asm.reset = s
	}
	// A capture that begins mid-connection has no SYN: start at the first
	// segment rather than wait for one that will never come.
	if nextSeq == -1 {
		*start = true
	}
	return !s.ignored
}

// flags records what a segment's flags say about the connection.
func (s *stream) flags(tcp *layers.TCP, t time.Time, d int) {
	if t.After(s.last) {
		s.last = t
	}
	switch {
	case tcp.SYN && !tcp.ACK:
		s.syn = true
		s.setClient(d)
	case tcp.SYN && tcp.ACK:
		s.synack = true
		s.setClient(1 - d)
	}
	if tcp.RST && s.closes[d].Kind != CloseRST {
		s.closes[d] = Close{Kind: CloseRST, Time: t}
	} else if tcp.FIN && s.closes[d].Kind == CloseNone {
		s.closes[d] = Close{Kind: CloseFIN, Time: t}
	}
}

// ReassembledSG receives the next in-order bytes of one direction.
func (s *stream) ReassembledSG(sg tcpr.ScatterGather, ac tcpr.AssemblerContext) {
	dir, _, _, skip := sg.Info()
	d := dirIndex(dir)
	n, _ := sg.Lengths()
	if skip > 0 {
		s.lost(d, skip)
	}
	if n == 0 {
		return
	}
	s.deliver(d, sg.Fetch(n), sg.CaptureInfo(0).Timestamp)
}

// lost tells direction d that its next n bytes will never come.
func (s *stream) lost(d, n int) {
	if s.tls != nil {
		s.tls.Gap(d)
	} else {
		s.gap(d, n)
	}
}

// deliver runs the next in-order bytes of direction d through TLS or the
// HTTP parser.
func (s *stream) deliver(d int, data []byte, t time.Time) {
	if s.ignored {
		return
	}
	s.bytes[d] += uint64(len(data))
	if s.tls != nil {
		s.tls.Feed(d, data, t)
		return
	}
	s.feed(d, data, t)
}

// ReassemblyComplete is called when both directions have ended.
func (s *stream) ReassemblyComplete(ac tcpr.AssemblerContext) bool {
	s.finish()
	s.asm.forget(s) // gopacket drops it now
	return true
}

func (s *stream) gap(d int, n int) {
	s.gaps++
	s.gapBytes += uint64(n)
	p := &s.dir[d]
	switch p.state {
	case stBody, stChunkData:
		if p.remain >= int64(n) {
			p.remain -= int64(n)
			if p.kind == kindResponse {
				s.emitResponse() // its body prefix is no longer contiguous
			}
			return
		}
	case stTunnel:
		if s.ws != nil {
			s.ws.Gap(d, n)
		}
		return
	case stUntilClose, stDead:
		if p.kind == kindResponse {
			s.emitResponse()
		}
		return
	case stSniff:
		p.buf = p.buf[:0]
		return
	}
	if p.kind == kindResponse {
		s.emitResponse()
	}
	p.resetBuf()
	p.state = stResync
	// A message may start right where the lost bytes end.
	p.afterGap = true
}

// feed runs data through direction d's parser.
func (s *stream) feed(d int, data []byte, t time.Time) {
	p := &s.dir[d]
	lim := &s.asm.opt.Limits
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
			if k == kindUnknown && len(data) >= 32 {
				k = kindOther
			}
			switch k {
			case kindUnknown:
				p.buf = append(p.buf[:0], data...) // fewer than 32 bytes
				return
			case kindRequest:
				s.engage()
				p.kind, p.state = kindRequest, stHeader
				s.setClient(d)
				s.hdrStart[d] = t
			case kindResponse:
				s.engage()
				p.kind, p.state = kindResponse, stHeader
				s.setClient(1 - d)
				s.hdrStart[d] = t
			case kindTLS:
				if s.tls == nil {
					s.engage()
					// From here on both directions' bytes go through TLS;
					// whatever it decrypts comes back to feed, to be sniffed
					// as plaintext.
					s.tls = tlsrec.NewConn(s.asm.opt.KeyLog, s.feed)
					p.buf = nil
					if s.asm.tlsSink != nil {
						s.asm.tlsSink.TLSStart(&TLSStart{Conn: s.conn(), Time: t})
					}
					s.tls.Feed(d, data, t)
					return
				}
				p.kind, p.state, p.buf = kindOther, stDead, nil // TLS inside TLS: not ours
				return
			case kindOther:
				p.kind, p.state, p.buf = k, stDead, nil
				// A connection whose first payload is neither HTTP nor TLS
				// is dropped before anything more is buffered.
				o := s.dir[1-d].kind
				if k == kindOther && (o == kindOther || o == kindUnknown && s.bytes[1-d] == 0) {
					s.ignored = true
				}
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
				s.hdrStart[d] = t
				if e := headerEnd(data); e >= 0 && e <= lim.MaxHeaderBytes {
					s.onBlock(d, data[:e], t, false)
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
				s.onBlock(d, p.buf[:e], t, false)
				p.resetBuf()
				data = data[e-old:] // the rest of data follows the block
				continue
			}
			data = data[take:]
			if len(p.buf) >= lim.MaxHeaderBytes {
				// A header block that never ends: report what it had and
				// look for the next message.
				s.onBlock(d, p.buf, t, true)
				p.resetBuf()
				p.state = stResync
			}
		case stBody, stChunkData:
			n := int(min(p.remain, int64(len(data))))
			s.bodyBytes(d, data[:n])
			p.remain -= int64(n)
			data = data[n:]
			if p.remain == 0 {
				if p.state == stChunkData {
					p.state = stChunkCRLF
				} else {
					s.endMessage(d)
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
					s.endMessage(d)
				} else {
					p.buf = p.buf[:0]
				}
				continue
			}
			n, good := parseChunkSize(line)
			p.buf = p.buf[:0]
			switch {
			case !good:
				s.emitResponseIf(d)
				p.state = stResync
			case n == 0:
				p.state = stTrailer
			default:
				p.state, p.remain = stChunkData, n
			}
		case stUntilClose:
			s.bodyBytes(d, data)
			return
		case stTunnel:
			// Bytes after a 101 in the same segment are already frames.
			if s.ws != nil {
				s.ws.Feed(d, data, t)
			}
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
// the partial line is then buffered (up to max bytes).
func (p *parser) line(data []byte, maxLen int) (line, rest []byte, ok bool) {
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
func (p *parser) resetBuf() {
	if cap(p.buf) > 4096 {
		p.buf = nil
	} else {
		p.buf = p.buf[:0]
	}
}

// resyncPoint finds the first line start in data that begins a message of
// kind k, or -1. Only line starts inside data are considered; a message
// that starts exactly at a segment boundary after a gap is lost.
func resyncPoint(data []byte, k msgKind) int {
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

// onBlock handles a complete (or, when truncated, overflowing) header
// block in direction d.
func (s *stream) onBlock(d int, raw []byte, t time.Time, truncated bool) {
	p := &s.dir[d]
	lim := &s.asm.opt.Limits
	blk := parseBlock(raw, lim.MaxHeaders)
	start := s.hdrStart[d]
	if start.IsZero() {
		start = t
	}
	if p.kind == kindRequest {
		req := &Request{Conn: s.conn(), Index: s.nreq, Method: blk.a, Target: blk.b, Version: blk.c,
			Headers: blk.headers, Start: start, End: t, Truncated: truncated}
		s.nreq++
		if len(s.pending) >= lim.MaxPending {
			copy(s.pending, s.pending[1:])
			s.pending = s.pending[:len(s.pending)-1]
		}
		s.pending = append(s.pending, req)
		s.asm.sink.Request(req)
		if truncated {
			return
		}
		chunked, n := bodyLength(req.Headers)
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
	status, _ := strconv.Atoi(blk.b)
	resp := &Response{Conn: s.conn(), Index: s.nresp, Version: blk.a, Status: status, Reason: blk.c,
		Headers: blk.headers, Start: start, End: t, Truncated: truncated}
	s.nresp++
	if status >= 200 || status == 101 {
		if len(s.pending) > 0 {
			resp.Request = s.pending[0]
			s.pending[0] = nil
			s.pending = s.pending[1:]
		}
	}
	s.emitResponse() // a previous response still collecting its body
	if truncated {
		s.asm.sink.Response(resp)
		return
	}
	if status == 101 {
		s.asm.sink.Response(resp)
		s.upgraded, s.upgradeTime = true, t
		for i := range s.dir {
			s.dir[i].state = stTunnel
			s.dir[i].buf = nil
		}
		s.ws = &wsframe.Session{}
		s.ws.Init(int(s.clientDir), wsframe.DeflateNegotiated(resp.Headers.Values("Sec-WebSocket-Extensions")))
		s.pending = nil
		return
	}
	noBody := status < 200 || status == 204 || status == 304 ||
		resp.Request != nil && (resp.Request.Method == "HEAD" || resp.Request.Method == "CONNECT" && status < 300)
	if noBody {
		s.asm.sink.Response(resp)
		p.state = stHeader
		return
	}
	s.cur = resp
	chunked, n := bodyLength(resp.Headers)
	switch {
	case chunked:
		p.state = stChunkSize
	case n == 0:
		s.emitResponse()
		p.state = stHeader
	case n > 0:
		p.state, p.remain = stBody, n
	default:
		p.state = stUntilClose
	}
}

// bodyBytes sees body bytes of direction d; a response keeps its prefix.
func (s *stream) bodyBytes(d int, b []byte) {
	if s.dir[d].kind != kindResponse || s.cur == nil {
		return
	}
	p := &s.dir[d]
	room := s.asm.opt.BodyPrefix - len(p.body)
	if room > 0 {
		p.body = append(p.body, b[:min(room, len(b))]...)
	}
	if len(p.body) >= s.asm.opt.BodyPrefix {
		s.emitResponse()
	}
}

// endMessage finishes the message in direction d.
func (s *stream) endMessage(d int) {
	if s.dir[d].kind == kindResponse {
		s.emitResponse()
	}
	s.dir[d].state = stHeader
}

func (s *stream) emitResponseIf(d int) {
	if s.dir[d].kind == kindResponse {
		s.emitResponse()
	}
}

// emitResponse delivers the response being collected, with the body
// prefix gathered so far.
func (s *stream) emitResponse() {
	if s.cur == nil {
		return
	}
	r := s.cur
	s.cur = nil
	d := 1 - int(s.clientDir)
	p := &s.dir[d]
	if len(p.body) > 0 {
		r.Body = string(p.body)
		p.body = p.body[:0]
	}
	s.asm.sink.Response(r)
}

// finish emits the connection's end, once.
func (s *stream) finish() {
	if s.ended {
		return
	}
	s.ended = true
	s.asm.stats.Open--
	s.emitResponse()
	httpSeen := s.dir[0].kind == kindRequest || s.dir[0].kind == kindResponse ||
		s.dir[1].kind == kindRequest || s.dir[1].kind == kindResponse
	tls := s.tls != nil
	noData := s.bytes[0] == 0 && s.bytes[1] == 0
	// Connections that carried something else are of no interest; ones that
	// carried nothing are connect attempts (refused, unanswered, or idle).
	if !httpSeen && !tls && !(noData && s.syn) {
		return
	}
	c := int(s.clientDir)
	e := &ConnEnd{Conn: s.conn(), First: s.first, Last: s.last, SYN: s.syn, SYNACK: s.synack,
		ClientClose: s.closes[c], ServerClose: s.closes[1-c],
		HTTP: httpSeen, TLS: tls, Upgraded: s.upgraded, UpgradeTime: s.upgradeTime,
		BytesC2S: s.bytes[c], BytesS2C: s.bytes[1-c], Gaps: s.gaps, GapBytes: s.gapBytes,
		Requests: s.nreq, Responses: s.nresp}
	if s.ws != nil {
		e.WS = s.ws.Summary(c)
	}
	if s.tls != nil {
		info := *s.tls.Info()
		e.TLSInfo = &info
	}
	switch {
	case s.closes[0].Kind == CloseRST || s.closes[1].Kind == CloseRST ||
		s.closes[0].Kind != CloseNone && s.closes[1].Kind != CloseNone:
		e.Reason = EndClosed
	case s.asm.ending:
		e.Reason = EndCapture
	default:
		e.Reason = EndIdle
	}
	s.asm.sink.ConnEnd(e)
}
