// Package h2 is a push parser for one HTTP/2 connection as seen on the
// wire: both directions' frames, header blocks decoded with
// golang.org/x/net/http2/hpack, DATA handed on by stream without copying.
// It knows nothing of TCP, TLS or WebSockets; its caller feeds it each
// direction's bytes in order, named by the role of their sender
// (flow.Client, flow.Server), and says when bytes were lost.
package h2

import (
	"encoding/binary"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// Frame types (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
)

// Flags.
const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// Settings identifiers that matter here.
const (
	SettingHeaderTableSize       = 0x1
	SettingMaxFrameSize          = 0x5
	SettingEnableConnectProtocol = 0x8 // RFC 8441
)

// Preface is what a client sends first.
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Bounds. A header block larger than maxHeaderBlock or with more than
// maxFields fields is not decoded (the direction stops: its HPACK state
// can no longer be trusted); frames larger than maxFrame are refused the
// same way. These are far above what browsers and proxies send.
const (
	maxFrame        = 1<<24 - 1
	maxControl      = 16 << 10 // SETTINGS, GOAWAY debug data kept up to this
	maxHeaderBlock  = 256 << 10
	maxFields       = 256
	maxStringLen    = 16 << 10
	maxDynamicTable = 64 << 10
)

// Field is one decoded header field.
type Field = hpack.HeaderField

// Handler receives what the connection carries; from is the end that
// sent it. Slices passed to Data are only valid during the call.
type Handler interface {
	Settings(from flow.Role, s Settings, t time.Time)
	Headers(from flow.Role, stream uint32, fields []Field, endStream bool, t time.Time)
	Data(from flow.Role, stream uint32, data []byte, endStream bool, t time.Time)
	RSTStream(from flow.Role, stream uint32, code uint32, t time.Time)
	GoAway(from flow.Role, lastStream uint32, code uint32, t time.Time)
	// Stopped says a direction can no longer be parsed (bytes lost, a
	// malformed or oversized frame): why is a short phrase.
	Stopped(from flow.Role, why string)
}

// Settings is one SETTINGS frame (not an ACK): the values it carries.
type Settings struct {
	EnableConnectProtocol, HasEnableConnectProtocol bool
	HeaderTableSize                                 uint32
	HasHeaderTableSize                              bool
	MaxFrameSize                                    uint32
}

type state uint8

const (
	sPreface state = iota
	sHeader
	sPayload
	sStopped
)

// dir is one direction's parser state.
type dir struct {
	st      state
	n       int // preface bytes matched, or header bytes collected
	hdr     [9]byte
	typ     uint8
	flags   uint8
	stream  uint32
	left    uint32 // payload bytes still to come
	pad     uint32 // of those, trailing padding
	padRead bool   // the pad-length byte has been read (PADDED frames)
	prio    uint8  // priority bytes still to skip (HEADERS with PRIORITY)
	ctl     []byte // a control frame's payload being collected
	maxRecv uint32 // SETTINGS_MAX_FRAME_SIZE this direction's receiver allows

	// A header block spans HEADERS and CONTINUATION frames.
	inBlock    bool
	blockID    uint32
	blockEnd   bool // END_STREAM was on the HEADERS frame
	blockBytes int
	blockBad   bool
	fields     []Field
	dec        *hpack.Decoder
}

// Conn parses one HTTP/2 connection. Its directions are indexed by the
// role of their sender.
type Conn struct {
	d [2]dir
	h Handler
	t time.Time
}

// New returns a parser. clientPreface says whether the client direction
// starts with the connection preface (false when the capture starts later).
func New(h Handler, clientPreface bool) *Conn {
	c := &Conn{h: h}
	for i := range c.d {
		d := &c.d[i]
		d.st = sHeader
		d.maxRecv = 16384
		i := i
		d.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
			dd := &c.d[i]
			if len(dd.fields) < maxFields {
				dd.fields = append(dd.fields, f)
			} else {
				dd.blockBad = true
			}
		})
		d.dec.SetMaxStringLength(maxStringLen)
	}
	if clientPreface {
		c.d[flow.Client].st = sPreface
	}
	return c
}

// Stopped says whether the direction d sends in has stopped.
func (c *Conn) Stopped(d flow.Role) bool { return c.d[d].st == sStopped }

// Gap says n bytes d sent were lost. HPACK's dynamic table makes
// every later header block depend on the lost ones: the direction stops.
func (c *Conn) Gap(d flow.Role, n int) {
	if c.d[d].st != sStopped {
		c.stop(d, "bytes lost")
	}
}

func (c *Conn) stop(d flow.Role, why string) {
	c.d[d].st = sStopped
	c.d[d].ctl = nil
	c.d[d].fields = nil
	c.h.Stopped(d, why)
}

// Feed parses the next bytes d sent, seen at t.
func (c *Conn) Feed(d flow.Role, b []byte, t time.Time) {
	c.t = t
	s := &c.d[d]
	for len(b) > 0 {
		switch s.st {
		case sStopped:
			return
		case sPreface:
			k := min(len(b), len(Preface)-s.n)
			if string(b[:k]) != Preface[s.n:s.n+k] {
				c.stop(d, "no HTTP/2 connection preface")
				return
			}
			s.n += k
			b = b[k:]
			if s.n == len(Preface) {
				s.st, s.n = sHeader, 0
			}
		case sHeader:
			k := copy(s.hdr[s.n:], b)
			s.n += k
			b = b[k:]
			if s.n == 9 {
				s.n = 0
				c.frameHeader(d)
			}
		case sPayload:
			b = c.payload(d, b)
		}
	}
}

func (c *Conn) frameHeader(d flow.Role) {
	s := &c.d[d]
	h := s.hdr[:]
	length := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
	s.typ, s.flags = h[3], h[4]
	s.stream = binary.BigEndian.Uint32(h[5:]) & 0x7fffffff
	s.left, s.pad, s.padRead, s.prio = length, 0, false, 0
	if length > s.maxRecv && length > 16384 {
		c.stop(d, "frame larger than the peer allows")
		return
	}
	if s.inBlock && s.typ != frameContinuation {
		c.stop(d, "header block not continued")
		return
	}
	switch s.typ {
	case frameHeaders:
		if s.stream == 0 {
			c.stop(d, "HEADERS on stream 0")
			return
		}
		s.inBlock, s.blockID, s.blockEnd = true, s.stream, s.flags&flagEndStream != 0
		s.blockBytes, s.blockBad, s.fields = 0, false, s.fields[:0]
		if s.flags&flagPriority != 0 {
			s.prio = 5
		}
	case frameContinuation:
		if !s.inBlock || s.stream != s.blockID {
			c.stop(d, "CONTINUATION without HEADERS")
			return
		}
	case framePushPromise:
		// Its header block changes the HPACK table: decode, not report.
		s.inBlock, s.blockID, s.blockEnd = true, s.stream, false
		s.blockBytes, s.blockBad, s.fields = 0, true, s.fields[:0]
		s.prio = 4 // promised stream id
	case frameSettings, frameRSTStream, frameGoAway:
		s.ctl = s.ctl[:0]
	}
	s.st = sPayload
	if length == 0 {
		if s.typ == frameData {
			c.h.Data(d, s.stream, nil, s.flags&flagEndStream != 0, c.t)
		}
		c.endFrame(d)
	}
}

// padded reports whether this frame type carries the PADDED layout.
func padded(typ, flags uint8) bool {
	return flags&flagPadded != 0 && (typ == frameData || typ == frameHeaders || typ == framePushPromise)
}

func (c *Conn) payload(d flow.Role, b []byte) []byte {
	s := &c.d[d]
	if padded(s.typ, s.flags) && !s.padRead {
		s.pad = uint32(b[0])
		s.padRead = true
		s.left--
		b = b[1:]
		if s.pad > s.left {
			c.stop(d, "padding longer than the frame")
			return nil
		}
		if s.left == 0 {
			c.endFrame(d)
		}
		return b
	}
	k := uint32(len(b))
	if k > s.left {
		k = s.left
	}
	chunk := b[:k]
	rest := b[k:]
	// Split off the padding at the end of the frame.
	body := chunk
	var data uint32 // payload bytes left before the padding
	if s.left > s.pad {
		data = s.left - s.pad
	}
	if uint32(len(body)) > data {
		body = body[:data]
	}
	if s.prio > 0 {
		skip := min(int(s.prio), len(body))
		s.prio -= uint8(skip)
		body = body[skip:]
	}
	s.left -= k
	switch s.typ {
	case frameData:
		if len(body) > 0 || (s.left == 0 && s.flags&flagEndStream != 0) {
			c.h.Data(d, s.stream, body, s.left == 0 && s.flags&flagEndStream != 0, c.t)
		}
	case frameHeaders, frameContinuation, framePushPromise:
		s.blockBytes += len(body)
		if s.blockBytes > maxHeaderBlock {
			c.stop(d, "header block larger than 256 KiB")
			return nil
		}
		if len(body) > 0 {
			if _, err := s.dec.Write(body); err != nil {
				c.stop(d, "HPACK: "+err.Error())
				return nil
			}
		}
	case frameSettings, frameRSTStream, frameGoAway:
		if room := maxControl - len(s.ctl); room > 0 {
			s.ctl = append(s.ctl, body[:min(len(body), room)]...)
		}
	}
	if s.st == sStopped {
		return nil
	}
	if s.left == 0 {
		c.endFrame(d)
	}
	return rest
}

func (c *Conn) endFrame(d flow.Role) {
	s := &c.d[d]
	s.st = sHeader
	switch s.typ {
	case frameHeaders, frameContinuation, framePushPromise:
		if s.flags&flagEndHeaders == 0 {
			return
		}
		s.inBlock = false
		if err := s.dec.Close(); err != nil {
			c.stop(d, "HPACK: "+err.Error())
			return
		}
		if !s.blockBad {
			c.h.Headers(d, s.blockID, s.fields, s.blockEnd, c.t)
		}
		s.fields = s.fields[:0]
	case frameSettings:
		if s.flags&flagAck != 0 || s.stream != 0 {
			return
		}
		if len(s.ctl)%6 != 0 {
			c.stop(d, "SETTINGS length not a multiple of 6")
			return
		}
		var st Settings
		for p := s.ctl; len(p) >= 6; p = p[6:] {
			id, v := binary.BigEndian.Uint16(p), binary.BigEndian.Uint32(p[2:])
			switch id {
			case SettingEnableConnectProtocol:
				st.HasEnableConnectProtocol, st.EnableConnectProtocol = true, v == 1
			case SettingHeaderTableSize:
				st.HasHeaderTableSize, st.HeaderTableSize = true, v
				// The sender's decoder may use this much: the other
				// direction's encoder (which we mirror) may grow to it.
				c.d[d.Peer()].dec.SetAllowedMaxDynamicTableSize(min(v, maxDynamicTable))
			case SettingMaxFrameSize:
				st.MaxFrameSize = v
				if v >= 16384 && v <= maxFrame {
					c.d[d.Peer()].maxRecv = v
				}
			}
		}
		c.h.Settings(d, st, c.t)
	case frameRSTStream:
		if len(s.ctl) >= 4 {
			c.h.RSTStream(d, s.stream, binary.BigEndian.Uint32(s.ctl), c.t)
		}
	case frameGoAway:
		if len(s.ctl) >= 8 {
			c.h.GoAway(d, binary.BigEndian.Uint32(s.ctl)&0x7fffffff, binary.BigEndian.Uint32(s.ctl[4:]), c.t)
		}
	}
}
