package reassembly

import (
	"github.com/wsdiag/wsdiag/proto/flow"
	"github.com/wsdiag/wsdiag/proto/http1"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/proto/wsframe"
	"math"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	tcpr "github.com/gopacket/gopacket/reassembly"
)

// stream is one TCP connection: the connection record, and the glue that
// routes each direction's bytes to the proto parsers (TLS first when the
// connection is TLS, then HTTP/1.x, then WebSocket frames after a 101) and
// turns what they find into events. gopacket's reassembly calls it in capture order; nothing here
// runs on its own goroutine.
type stream struct {
	asm *Assembler
	id  ConnID
	// ends[flow.Fwd] sent the first packet the assembler saw (gopacket's
	// client-to-server direction), ends[flow.Rev] the other. Every [2]
	// array of the stream is indexed by flow.Dir.
	ends [2]netip.AddrPort
	dir  [2]http1.Parser // each reports to the stream (an http1.Handler)
	// body collects the prefix of the response being collected, by the
	// direction it came in.
	body [2][]byte

	first, last time.Time
	closes      [2]Close
	bytes       [2]uint64
	gapBytes    uint64
	gaps        int
	upgradeTime time.Time
	nreq, nresp int32            // messages so far (int32: the struct stays in its size class)
	pending     []*Request       // requests waiting for a response, oldest first
	ws          *wsframe.Session // frames after a 101, or hunted for (midstream.go)
	tls         *tlsrec.Conn     // a TLS connection: bytes go through it first
	h2          *h2conn          // an HTTP/2 connection: bytes go to it, not to dir
	cur         *Response        // response whose body prefix is being collected

	fast // in-order tracking while the connection needs no reassembly

	// clientDir is the direction the client sends in; roleKnown says
	// whether a SYN or a request line has decided it.
	clientDir   flow.Dir
	roleKnown   bool
	syn, synack bool
	upgraded    bool
	ended       bool
	ignored     bool // neither direction carries HTTP or TLS
	midDone     bool // a hunt for frames was given up
	// mem is what the budget was charged for s, to subsystem memSub;
	// forgotten: given back. (The struct, with its allocation header, stays
	// in the 640-byte size class.)
	memSub    Mem
	forgotten bool
	// hasNode: the Assembler holds a nodeState for s (node.go); a map
	// entry rather than a field, which would cost every connection a size
	// class. hasPlain: likewise its plaintext state, in plains
	// (plaintext.go).
	hasNode  bool
	hasPlain bool
	mem      int32
}

// dirOf is gopacket's direction as ours: both call the direction of the
// first segment seen client-to-server, or Fwd.
func dirOf(d tcpr.TCPFlowDirection) flow.Dir {
	if d == tcpr.TCPDirClientToServer {
		return flow.Fwd
	}
	return flow.Rev
}

func addrPort(ip gopacket.Endpoint, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip.Raw())
	return netip.AddrPortFrom(a.Unmap(), port)
}

func (s *stream) conn() Conn {
	c := s.clientDir
	return Conn{ID: s.id, Client: s.ends[c], Server: s.ends[c.Reverse()], TLS: s.tls != nil || s.hasPlain, Node: s.node()}
}

// setClient fixes the client's direction once; later evidence does not
// overturn a SYN.
func (s *stream) setClient(d flow.Dir) {
	if !s.roleKnown {
		s.clientDir, s.roleKnown = d, true
	}
}

// Accept sees every segment gopacket handles, in or out of order, before
// reassembly: the place for flags. It returns false once the connection is
// known to carry nothing we parse, so gopacket stops buffering it.
func (s *stream) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir tcpr.TCPFlowDirection, nextSeq tcpr.Sequence, start *bool, ac tcpr.AssemblerContext) bool {
	if s.asm.handing != nil {
		return true // the fast path's synthetic segments: not the wire's flags
	}
	s.flags(tcp, ci.Timestamp, dirOf(dir))
	if s.asm.via != nil {
		s.asm.viaStream = s // PacketVia's connection, when the fast path holds none
	}
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
func (s *stream) flags(tcp *layers.TCP, t time.Time, d flow.Dir) {
	if t.After(s.last) {
		s.last = t
	}
	switch {
	case tcp.SYN && !tcp.ACK:
		s.syn = true
		s.setClient(d)
	case tcp.SYN && tcp.ACK:
		s.synack = true
		s.setClient(d.Reverse())
	}
	if tcp.RST && s.closes[d].Kind != CloseRST {
		gap := uint32(0)
		if s.closes[d].Kind == CloseFIN {
			gap = uint32(min(t.Sub(s.closes[d].Time).Microseconds(), math.MaxUint32-1)) + 1
		}
		s.closes[d] = Close{Kind: CloseRST, Time: t, finGap: gap}
	} else if tcp.FIN && s.closes[d].Kind == CloseNone {
		s.closes[d] = Close{Kind: CloseFIN, Time: t}
	}
}

// finTime is when direction d sent its FIN (zero: none).
func (s *stream) finTime(d flow.Dir) time.Time {
	switch c := s.closes[d]; {
	case c.Kind == CloseFIN:
		return c.Time
	case c.finGap > 0:
		return c.Time.Add(-time.Duration(c.finGap-1) * time.Microsecond)
	}
	return time.Time{}
}

// ReassembledSG receives the next in-order bytes of one direction.
func (s *stream) ReassembledSG(sg tcpr.ScatterGather, ac tcpr.AssemblerContext) {
	dir, _, _, skip := sg.Info()
	d := dirOf(dir)
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
func (s *stream) lost(d flow.Dir, n int) {
	s.proxyLost(d)
	if s.hasPlain {
		s.cipherLost(d, n)
		return
	}
	if s.mid() {
		s.ws.Gap(d, n)
		return
	}
	if s.tls != nil {
		s.tls.Gap(d)
		if s.h2 != nil {
			s.h2.gap(d, n) // TLS stops decrypting that direction
		}
	} else {
		s.gap(d, n)
	}
	s.account()
}

// cut tells direction d that the capture did not keep its next n bytes
// (the snap length cut a segment): a header block cut short is still
// reported, with the lines it kept.
func (s *stream) cut(d flow.Dir, n int) {
	s.proxyLost(d)
	if s.tls != nil || s.ignored || s.mid() || s.hasPlain {
		s.lost(d, n)
		return
	}
	s.gaps++
	s.gapBytes += uint64(n)
	if s.dir[d].Cut(s, n) {
		s.asm.stats.HeaderCuts++
	}
	s.account()
}

// deliver runs the next in-order bytes of direction d through TLS or the
// HTTP parser.
func (s *stream) deliver(d flow.Dir, data []byte, t time.Time) {
	if s.hasPlain {
		s.cipher(d, data, t)
		return
	}
	if s.ignored {
		return
	}
	first := s.bytes[d] == 0
	s.bytes[d] += uint64(len(data))
	if first || s.hasNode {
		// a PROXY header (node.go) is not the client's HTTP
		if data = s.proxyHeader(d, data, first, t); len(data) == 0 {
			s.account()
			return
		}
	}
	if s.mid() {
		s.midFeed(d, data, t)
		return
	}
	if s.tls != nil {
		s.tls.Feed(d, data, t)
		s.tlsRecords()
	} else {
		s.feed(d, data, t)
	}
	s.account()
}

// tlsRecords passes the TLS connection's AppRecords on, one event per new
// record, until the connection's end was reported.
func (s *stream) tlsRecords() {
	if s.asm.tlsSink == nil || s.ended {
		return
	}
	for {
		recs, ok := s.tls.NextAppRecords()
		if !ok {
			return
		}
		in := s.tls.Info()
		s.asm.tlsSink.TLSRecords(&TLSRecords{Conn: s.conn(), Records: recs, Version: in.Version, Cipher: in.Cipher})
	}
}

// ReassemblyComplete is called when both directions have ended.
func (s *stream) ReassemblyComplete(ac tcpr.AssemblerContext) bool {
	s.finish()
	s.asm.forget(s) // gopacket drops it now
	return true
}

func (s *stream) gap(d flow.Dir, n int) {
	s.gaps++
	s.gapBytes += uint64(n)
	if s.h2 != nil {
		s.h2.gap(d, n)
		return
	}
	s.dir[d].Gap(s, n)
}

// feed runs data through direction d's HTTP parser, or the HTTP/2 one
// once the first bytes (or TLS's ALPN) have said HTTP/2.
func (s *stream) feed(d flow.Dir, data []byte, t time.Time) {
	if s.h2 == nil && s.dir[d].Kind() == http1.KindUnknown && len(data) > 0 && !s.startH2(d, data) {
		s.dir[d].Feed(s, data, t)
		return
	}
	if s.h2 != nil {
		s.h2.feed(d, data, t)
		return
	}
	s.dir[d].Feed(s, data, t)
}

// initParsers readies both directions' HTTP parsers.
func (s *stream) initParsers() {
	for d := range s.dir {
		s.dir[d].Init(flow.Dir(d), &s.asm.opt.Limits)
	}
}

// The stream is the http1.Handler of both its directions: it turns what
// the parsers find into events.

func (s *stream) Sniffed(d flow.Dir, k http1.Kind, data []byte, t time.Time) bool {
	if s.mid() && k != http1.KindOther {
		s.dropMid()
	}
	switch k {
	case http1.KindRequest:
		s.engage()
		s.setClient(d)
	case http1.KindResponse:
		s.engage()
		s.setClient(d.Reverse())
	case http1.KindTLS:
		if s.tls != nil {
			return false // TLS inside TLS: not ours
		}
		s.engage()
		// From here on both directions' bytes go through TLS; whatever it
		// decrypts comes back to feed, to be sniffed as plaintext.
		s.tls = tlsrec.NewConn(s.asm.opt.KeyLog, s.decrypted)
		if s.asm.tlsSink != nil {
			s.asm.tlsSink.TLSStart(&TLSStart{Conn: s.conn(), Time: t})
		}
		s.tls.Feed(d, data, t)
		s.tlsRecords()
		return true
	case http1.KindOther:
		// A connection whose first payload is neither HTTP nor TLS is
		// dropped before anything more is buffered, unless it began before
		// the capture: then it may be a WebSocket session.
		if s.startMid(d, data, t) {
			return true
		}
		o := s.dir[d.Reverse()].Kind()
		if o == http1.KindOther || o == http1.KindUnknown && s.bytes[d.Reverse()] == 0 {
			s.ignored = true
		}
	}
	return true
}

func (s *stream) Head(d flow.Dir, m http1.Head) (noBody bool) {
	lim := &s.asm.opt.Limits
	if !m.Response {
		req := &Request{Conn: s.conn(), Index: int(s.nreq), Method: m.Method, Target: m.Target, Version: m.Version,
			Headers: m.Headers, Start: m.Start, End: m.End, Opened: s.first, Truncated: m.Truncated, Cut: m.Cut, Kept: m.Kept,
			Unread: s.unreading()}
		s.nreq++
		if len(s.pending) >= lim.MaxPending {
			copy(s.pending, s.pending[1:])
			s.pending = s.pending[:len(s.pending)-1]
		}
		s.pending = append(s.pending, req)
		s.asm.sink.Request(req)
		return false
	}
	s.unread(d, m.Status)
	status := m.Status
	resp := &Response{Conn: s.conn(), Index: int(s.nresp), Version: m.Version, Status: status, Reason: m.Reason,
		Headers: m.Headers, Start: m.Start, End: m.End, Truncated: m.Truncated, Cut: m.Cut, Kept: m.Kept}
	s.nresp++
	if status >= 200 || status == 101 {
		if len(s.pending) > 0 {
			// shifted, not resliced: the next request reuses the capacity
			resp.Request = s.pending[0]
			copy(s.pending, s.pending[1:])
			s.pending[len(s.pending)-1] = nil
			s.pending = s.pending[:len(s.pending)-1]
		}
	}
	if resp.Request == nil && s.nreq == 0 && s.hasNode {
		s.proxyAnswered(resp)
	}
	s.emitResponse() // a previous response still collecting its body
	if m.Truncated && !m.Switches() {
		s.asm.sink.Response(resp)
		return false
	}
	if m.Switches() {
		s.asm.sink.Response(resp)
		s.upgraded, s.upgradeTime = true, m.End
		s.dir[d.Reverse()].Tunnel() // the parser switches its own direction
		s.ws = &wsframe.Session{}
		s.ws.Init(s.clientDir, deflateMayBe(resp))
		s.pending = nil
		return false
	}
	// Collected until the parser ends it (at once when it has no body).
	s.cur = resp
	return resp.Request != nil && (resp.Request.Method == "HEAD" || resp.Request.Method == "CONNECT" && status < 300)
}

// Body sees body bytes; a response keeps its prefix.
func (s *stream) Body(d flow.Dir, b []byte) {
	if s.dir[d].Kind() != http1.KindResponse || s.cur == nil {
		return
	}
	room := s.asm.opt.BodyPrefix - len(s.body[d])
	if room > 0 {
		s.body[d] = append(s.body[d], b[:min(room, len(b))]...)
	}
	if len(s.body[d]) >= s.asm.opt.BodyPrefix {
		s.emitResponse()
	}
}

// End delivers a response when its body ends or stops being contiguous.
func (s *stream) End(d flow.Dir) {
	if s.dir[d].Kind() == http1.KindResponse {
		s.emitResponse()
	}
}

func (s *stream) Tunnel(d flow.Dir, b []byte, t time.Time) {
	if s.ws != nil {
		s.ws.Feed(d, b, t)
	}
}

func (s *stream) TunnelGap(d flow.Dir, n int) {
	if s.ws != nil {
		s.ws.Gap(d, n)
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
	d := s.clientDir.Reverse()
	if len(s.body[d]) > 0 {
		r.Body = string(s.body[d])
		s.body[d] = s.body[d][:0]
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
	if s.h2 != nil {
		s.h2.finish()
	}
	k0, k1 := s.dir[flow.Fwd].Kind(), s.dir[flow.Rev].Kind()
	httpSeen := k0 == http1.KindRequest || k0 == http1.KindResponse ||
		k1 == http1.KindRequest || k1 == http1.KindResponse || s.h2 != nil
	tls := s.tls != nil
	noData := s.bytes[flow.Fwd] == 0 && s.bytes[flow.Rev] == 0
	mid := s.midSummary()
	// Connections that carried something else are of no interest; ones that
	// carried nothing are connect attempts (refused, unanswered, or idle).
	if !httpSeen && !tls && mid == nil && !(noData && s.syn) && !s.proxySeen() && !s.hasPlain {
		return
	}
	c, sv := s.clientDir, s.clientDir.Reverse()
	e := &ConnEnd{Conn: s.conn(), First: s.first, Last: s.last, SYN: s.syn, SYNACK: s.synack,
		ClientClose: s.closes[c], ServerClose: s.closes[sv],
		HTTP: httpSeen, H2: s.h2 != nil, TLS: tls, Upgraded: s.upgraded, UpgradeTime: s.upgradeTime,
		BytesC2S: s.bytes[c], BytesS2C: s.bytes[sv], Gaps: s.gaps, GapBytes: s.gapBytes,
		Requests: int(s.nreq), Responses: int(s.nresp), Plain: s.plainEnd()}
	e.ClientFIN, e.ServerFIN = s.finTime(c), s.finTime(sv)
	if mid != nil {
		e.WS = mid
	} else if s.ws != nil && !s.mid() {
		e.WS = s.ws.Summary(c)
	} else if s.h2 != nil && s.h2.ws != nil {
		e.WS = s.h2.ws.Summary(c)
	}
	if s.tls != nil {
		info := *s.tls.Info()
		e.TLSInfo = &info
	}
	switch {
	case s.closes[flow.Fwd].Kind == CloseRST || s.closes[flow.Rev].Kind == CloseRST ||
		s.closes[flow.Fwd].Kind != CloseNone && s.closes[flow.Rev].Kind != CloseNone:
		e.Reason = EndClosed
	case s.asm.ending:
		e.Reason = EndCapture
	default:
		e.Reason = EndIdle
	}
	s.asm.sink.ConnEnd(e)
}
