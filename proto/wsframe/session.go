package wsframe

import (
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file holds the per-connection WebSocket session state that follows a
// 101: one frameParser (frame.go) and one wsDirStats per direction. It is a
// fixed-size value (see TestSessionStateSize): no pointers into packet
// buffers, nothing that grows with the traffic.

// wsTime is a capture timestamp in Unix nanoseconds, 0 meaning "none". It
// takes 8 bytes where a time.Time takes 24 (and holds a pointer).
type wsTime int64

func wsTimeOf(t time.Time) wsTime {
	if t.IsZero() {
		return 0
	}
	return wsTime(t.UnixNano())
}

// Time converts back; the zero wsTime gives the zero time.Time.
func (w wsTime) Time() time.Time {
	if w == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(w))
}

func (w wsTime) IsZero() bool { return w == 0 }

// wsProtoErr is the first RFC 6455 §5 violation seen in a direction.
type wsProtoErr uint8

const (
	wsErrNone              wsProtoErr = iota
	wsErrControlTooLong               // control frame payload > 125 bytes
	wsErrControlFragmented            // control frame with FIN=0
	wsErrUnmasked                     // client→server frame not masked
	wsErrMasked                       // server→client frame masked
	wsErrReservedOpcode               // opcode 3–7 or 0xB–0xF
	wsErrRSV                          // RSV bits set without a negotiated extension
	wsErrContinuation                 // continuation frame with no message in progress
	wsErrInterleaved                  // text/binary frame while a fragmented message is in progress
	wsErrCloseOneByte                 // close frame with a 1-byte payload
	wsErrCloseCode                    // close code that must not appear on the wire
	wsErrLength64                     // 64-bit payload length with the most significant bit set
	wsErrLengthEncoding               // a length in a longer form than needed (checked mid-stream only)
)

var wsProtoErrText = [...]string{
	wsErrNone:              "",
	wsErrControlTooLong:    "control frame payload longer than 125 bytes",
	wsErrControlFragmented: "fragmented control frame (FIN=0)",
	wsErrUnmasked:          "unmasked client-to-server frame",
	wsErrMasked:            "masked server-to-client frame",
	wsErrReservedOpcode:    "reserved opcode",
	wsErrRSV:               "RSV bits set without a negotiated extension",
	wsErrContinuation:      "continuation frame without a message in progress",
	wsErrInterleaved:       "new data frame inside a fragmented message",
	wsErrCloseOneByte:      "close frame with a 1-byte payload",
	wsErrCloseCode:         "invalid close code",
	wsErrLength64:          "64-bit payload length with the top bit set",
	wsErrLengthEncoding:    "payload length not minimally encoded",
}

func (e wsProtoErr) String() string {
	if int(e) < len(wsProtoErrText) {
		return wsProtoErrText[e]
	}
	return "unknown protocol error"
}

// wsDirStats is what one direction of an upgraded connection carried,
// updated by frameParser.feed and frameParser.gap.
type wsDirStats struct {
	// frames counts frame headers that passed validation (a frame that
	// raised protoErr is not counted; a close frame whose code is invalid is,
	// since its header was fine).
	frames uint64
	// dataFrames: text, binary and continuation frames.
	dataFrames uint64
	// bytes is the frame payload seen, counted as it arrives (headers
	// excluded); bytes lost in a gap inside a payload are included.
	bytes uint64
	// maxFrame is the largest declared payload length of a frame.
	maxFrame uint64
	// msgLen is the payload so far of the current data message (or of the
	// last one, once it is complete); maxMsg the largest complete message.
	msgLen, maxMsg uint64

	// Frames by opcode (text and binary count messages started: their
	// continuation frames are only in dataFrames).
	text, binary, ping, pong uint32
	// closes counts close frames; afterClose counts frames of any kind that
	// came after the first close frame (RFC 6455 §5.5.1: none should).
	closes, afterClose uint32

	// first and last are the times of the first and the latest frame header.
	first, last wsTime
	// silence is the longest time between two consecutive frame headers,
	// starting at silenceStart (the earlier frame).
	silence      time.Duration
	silenceStart wsTime

	// closeAt is when the first close frame's header arrived. closeCode is
	// its status code once its payload is complete: 1005 when it had no
	// payload, 0 while incomplete or when the payload was lost in a gap.
	closeAt     wsTime
	errAt       wsTime // when protoErr was found
	closeReason string // at most 123 bytes, allocated once per close
	closeCode   uint16
	// protoErr is the first protocol error; parsing stopped there.
	protoErr wsProtoErr
	// inMsg: a data message has started and its final frame has not been
	// completely received (fragmented, or one frame cut short).
	inMsg bool
	// degraded: a gap lost a frame boundary; parsing stopped.
	degraded bool
	// headAt, headSize: the first frames' arrival and wire size (header
	// included, capped at 4 GiB), which pair a relayed leg with an opaque
	// TLS leg by record sizes.
	headAt   [HeadFrames]wsTime
	headSize [HeadFrames]uint32
}

// HeadFrames is how many first frames per direction DirSummary.Head keeps.
const HeadFrames = 3

// noteHead keeps a frame's wire size while head has room.
func (s *wsDirStats) noteHead(size uint64, t time.Time) {
	if k := s.frames - 1; k < HeadFrames {
		s.headAt[k], s.headSize[k] = wsTimeOf(t), uint32(min(size, 1<<32-1))
	}
}

// closed reports whether a close frame was seen.
func (s *wsDirStats) closed() bool { return s.closes > 0 }

// controlFrames is the number of ping, pong and close frames.
func (s *wsDirStats) controlFrames() uint64 {
	return uint64(s.ping) + uint64(s.pong) + uint64(s.closes)
}

// frame records a valid frame header of payload length n at t.
func (s *wsDirStats) frame(n uint64, t time.Time) {
	s.frames++
	if s.closes > 0 {
		s.afterClose++
	}
	if n > s.maxFrame {
		s.maxFrame = n
	}
	w := wsTimeOf(t)
	switch {
	case s.first == 0:
		s.first, s.last = w, w
	case w > s.last:
		if d := time.Duration(w - s.last); d > s.silence {
			s.silence, s.silenceStart = d, s.last
		}
		s.last = w
	}
}

// wsDir is one direction of an upgraded connection.
type wsDir struct {
	p  frameParser
	st wsDirStats
}

// Session is the WebSocket state a connection carries after a 101: one
// frame parser and its figures per direction, indexed by the caller's
// flow.Dir.
type Session struct {
	dir [2]wsDir
	r   *resync // hunting for frames: the start was not captured (resync.go)
}

// Init prepares both directions; client is the direction the client
// sends in, deflate whether the 101 accepted permessage-deflate.
func (s *Session) Init(client flow.Dir, deflate bool) {
	for d := range s.dir {
		s.dir[d] = wsDir{}
		s.dir[d].p.init(flow.Dir(d) == client, deflate)
	}
}

// Feed runs bytes of direction d, captured at t, through its frame parser.
func (s *Session) Feed(d flow.Dir, b []byte, t time.Time) {
	if s.r != nil {
		s.r.feed(s, d, b, t)
		return
	}
	s.dir[d].p.feed(b, t, &s.dir[d].st)
}

// Gap tells direction d that n bytes were lost.
func (s *Session) Gap(d flow.Dir, n int) {
	if s.r != nil {
		s.r.gap(s, d, n)
		return
	}
	s.dir[d].p.gap(n, &s.dir[d].st)
}

// DeflateNegotiated reports whether the Sec-WebSocket-Extensions values of
// a 101 response accepted permessage-deflate (the only extension in common
// use that defines RSV1).
func DeflateNegotiated(extensions []string) bool {
	for _, v := range extensions {
		for _, ext := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			if strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
				return true
			}
		}
	}
	return false
}

// Summary copies the figures out; client is the direction the client
// sends in.
func (s *Session) Summary(client flow.Dir) *Summary {
	sum := &Summary{C2S: s.dir[client].st.export(), S2C: s.dir[client.Reverse()].st.export()}
	if s.r != nil {
		s.midSummary(sum, client)
	}
	return sum
}

func (s *wsDirStats) export() DirSummary {
	d := DirSummary{Frames: s.frames, DataFrames: s.dataFrames, Bytes: s.bytes, MaxFrame: s.maxFrame, MaxMessage: s.maxMsg,
		Pings: s.ping, Pongs: s.pong, First: s.first.Time(), Last: s.last.Time(), LongestSilence: s.silence,
		SilenceStart: s.silenceStart.Time(), CloseAt: s.closeAt.Time(), CloseCode: s.closeCode, CloseReason: s.closeReason,
		FramesAfterClose: s.afterClose, ErrorAt: s.errAt.Time(), InMessage: s.inMsg, Degraded: s.degraded}
	if s.protoErr != 0 {
		d.ProtocolError = s.protoErr.String()
	}
	for i, n := range s.headSize {
		d.Head[i] = FrameMark{At: s.headAt[i].Time(), Size: uint64(n)}
	}
	if s.inMsg {
		d.MessageLen = s.msgLen
	}
	return d
}

// Summary is what the two directions of an upgraded connection carried.
type Summary struct {
	C2S, S2C DirSummary // client→server, server→client
	// MidStream: the handshake was not captured; the frames were found by
	// resynchronising (Resync) and the figures start there.
	MidStream bool
}

// DirSummary sums up one direction of WebSocket frames (RFC 6455).
type DirSummary struct {
	Frames, DataFrames uint64
	Bytes              uint64 // frame payload
	MaxFrame           uint64 // largest declared frame payload
	MaxMessage         uint64 // largest complete message
	Pings, Pongs       uint32
	First, Last        time.Time // first and latest frame
	LongestSilence     time.Duration
	SilenceStart       time.Time
	CloseAt            time.Time // first close frame; zero: none
	CloseCode          uint16    // 1005: a close frame without a code; 0: incomplete
	CloseReason        string
	FramesAfterClose   uint32
	ProtocolError      string // the first violation, parsing stopped there
	ErrorAt            time.Time
	InMessage          bool   // a data message was incomplete at the end
	MessageLen         uint64 // its bytes so far
	Degraded           bool   // a gap lost a frame boundary
	// Head: the first frames (Size 0: none), wire size with the header.
	Head [HeadFrames]FrameMark
	// Prints identify the first frames (MaxPrints) of a direction found
	// mid-stream, for pairing the legs of a proxy; nil otherwise.
	Prints []Print
}

// FrameMark is one frame's arrival and wire size.
type FrameMark struct {
	At   time.Time
	Size uint64
}
