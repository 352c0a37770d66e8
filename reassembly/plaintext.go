package reassembly

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/flow"
)

// TLS plaintext read from one end of a connection (the proxy's own
// SSL_read and SSL_write, through capture/tlsplain, or the records a
// capture file keeps of them) stands for what decryption with a key log
// would give: it goes to the HTTP, HTTP/2 and WebSocket parsers exactly
// where tlsrec's plaintext would, while the connection's packets still
// give its opening, closing and timing, and its TLS records the handshake.
// A connection with plaintext never decrypts, and its ciphertext is parsed
// for nothing but TLS metadata.
//
// A connection that began before the probes were attached has plaintext
// from its middle: a WebSocket session is found by the frame hunt of
// midstream.go, HTTP/1.x from the next request line; HTTP/2 cannot be
// read (HPACK needs the header table from the connection's start), which
// its ConnEnd says. Plaintext lost on the way (a full ring) is a gap, as
// bytes lost on the wire are.

// Plain is a piece of one direction's plaintext: the type a capture
// file's exported-PDU records and the live probes both give.
type Plain = capture.Plaintext

// PlainInfo is what a connection's plaintext showed, in its ConnEnd.
type PlainInfo struct {
	// MidStream: the plaintext began after the connection's start (it
	// was open when the probes were attached).
	MidStream bool
	// H2: HTTP/2 frames from the middle of the connection: its requests
	// and responses cannot be read (HPACK needs the connection's start).
	H2 bool
	// LostBytes is plaintext that did not arrive (the probes' ring was
	// full): the parsers stepped over it as a gap.
	LostBytes uint64
	// Unread: the proxy refused a request's header block before reading
	// all of it (Request.Unread).
	Unread bool
}

// plainState is a stream's plaintext, by stream direction.
type plainState struct {
	next    [2]uint32 // offset expected next
	started [2]bool
	ended   [2]bool
	info    PlainInfo
	// h2 is set when the first plaintext of a direction is an HTTP/2
	// SETTINGS frame: the server's preface, which may come before the
	// client's (what ALPN h2 tells when decrypting).
	h2 bool
	// unreading: a header block the proxy refused unread is being
	// reported (Request.Unread).
	unreading bool
}

// Plaintext feeds one piece of plaintext. Pieces come in capture order
// with the packets; a piece whose connection has no packets yet opens it.
func (a *Assembler) Plaintext(p *Plain) {
	if a.opt.slowOnly || !p.Src.IsValid() || !p.Dst.IsValid() {
		return
	}
	a.stats.PlainPieces++
	k := plainKey(p.Src, p.Dst)
	r := a.conns[k]
	s, d := r.s, r.d
	switch {
	case s == nil:
		if p.End {
			return // nothing to end
		}
		a.synth = layers.TCP{SrcPort: layers.TCPPort(p.Src.Port()), DstPort: layers.TCPPort(p.Dst.Port())}
		s, d = a.open(k.net, &a.synth, p.Time, k), flow.Fwd
	case s.ended || s.dead:
		if !p.End {
			a.stats.PlainLate++
		}
		return
	}
	if p.Time.After(s.last) {
		s.last = p.Time
	}
	s.plain(d, p)
	if st := s.pts(); st.ended[0] && st.ended[1] && s.packetless() {
		s.finish()
		a.forget(s)
		return
	}
	a.touch(s)
}

// plainKey is the fast path's key of the direction from src to dst, as a
// packet's would be.
func plainKey(src, dst netip.AddrPort) connKey {
	var f gopacket.Flow
	if s, d := src.Addr(), dst.Addr(); s.Is4() && d.Is4() {
		s4, d4 := s.As4(), d.As4()
		f = gopacket.NewFlow(layers.EndpointIPv4, s4[:], d4[:])
	} else {
		s16, d16 := s.As16(), d.As16()
		f = gopacket.NewFlow(layers.EndpointIPv6, s16[:], d16[:])
	}
	return connKey{f, src.Port(), dst.Port(), 0} // the proxy's own socket: never a tunnel's outer packet
}

// plain takes a piece of direction d.
func (s *stream) plain(d flow.Dir, p *Plain) {
	st := s.pts()
	if st == nil {
		st = &plainState{}
		if s.asm.plains == nil {
			s.asm.plains = map[*stream]*plainState{}
		}
		s.asm.plains[s], s.hasPlain = st, true
		s.asm.stats.PlainConns++
	}
	if !st.started[d] {
		st.started[d] = true
		if p.Start {
			st.next[d] = 0
		} else {
			st.next[d] = p.Off
			if !st.info.MidStream {
				st.info.MidStream = true
				s.asm.stats.PlainMidStream++
				s.restartMid()
			}
		}
		if p.Start && p.Off == 0 && s.h2 == nil && h2Settings(p.Data) {
			st.h2 = true
		}
	}
	if st.ended[d] {
		return
	}
	data := p.Data
	switch diff := int32(p.Off - st.next[d]); {
	case diff > 0:
		st.info.LostBytes += uint64(diff)
		s.asm.stats.PlainLost += uint64(diff)
		s.plainGap(d, int(diff))
	case diff < 0:
		if -int(diff) >= len(data) {
			data = nil
		} else {
			data = data[-diff:]
		}
	}
	st.next[d] = p.Off + uint32(len(p.Data))
	if p.End {
		st.ended[d] = true
	}
	if len(data) == 0 || s.ignored {
		return
	}
	if st.info.MidStream && !st.info.H2 && s.h2 == nil && h2Frames(data) {
		// HTTP/2 from its middle: nothing to read.
		st.info.H2 = true
		s.ws, s.midDone, s.ignored = nil, true, true
		return
	}
	if s.mid() {
		s.midFeed(d, data, p.Time)
	} else {
		s.feed(d, data, p.Time)
	}
	s.account()
}

// plainGap steps over n lost bytes of direction d.
func (s *stream) plainGap(d flow.Dir, n int) {
	if s.ignored {
		return
	}
	if s.mid() {
		s.ws.Gap(d, n)
		return
	}
	s.gap(d, n)
}

// restartMid forgets what the ciphertext made of a connection that began
// before the capture (a frame hunt in encrypted bytes, a connection
// ignored as not HTTP): its plaintext is parsed from scratch.
func (s *stream) restartMid() {
	if s.mid() {
		s.ws = nil
	}
	if s.nreq == 0 && s.nresp == 0 && s.h2 == nil && !s.upgraded {
		s.initParsers()
	}
	s.ignored, s.midDone = false, false
	s.engage()
}

// mayHunt reports whether a direction that is neither HTTP nor TLS may be
// a WebSocket session from its middle: with plaintext, when the plaintext
// began mid-connection; otherwise when the connection's start was not
// captured.
func (s *stream) mayHunt() bool {
	if st := s.pts(); st != nil {
		return st.info.MidStream
	}
	return !s.syn && !s.synack && s.tls == nil
}

// cipher takes ciphertext of a connection that has plaintext: its TLS
// records are parsed for the handshake and counted, nothing more.
func (s *stream) cipher(d flow.Dir, data []byte, t time.Time) {
	s.bytes[d] += uint64(len(data))
	if s.tls != nil {
		s.tls.Feed(d, data, t)
		s.tlsRecords()
	}
	s.account()
}

// cipherLost takes n bytes of ciphertext that were lost or cut.
func (s *stream) cipherLost(d flow.Dir, n int) {
	if s.tls != nil {
		s.tls.Gap(d)
	}
}

// unread reports, before an error response of direction d, the request
// the other direction has not finished: a proxy that refuses a header
// block (nginx's "Request Header Or Cookie Too Large") answers before it
// has read the rest, and never reads it. With keys the whole block is on
// the wire; at the proxy, only what it read.
func (s *stream) unread(d flow.Dir, status int) {
	st := s.pts()
	if st == nil || status < 400 {
		return
	}
	st.unreading = true
	if s.dir[d.Reverse()].Unread(s) {
		st.info.Unread = true
	}
	st.unreading = false
}

func (s *stream) unreading() bool { st := s.pts(); return st != nil && st.unreading }

// packetless reports whether no packet of s has come yet: plaintext
// opened it (the probes' ring was read before the capture's).
func (s *stream) packetless() bool { return !s.started[0] && !s.started[1] }

// plainH2 reports whether the plaintext says HTTP/2 before the client's
// preface came (the server's SETTINGS first).
func (s *stream) plainH2() bool { st := s.pts(); return st != nil && st.h2 }

// pts is s's plaintext state, nil when it has none.
func (s *stream) pts() *plainState {
	if !s.hasPlain {
		return nil
	}
	return s.asm.plains[s]
}

// decrypted takes what a key log decrypts, unless the connection has
// plaintext of its own.
func (s *stream) decrypted(d flow.Dir, b []byte, t time.Time) {
	if !s.hasPlain {
		s.feed(d, b, t)
	}
}

// plainEnd is the PlainInfo for ConnEnd, nil without plaintext.
func (s *stream) plainEnd() *PlainInfo {
	st := s.pts()
	if st == nil {
		return nil
	}
	if st.info.H2 {
		s.asm.stats.PlainH2++
	}
	in := st.info
	return &in
}

// h2Settings reports whether b starts with an HTTP/2 SETTINGS frame on
// stream 0 (the server's preface).
func h2Settings(b []byte) bool {
	return len(b) >= 9 && b[3] == 0x4 && binary.BigEndian.Uint32(b[5:])&0x7fffffff == 0 &&
		(uint32(b[0])<<16|uint32(b[1])<<8|uint32(b[2]))%6 == 0
}

// h2Frames reports whether b is a run of HTTP/2 frames: each header's
// type known and its length within the default maximum, the last frame
// possibly cut by the end of b, at least one header complete.
func h2Frames(b []byte) bool {
	n := 0
	for len(b) >= 9 {
		l := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if b[3] > 0x9 || l > 1<<14 || b[5]&0x80 != 0 {
			return false
		}
		n++
		if l+9 > len(b) {
			return true
		}
		b = b[9+l:]
	}
	return n > 0 && len(b) == 0
}
