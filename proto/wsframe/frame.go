package wsframe

import (
	"encoding/binary"
	"time"
	"unsafe"
)

// This file holds the RFC 6455 frame parser for one direction of an
// upgraded connection. Like the HTTP parser it is push-style: feed takes
// whatever bytes reassembly hands over, split anywhere (even inside the
// 2–14 byte frame header). Payload is skipped by length, never copied or
// unmasked, except a close frame's status code and reason. It allocates
// nothing except the reason of the first close frame (once per direction).

// WebSocket opcodes (RFC 6455 §5.2).
const (
	wsOpContinuation = 0x0
	wsOpText         = 0x1
	wsOpBinary       = 0x2
	wsOpClose        = 0x8
	wsOpPing         = 0x9
	wsOpPong         = 0xA
)

// fstate is the frame parser's position.
type fstate uint8

const (
	fsHeader  fstate = iota // collecting a frame header
	fsPayload               // skipping remain payload bytes
	fsClose                 // collecting the first close frame's payload
	fsStopped               // protocol error or lost frame boundary: ignore the rest
)

// frameParser parses the frames of one direction. The zero value is a
// server→client parser without extensions; call init.
type frameParser struct {
	// remain is the payload still to come of the current frame.
	remain uint64
	// reason receives the unmasked reason of the first close frame; it is
	// allocated at that frame's header (exactly its length, ≤ 123 bytes)
	// and handed over to wsDirStats.closeReason when the frame is complete.
	reason []byte
	// hdr holds a frame header split across feeds; n bytes of it are there.
	hdr [14]byte
	n   uint8

	state  fstate
	op     uint8 // opcode of the current frame
	fin    bool  // FIN of the current frame
	masked bool  // the current frame is masked with mask
	mask   [4]byte
	// cpos counts the close payload bytes collected; code is built from the
	// first two.
	cpos uint8
	code uint16

	fromClient bool // client→server: frames must be masked
	deflate    bool // permessage-deflate negotiated: RSV1 allowed on a message's first frame
	frag       bool // a data frame with FIN=0 was seen: continuations expected
	// mid: the direction is parsed from a frame boundary found mid-stream
	// (resync.go): lengths must be minimally encoded, and until the first
	// data frame (loose) a message may or may not be in progress.
	mid, loose bool
}

// init resets p for one direction. fromClient: the client→server
// direction (every frame must be masked, RFC 6455 §5.1); deflate:
// permessage-deflate was negotiated (RFC 7692: RSV1 marks a compressed
// message on its first frame).
func (p *frameParser) init(fromClient bool, deflate bool) {
	*p = frameParser{fromClient: fromClient, deflate: deflate}
}

// stopped reports whether p has given up on its direction.
func (p *frameParser) stopped() bool { return p.state == fsStopped }

// midFrame reports whether p is inside a frame (header or payload), i.e.
// the direction would be cut mid-frame if it ended now.
func (p *frameParser) midFrame() bool {
	return p.state == fsPayload || p.state == fsClose || p.state == fsHeader && p.n > 0
}

// wsHeaderLen is the length of the frame header whose second byte (MASK
// bit and 7-bit length) is b1.
func wsHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// feed parses as much of b as it can, at capture time t, into st. st must
// be the same for every call on p.
func (p *frameParser) feed(b []byte, t time.Time, st *wsDirStats) { p.feedPrints(b, t, st, nil) }

// feedPrints is feed recording the first frames' prints in pr, when not
// nil (resync.go). pr is an argument rather than a field: every upgraded
// connection holds two frameParsers, and Session stays within 512 bytes.
func (p *frameParser) feedPrints(b []byte, t time.Time, st *wsDirStats, pr *printLog) {
	for len(b) > 0 {
		switch p.state {
		case fsHeader:
			var h []byte
			if p.n == 0 && len(b) >= 2 {
				// Fast path: the whole header is in b.
				if need := wsHeaderLen(b[1]); len(b) >= need {
					h, b = b[:need], b[need:]
				}
			}
			if h == nil {
				if p.n < 2 {
					k := copy(p.hdr[p.n:2], b)
					p.n += uint8(k)
					b = b[k:]
					if p.n < 2 {
						return
					}
				}
				need := wsHeaderLen(p.hdr[1])
				k := copy(p.hdr[p.n:need], b)
				p.n += uint8(k)
				b = b[k:]
				if int(p.n) < need {
					return
				}
				h = p.hdr[:need]
				p.n = 0
			}
			p.header(h, t, st, pr)
		case fsPayload:
			k := min(p.remain, uint64(len(b)))
			if pr != nil {
				pr.payload(b[:k])
			}
			b = b[k:]
			p.consume(k, t, st)
		case fsClose:
			k := min(p.remain, uint64(len(b)))
			if pr != nil {
				pr.payload(b[:k])
			}
			for _, c := range b[:k] {
				if p.masked {
					c ^= p.mask[p.cpos&3]
				}
				if p.cpos < 2 {
					p.code = p.code<<8 | uint16(c)
				} else {
					p.reason[p.cpos-2] = c
				}
				p.cpos++
			}
			b = b[k:]
			p.consume(k, t, st)
		default: // fsStopped
			return
		}
	}
}

// header handles a complete frame header h.
func (p *frameParser) header(h []byte, t time.Time, st *wsDirStats, pr *printLog) {
	b0, b1 := h[0], h[1]
	fin := b0&0x80 != 0
	rsv := b0 & 0x70
	op := b0 & 0x0F
	masked := b1&0x80 != 0
	n := uint64(b1 & 0x7F)
	i := 2
	switch n {
	case 126:
		n, i = uint64(binary.BigEndian.Uint16(h[2:])), 4
	case 127:
		n, i = binary.BigEndian.Uint64(h[2:]), 10
	}
	control := op&0x8 != 0
	data := op == wsOpText || op == wsOpBinary
	var err wsProtoErr
	switch {
	case n>>63 != 0:
		err = wsErrLength64
	case op >= 0x3 && op <= 0x7 || op >= 0xB:
		err = wsErrReservedOpcode
	case control && !fin:
		err = wsErrControlFragmented
	case control && n > 125:
		err = wsErrControlTooLong
	case rsv&0x30 != 0 || rsv&0x40 != 0 && !(p.deflate && data):
		err = wsErrRSV
	case masked != p.fromClient:
		if p.fromClient {
			err = wsErrUnmasked
		} else {
			err = wsErrMasked
		}
	case op == wsOpContinuation && !p.frag && !p.loose:
		err = wsErrContinuation
	case data && p.frag && !p.loose:
		err = wsErrInterleaved
	case op == wsOpClose && n == 1:
		err = wsErrCloseOneByte
	case p.mid && (i == 4 && n < 126 || i == 10 && n <= 0xFFFF):
		err = wsErrLengthEncoding
	}
	if err != wsErrNone {
		p.fail(err, t, st)
		return
	}

	p.op, p.fin, p.masked, p.remain = op, fin, masked, n
	if masked {
		copy(p.mask[:], h[i:i+4])
	}
	p.state = fsPayload
	if op <= wsOpBinary {
		p.loose = false
	}
	if pr != nil {
		pr.start(h, n, t)
	}
	firstClose := op == wsOpClose && st.closes == 0
	st.frame(n, t)
	if masked {
		i += 4
	}
	st.noteHead(uint64(i)+n, t)
	switch op {
	case wsOpContinuation:
		st.dataFrames++
		p.frag = !fin
	case wsOpText, wsOpBinary:
		st.dataFrames++
		if op == wsOpText {
			st.text++
		} else {
			st.binary++
		}
		st.inMsg, st.msgLen = true, 0
		p.frag = !fin
	case wsOpPing:
		st.ping++
	case wsOpPong:
		st.pong++
	case wsOpClose:
		st.closes++
		if firstClose {
			// Later close frames are only counted (afterClose).
			st.closeAt = wsTimeOf(t)
			p.state, p.cpos, p.code = fsClose, 0, 0
			if n > 2 {
				p.reason = make([]byte, n-2)
			}
		}
	}
	if n == 0 {
		p.endFrame(t, st)
	}
}

// consume accounts for k payload bytes of the current frame (seen, or lost
// in a gap) and ends the frame when its payload is complete.
func (p *frameParser) consume(k uint64, t time.Time, st *wsDirStats) {
	p.remain -= k
	st.bytes += k
	if p.op <= wsOpBinary {
		st.msgLen += k
	}
	if p.remain == 0 {
		p.endFrame(t, st)
	}
}

// endFrame finishes the current frame once its payload is complete.
func (p *frameParser) endFrame(t time.Time, st *wsDirStats) {
	closing := p.state == fsClose
	p.state = fsHeader
	switch {
	case p.op <= wsOpBinary:
		if p.fin {
			st.inMsg = false
			st.maxMsg = max(st.maxMsg, st.msgLen)
		}
	case closing:
		code := uint16(1005) // no status code present (RFC 6455 §7.1.5)
		if p.cpos >= 2 {
			code = p.code
		}
		st.closeCode = code
		if len(p.reason) > 0 {
			// p.reason is never written again: hand it over without a copy.
			st.closeReason = unsafe.String(unsafe.SliceData(p.reason), len(p.reason))
			p.reason = nil
		}
		if p.cpos >= 2 && !validCloseCode(code) {
			p.fail(wsErrCloseCode, t, st)
		}
	}
}

// validCloseCode reports whether c may be sent in a close frame (RFC 6455
// §7.4, and the IANA registry for 1012–1014): 1000–1003, 1007–1014 and
// 3000–4999. 1004–1006 and 1015 are reserved for local use, the rest is
// unassigned.
func validCloseCode(c uint16) bool {
	return c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
}

// fail records the first protocol error and stops parsing.
func (p *frameParser) fail(err wsProtoErr, t time.Time, st *wsDirStats) {
	st.protoErr, st.errAt = err, wsTimeOf(t)
	p.state = fsStopped
	p.reason = nil
}

// gap tells p that n bytes of its direction were lost. Inside a payload
// with at least n bytes left it stays in step (the lost bytes count as
// payload; a close frame's code is then unknown, 0); otherwise a frame
// boundary is lost: the direction is marked degraded and parsing stops.
func (p *frameParser) gap(n int, st *wsDirStats) {
	if n <= 0 || p.state == fsStopped {
		return
	}
	if (p.state == fsPayload || p.state == fsClose) && p.remain >= uint64(n) {
		if p.state == fsClose {
			// The status code or reason is gone: the close stays recorded
			// (closes, closeAt) with code 0 and no reason.
			p.reason = nil
			p.state = fsPayload
		}
		p.consume(uint64(n), time.Time{}, st) // cannot fail: not in fsClose any more
		return
	}
	st.degraded = true
	p.state = fsStopped
	p.reason = nil
}
