package wsframe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Frame bits for wsFrame's b0.
const (
	bFIN  = 0x80
	bRSV1 = 0x40
	bRSV2 = 0x20
	bRSV3 = 0x10
)

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// wsFrame builds one frame: b0 is FIN|RSV|opcode; masked frames use
// testKey and mask the payload. The length uses the shortest encoding.
func wsFrame(b0 byte, masked bool, payload []byte) []byte {
	return wsFrameLen(b0, masked, uint64(len(payload)), -1, payload)
}

// wsFrameLen builds a frame header declaring length n in the given
// encoding (7, 16 or 64 bits; -1 for the shortest) followed by payload
// (which may be shorter than n: the rest of the frame is not included).
func wsFrameLen(b0 byte, masked bool, n uint64, enc int, payload []byte) []byte {
	if enc < 0 {
		switch {
		case n <= 125:
			enc = 7
		case n <= 0xFFFF:
			enc = 16
		default:
			enc = 64
		}
	}
	var m byte
	if masked {
		m = 0x80
	}
	out := []byte{b0}
	switch enc {
	case 7:
		out = append(out, m|byte(n))
	case 16:
		out = append(out, m|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, n)
	}
	if masked {
		out = append(out, testKey[:]...)
		for i, c := range payload {
			out = append(out, c^testKey[i&3])
		}
		return out
	}
	return append(out, payload...)
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

var tBase = time.Date(2025, 11, 21, 13, 0, 0, 0, time.UTC)

// frameCase is one table entry: bytes of one direction and what the
// parser must make of them.
type frameCase struct {
	name       string
	fromClient bool
	deflate    bool
	in         []byte
	want       wantStats
}

// wantStats is the part of wsDirStats a case states; times are checked in
// TestFrameTimes.
type wantStats struct {
	frames, dataFrames, bytes, maxFrame, msgLen, maxMsg uint64
	text, binary, ping, pong, closes, afterClose        uint32
	closeCode                                           uint16
	closeReason                                         string
	protoErr                                            wsProtoErr
	inMsg, degraded                                     bool
}

func summarize(s *wsDirStats) wantStats {
	return wantStats{s.frames, s.dataFrames, s.bytes, s.maxFrame, s.msgLen, s.maxMsg,
		s.text, s.binary, s.ping, s.pong, s.closes, s.afterClose,
		s.closeCode, s.closeReason, s.protoErr, s.inMsg, s.degraded}
}

func frameCases() []frameCase {
	hello := []byte("hello")
	b200 := bytes.Repeat([]byte{0xAB}, 200)
	b70k := bytes.Repeat([]byte{0xCD}, 70000)
	reason123 := strings.Repeat("r", 123)
	cs := []frameCase{
		{name: "server text", in: wsFrame(bFIN|wsOpText, false, hello),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 5, maxFrame: 5, msgLen: 5, maxMsg: 5, text: 1}},
		{name: "client masked text", fromClient: true, in: wsFrame(bFIN|wsOpText, true, hello),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 5, maxFrame: 5, msgLen: 5, maxMsg: 5, text: 1}},
		{name: "empty frames", fromClient: true,
			in:   cat(wsFrame(bFIN|wsOpText, true, nil), wsFrame(bFIN|wsOpPing, true, nil), wsFrame(bFIN|wsOpPong, true, nil)),
			want: wantStats{frames: 3, dataFrames: 1, text: 1, ping: 1, pong: 1}},
		{name: "16-bit length masked", fromClient: true, in: wsFrame(bFIN|wsOpBinary, true, b200),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 200, maxFrame: 200, msgLen: 200, maxMsg: 200, binary: 1}},
		{name: "16-bit length unmasked", in: wsFrame(bFIN|wsOpBinary, false, b200),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 200, maxFrame: 200, msgLen: 200, maxMsg: 200, binary: 1}},
		{name: "64-bit length unmasked", in: wsFrame(bFIN|wsOpBinary, false, b70k),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 70000, maxFrame: 70000, msgLen: 70000, maxMsg: 70000, binary: 1}},
		{name: "64-bit length masked", fromClient: true, in: wsFrame(bFIN|wsOpBinary, true, b70k),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 70000, maxFrame: 70000, msgLen: 70000, maxMsg: 70000, binary: 1}},
		{name: "non-minimal length encodings", // legal enough: not one of the errors we report
			in:   cat(wsFrameLen(bFIN|wsOpText, false, 5, 16, hello), wsFrameLen(bFIN|wsOpText, false, 5, 64, hello)),
			want: wantStats{frames: 2, dataFrames: 2, bytes: 10, maxFrame: 5, msgLen: 5, maxMsg: 5, text: 2}},
		{name: "fragmented with interleaved ping", fromClient: true,
			in: cat(wsFrame(wsOpText, true, []byte("ab")), wsFrame(bFIN|wsOpPing, true, []byte("p")),
				wsFrame(wsOpContinuation, true, []byte("cd")), wsFrame(bFIN|wsOpPong, true, nil),
				wsFrame(bFIN|wsOpContinuation, true, []byte("efg")), wsFrame(bFIN|wsOpBinary, true, []byte("z"))),
			want: wantStats{frames: 6, dataFrames: 4, bytes: 9, maxFrame: 3, msgLen: 1, maxMsg: 7, text: 1, binary: 1, ping: 1, pong: 1}},
		{name: "fragmented message cut short",
			in:   cat(wsFrame(wsOpBinary, false, b200), wsFrame(wsOpContinuation, false, hello)),
			want: wantStats{frames: 2, dataFrames: 2, bytes: 205, maxFrame: 200, msgLen: 205, binary: 1, inMsg: true}},
		{name: "single frame cut short",
			in:   wsFrameLen(bFIN|wsOpBinary, false, 1<<20, -1, b200),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 200, maxFrame: 1 << 20, msgLen: 200, binary: 1, inMsg: true}},
		{name: "close masked with reason", fromClient: true,
			in:   wsFrame(bFIN|wsOpClose, true, closePayload(1000, "bye")),
			want: wantStats{frames: 1, bytes: 5, maxFrame: 5, closes: 1, closeCode: 1000, closeReason: "bye"}},
		{name: "close unmasked with reason",
			in:   wsFrame(bFIN|wsOpClose, false, closePayload(4000, "going away: test")),
			want: wantStats{frames: 1, bytes: 18, maxFrame: 18, closes: 1, closeCode: 4000, closeReason: "going away: test"}},
		{name: "close code only", fromClient: true,
			in:   wsFrame(bFIN|wsOpClose, true, closePayload(1001, "")),
			want: wantStats{frames: 1, bytes: 2, maxFrame: 2, closes: 1, closeCode: 1001}},
		{name: "close without payload",
			in:   wsFrame(bFIN|wsOpClose, false, nil),
			want: wantStats{frames: 1, closes: 1, closeCode: 1005}},
		{name: "close with 123-byte reason masked", fromClient: true,
			in:   wsFrame(bFIN|wsOpClose, true, closePayload(1009, reason123)),
			want: wantStats{frames: 1, bytes: 125, maxFrame: 125, closes: 1, closeCode: 1009, closeReason: reason123}},
		{name: "close cut short",
			in:   wsFrame(bFIN|wsOpClose, false, closePayload(1000, "bye"))[:5],
			want: wantStats{frames: 1, bytes: 3, maxFrame: 5, closes: 1}},
		{name: "frames after close",
			in: cat(wsFrame(bFIN|wsOpText, false, hello), wsFrame(bFIN|wsOpClose, false, closePayload(1000, "")),
				wsFrame(bFIN|wsOpText, false, hello), wsFrame(bFIN|wsOpClose, false, closePayload(1002, "again"))),
			want: wantStats{frames: 4, dataFrames: 2, bytes: 19, maxFrame: 7, msgLen: 5, maxMsg: 5, text: 2, closes: 2, afterClose: 2, closeCode: 1000}},
		{name: "deflate RSV1 on first frame", fromClient: true, deflate: true,
			in: cat(wsFrame(bRSV1|wsOpText, true, []byte("xx")), wsFrame(bFIN|wsOpContinuation, true, []byte("yy")),
				wsFrame(bFIN|bRSV1|wsOpBinary, true, hello), wsFrame(bFIN|wsOpText, true, hello)),
			want: wantStats{frames: 4, dataFrames: 4, bytes: 14, maxFrame: 5, msgLen: 5, maxMsg: 5, text: 2, binary: 1}},
		{name: "valid frames after error are ignored",
			in:   cat(wsFrame(bFIN|wsOpText, false, hello), wsFrame(bFIN|0x3, false, nil), wsFrame(bFIN|wsOpText, false, hello)),
			want: wantStats{frames: 1, dataFrames: 1, bytes: 5, maxFrame: 5, msgLen: 5, maxMsg: 5, text: 1, protoErr: wsErrReservedOpcode}},
	}

	// Protocol errors; each after one good frame so that it is not the
	// first thing seen.
	good := wsFrame(bFIN|wsOpText, false, hello)
	goodC := wsFrame(bFIN|wsOpText, true, hello)
	after := wantStats{frames: 1, dataFrames: 1, bytes: 5, maxFrame: 5, msgLen: 5, maxMsg: 5, text: 1}
	bad := func(name string, fromClient, deflate bool, frame []byte, err wsProtoErr) frameCase {
		w := after
		w.protoErr = err
		g := good
		if fromClient {
			g = goodC
		}
		return frameCase{name: name, fromClient: fromClient, deflate: deflate, in: cat(g, frame, g), want: w}
	}
	p126 := bytes.Repeat([]byte{1}, 126)
	cs = append(cs,
		bad("control payload > 125 (16-bit)", false, false, wsFrame(bFIN|wsOpPing, false, p126), wsErrControlTooLong),
		bad("close payload of 126 bytes", true, false, wsFrame(bFIN|wsOpClose, true, p126), wsErrControlTooLong),
		bad("control payload > 125 (64-bit)", false, false, wsFrameLen(bFIN|wsOpPong, false, 200, 64, nil), wsErrControlTooLong),
		bad("control frame FIN=0", false, false, wsFrame(wsOpPing, false, nil), wsErrControlFragmented),
		bad("close frame FIN=0", true, false, wsFrame(wsOpClose, true, closePayload(1000, "")), wsErrControlFragmented),
		bad("unmasked client frame", true, false, wsFrame(bFIN|wsOpText, false, hello), wsErrUnmasked),
		bad("masked server frame", false, false, wsFrame(bFIN|wsOpText, true, hello), wsErrMasked),
		bad("reserved opcode 3", false, false, wsFrame(bFIN|0x3, false, nil), wsErrReservedOpcode),
		bad("reserved opcode 7", true, false, wsFrame(bFIN|0x7, true, hello), wsErrReservedOpcode),
		bad("reserved opcode 0xB", false, false, wsFrame(bFIN|0xB, false, nil), wsErrReservedOpcode),
		bad("reserved opcode 0xF", false, false, wsFrame(bFIN|0xF, false, nil), wsErrReservedOpcode),
		bad("RSV1 without deflate", false, false, wsFrame(bFIN|bRSV1|wsOpText, false, hello), wsErrRSV),
		bad("RSV2 with deflate", false, true, wsFrame(bFIN|bRSV2|wsOpText, false, hello), wsErrRSV),
		bad("RSV3 with deflate", true, true, wsFrame(bFIN|bRSV3|wsOpBinary, true, hello), wsErrRSV),
		bad("RSV1 on ping with deflate", false, true, wsFrame(bFIN|bRSV1|wsOpPing, false, nil), wsErrRSV),
		bad("RSV1 on continuation with deflate", false, true,
			cat(wsFrame(wsOpText, false, nil), wsFrame(bFIN|bRSV1|wsOpContinuation, false, hello)), wsErrRSV),
		bad("continuation without message", false, false, wsFrame(bFIN|wsOpContinuation, false, hello), wsErrContinuation),
		bad("text inside fragmented message", true, false,
			cat(wsFrame(wsOpBinary, true, hello), wsFrame(bFIN|wsOpText, true, hello)), wsErrInterleaved),
		bad("close with 1-byte payload", false, false, wsFrame(bFIN|wsOpClose, false, []byte{3}), wsErrCloseOneByte),
		bad("64-bit length with top bit", false, false, wsFrameLen(bFIN|wsOpBinary, false, 1<<63, 64, nil), wsErrLength64),
		bad("64-bit length all ones", true, false, wsFrameLen(bFIN|wsOpBinary, true, ^uint64(0), 64, nil), wsErrLength64),
	)
	// The interleaved/RSV-on-continuation cases carry one more good data frame
	// before the error.
	for i := range cs {
		switch cs[i].name {
		case "RSV1 on continuation with deflate":
			cs[i].want = wantStats{frames: 2, dataFrames: 2, bytes: 5, maxFrame: 5, maxMsg: 5, text: 2, inMsg: true, protoErr: wsErrRSV}
		case "text inside fragmented message":
			cs[i].want = wantStats{frames: 2, dataFrames: 2, bytes: 10, maxFrame: 5, msgLen: 5, maxMsg: 5, text: 1, binary: 1, inMsg: true, protoErr: wsErrInterleaved}
		}
	}

	// Close codes: valid ones are recorded; invalid ones too, with the error.
	for _, c := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999} {
		cs = append(cs, frameCase{name: fmt.Sprintf("close code %d", c), fromClient: c%2 == 0,
			in:   wsFrame(bFIN|wsOpClose, c%2 == 0, closePayload(c, "x")),
			want: wantStats{frames: 1, bytes: 3, maxFrame: 3, closes: 1, closeCode: c, closeReason: "x"}})
	}
	for _, c := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		cs = append(cs, frameCase{name: fmt.Sprintf("bad close code %d", c), fromClient: c%2 == 1,
			in:   cat(wsFrame(bFIN|wsOpClose, c%2 == 1, closePayload(c, "")), wsFrame(bFIN|wsOpText, c%2 == 1, hello)),
			want: wantStats{frames: 1, bytes: 2, maxFrame: 2, closes: 1, closeCode: c, protoErr: wsErrCloseCode}})
	}
	return cs
}

// runFrames feeds the pieces in order, all at time t.
func runFrames(fromClient, deflate bool, t time.Time, pieces ...[]byte) (frameParser, wsDirStats) {
	var p frameParser
	var st wsDirStats
	p.init(fromClient, deflate)
	for _, b := range pieces {
		p.feed(b, t, &st)
	}
	return p, st
}

// sameParser compares two parsers' states; header buffer bytes past n are
// leftovers of earlier split headers and do not count.
func sameParser(a, b *frameParser) bool {
	x, y := *a, *b
	clear(x.hdr[x.n:])
	clear(y.hdr[y.n:])
	return reflect.DeepEqual(x, y)
}

func TestFrameParser(t *testing.T) {
	for _, c := range frameCases() {
		t.Run(c.name, func(t *testing.T) {
			pw, whole := runFrames(c.fromClient, c.deflate, tBase, c.in)
			if got := summarize(&whole); got != c.want {
				t.Fatalf("whole:\n got %+v\nwant %+v", got, c.want)
			}
			if whole.protoErr != wsErrNone && whole.errAt != wsTimeOf(tBase) {
				t.Errorf("errAt = %v", whole.errAt.Time())
			}
			if whole.frames > 0 && (whole.first != wsTimeOf(tBase) || whole.last != wsTimeOf(tBase)) {
				t.Errorf("first/last = %v/%v", whole.first.Time(), whole.last.Time())
			}
			if whole.closes > 0 && whole.closeAt != wsTimeOf(tBase) {
				t.Errorf("closeAt = %v", whole.closeAt.Time())
			}
			for i := 0; i <= len(c.in); i++ {
				p, st := runFrames(c.fromClient, c.deflate, tBase, c.in[:i], c.in[i:])
				if st != whole || !sameParser(&p, &pw) {
					t.Fatalf("split at %d:\n got %+v\nwant %+v", i, st, whole)
				}
			}
			var p frameParser
			var st wsDirStats
			p.init(c.fromClient, c.deflate)
			for i := range c.in {
				p.feed(c.in[i:i+1], tBase, &st)
			}
			if st != whole || !sameParser(&p, &pw) {
				t.Fatalf("byte by byte:\n got %+v\nwant %+v", st, whole)
			}
		})
	}
}

// Three-piece splits of a multi-frame stream: every pair of cut points.
func TestFrameParserThreePieces(t *testing.T) {
	in := cat(wsFrame(wsOpText, true, []byte("ab")), wsFrame(bFIN|wsOpPing, true, []byte("p")),
		wsFrame(bFIN|wsOpContinuation, true, []byte("cd")),
		wsFrame(bFIN|wsOpBinary, true, bytes.Repeat([]byte{7}, 130)),
		wsFrame(bFIN|wsOpClose, true, closePayload(1000, "bye")))
	pw, whole := runFrames(true, false, tBase, in)
	if whole.frames != 5 || whole.closeCode != 1000 || whole.closeReason != "bye" || whole.protoErr != 0 {
		t.Fatalf("whole: %+v", whole)
	}
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			p, st := runFrames(true, false, tBase, in[:i], in[i:j], in[j:])
			if st != whole || !sameParser(&p, &pw) {
				t.Fatalf("split at %d,%d:\n got %+v\nwant %+v", i, j, st, whole)
			}
		}
	}
}

func TestFrameTimes(t *testing.T) {
	at := func(s float64) time.Time { return tBase.Add(time.Duration(s * float64(time.Second))) }
	var p frameParser
	var st wsDirStats
	p.init(false, false)
	p.feed(wsFrame(bFIN|wsOpText, false, []byte("a")), at(1), &st)
	p.feed(wsFrame(bFIN|wsOpText, false, []byte("b")), at(2), &st)
	big := wsFrame(bFIN|wsOpBinary, false, bytes.Repeat([]byte{1}, 1000))
	p.feed(big[:10], at(7), &st) // header at 7 s: 5 s of silence from 2 s
	p.feed(big[10:], at(8), &st) // payload only: no frame header
	p.feed(wsFrame(bFIN|wsOpPing, false, nil), at(9), &st)
	p.feed(wsFrame(bFIN|wsOpPing, false, nil), at(8.5), &st) // time going backwards: ignored for timing
	cl := wsFrame(bFIN|wsOpClose, false, closePayload(1001, "gone"))
	p.feed(cl[:3], at(10), &st)
	p.feed(cl[3:], at(11), &st)
	p.feed(wsFrame(bFIN|0xC, false, nil), at(12), &st)
	want := wsDirStats{frames: 6, dataFrames: 3, bytes: 1008, maxFrame: 1000, msgLen: 1000, maxMsg: 1000,
		text: 2, binary: 1, ping: 2, closes: 1,
		first: wsTimeOf(at(1)), last: wsTimeOf(at(10)), silence: 5 * time.Second, silenceStart: wsTimeOf(at(2)),
		closeAt: wsTimeOf(at(10)), closeReason: "gone", closeCode: 1001,
		protoErr: wsErrReservedOpcode, errAt: wsTimeOf(at(12)),
		headAt: [HeadFrames]wsTime{wsTimeOf(at(1)), wsTimeOf(at(2)), wsTimeOf(at(7))}, headSize: [HeadFrames]uint32{3, 3, 1004}}
	if st != want {
		t.Fatalf("\n got %+v\nwant %+v", st, want)
	}
	if !st.closed() || st.controlFrames() != 3 {
		t.Fatalf("closed %v control %d", st.closed(), st.controlFrames())
	}
	if got := st.first.Time(); !got.Equal(at(1)) {
		t.Fatalf("first.Time() = %v", got)
	}
	if !(wsTime(0)).Time().IsZero() || wsTimeOf(time.Time{}) != 0 {
		t.Fatal("zero wsTime does not round-trip")
	}
}

func TestFrameGap(t *testing.T) {
	payload := bytes.Repeat([]byte{9}, 1000)
	f := wsFrame(bFIN|wsOpBinary, true, payload)
	next := wsFrame(bFIN|wsOpText, true, []byte("next"))
	hdr := len(f) - len(payload)

	t.Run("inside payload stays in sync", func(t *testing.T) {
		var p frameParser
		var st wsDirStats
		p.init(true, false)
		p.feed(f[:hdr+100], tBase, &st)
		p.gap(500, &st)
		p.feed(f[hdr+600:], tBase, &st)
		p.feed(next, tBase, &st)
		if st.frames != 2 || st.bytes != 1004 || st.degraded || st.protoErr != 0 || st.inMsg || st.maxMsg != 1000 {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("exactly the rest of the payload", func(t *testing.T) {
		var p frameParser
		var st wsDirStats
		p.init(true, false)
		p.feed(f[:hdr+100], tBase, &st)
		p.gap(900, &st)
		if p.midFrame() {
			t.Fatal("still mid-frame after the payload's end was lost")
		}
		p.feed(next, tBase, &st)
		if st.frames != 2 || st.bytes != 1004 || st.degraded {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("past the payload degrades", func(t *testing.T) {
		var p frameParser
		var st wsDirStats
		p.init(true, false)
		p.feed(f[:hdr+100], tBase, &st)
		p.gap(901, &st)
		p.feed(next, tBase, &st)
		if !st.degraded || st.frames != 1 || st.bytes != 100 || !p.stopped() {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("at a frame boundary degrades", func(t *testing.T) {
		var p frameParser
		var st wsDirStats
		p.init(true, false)
		p.feed(f, tBase, &st)
		p.gap(1, &st)
		p.feed(next, tBase, &st)
		if !st.degraded || st.frames != 1 {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("inside a header degrades", func(t *testing.T) {
		var p frameParser
		var st wsDirStats
		p.init(true, false)
		p.feed(f[:3], tBase, &st)
		p.gap(2, &st)
		if !st.degraded || st.frames != 0 {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("inside a close payload loses the code only", func(t *testing.T) {
		var p frameParser
		var st wsDirStats
		p.init(false, false)
		cl := wsFrame(bFIN|wsOpClose, false, closePayload(1000, "bye"))
		p.feed(cl[:3], tBase, &st)
		p.gap(2, &st)
		p.feed(cl[5:], tBase, &st)
		p.feed(wsFrame(bFIN|wsOpPing, false, nil), tBase, &st)
		if st.degraded || st.closes != 1 || st.closeCode != 0 || st.closeReason != "" || st.frames != 2 || st.afterClose != 1 || st.bytes != 5 {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("after an error nothing changes", func(t *testing.T) {
		var p frameParser
		var st wsDirStats
		p.init(false, false)
		p.feed(wsFrame(bFIN|0x3, false, nil), tBase, &st)
		p.gap(10, &st)
		if st.degraded || st.protoErr != wsErrReservedOpcode {
			t.Fatalf("%+v", st)
		}
	})
}

// A 2^63-1 byte frame is skipped by count; 2^63 is an error. Neither
// allocates or panics.
func TestFrameHugeLength(t *testing.T) {
	const max63 = 1<<63 - 1
	hdr := wsFrameLen(bFIN|wsOpBinary, true, max63, 64, nil)
	chunk := make([]byte, 64<<10)
	var p frameParser
	var st wsDirStats
	allocs := testing.AllocsPerRun(100, func() {
		p.init(true, false)
		st = wsDirStats{}
		p.feed(hdr, tBase, &st)
		for i := 0; i < 16; i++ {
			p.feed(chunk, tBase, &st)
		}
		p.gap(1<<62, &st)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run", allocs)
	}
	if st.maxFrame != max63 || st.bytes != 16<<16+1<<62 || p.remain != max63-(16<<16+1<<62) || !st.inMsg || st.protoErr != 0 || st.degraded {
		t.Fatalf("%+v remain %d", st, p.remain)
	}
	p.gap(1<<62, &st) // more than remains: degraded
	if !st.degraded {
		t.Fatalf("%+v", st)
	}

	for _, n := range []uint64{1 << 63, ^uint64(0)} {
		in := cat(wsFrameLen(bFIN|wsOpBinary, true, n, 64, nil), chunk)
		allocs = testing.AllocsPerRun(100, func() {
			p.init(true, false)
			st = wsDirStats{}
			p.feed(in, tBase, &st)
		})
		if allocs != 0 || st.protoErr != wsErrLength64 || st.frames != 0 || st.bytes != 0 {
			t.Fatalf("length %#x: %v allocs, %+v", n, allocs, st)
		}
	}
}

// Only the first close frame's reason allocates; a stream of data and
// control frames does not.
func TestFrameAllocs(t *testing.T) {
	stream := frameStream(true, 64, 32)
	var p frameParser
	var st wsDirStats
	p.init(true, false)
	allocs := testing.AllocsPerRun(100, func() {
		for i := 0; i < len(stream); i += 1448 {
			p.feed(stream[i:min(i+1448, len(stream))], tBase, &st)
		}
	})
	if allocs != 0 || st.protoErr != 0 {
		t.Fatalf("%v allocs, %+v", allocs, st)
	}
	cl := wsFrame(bFIN|wsOpClose, true, closePayload(1000, "bye"))
	allocs = testing.AllocsPerRun(100, func() {
		p.init(true, false)
		st = wsDirStats{}
		p.feed(cl, tBase, &st)
	})
	if allocs != 1 || st.closeReason != "bye" {
		t.Fatalf("close: %v allocs, %+v", allocs, st)
	}
}

func TestDeflateNegotiated(t *testing.T) {
	for _, c := range []struct {
		h    []string
		want bool
	}{
		{nil, false},
		{[]string{"permessage-deflate"}, true},
		{[]string{"x-foo, Permessage-Deflate; client_max_window_bits=15"}, true},
		{[]string{"x-webkit-deflate-frame"}, false},
	} {
		if got := DeflateNegotiated(c.h); got != c.want {
			t.Errorf("%v: %v", c.h, got)
		}
	}
}

// frameStream is n frames of size bytes payload, masked or not, each a
// complete text message.
func frameStream(masked bool, n, size int) []byte {
	payload := bytes.Repeat([]byte{'x'}, size)
	f := wsFrame(bFIN|wsOpText, masked, payload)
	return bytes.Repeat(f, n)
}

// FuzzFrameParser feeds arbitrary bytes whole and in fuzzer-chosen pieces
// (optionally with a gap after the first piece) and checks that nothing
// panics, that the pieces give the same result as the whole, and that the
// stats are consistent.
func FuzzFrameParser(f *testing.F) {
	for i, c := range frameCases() {
		// Large seeds make the fuzzer spend its time minimizing: keep the
		// first KiB (a frame cut short is a case too).
		if len(c.in) > 1024 {
			c.in = c.in[:1024]
		}
		var flags byte
		if c.fromClient {
			flags |= 1
		}
		if c.deflate {
			flags |= 2
		}
		f.Add(c.in, []byte{byte(i), 1, 3}, flags)
		f.Add(c.in, []byte{}, flags|4|byte(i)<<3)
	}
	f.Add(frameStream(true, 4, 200), []byte{7, 0, 255}, byte(1|4|40))
	f.Fuzz(fuzzFrameOnce)
}

func fuzzFrameOnce(t *testing.T, data, cuts []byte, flags byte) {
	{
		fromClient, deflate, withGap := flags&1 != 0, flags&2 != 0, flags&4 != 0
		// pieces: lengths cuts[i]+1, the rest in one piece.
		pieces := func(fn func([]byte)) {
			rest := data
			for _, c := range cuts {
				if len(rest) == 0 {
					break
				}
				k := min(int(c)+1, len(rest))
				fn(rest[:k])
				rest = rest[k:]
			}
			if len(rest) > 0 {
				fn(rest)
			}
		}
		if !withGap {
			pw, whole := runFrames(fromClient, deflate, tBase, data)
			checkStats(t, &pw, &whole, uint64(len(data)))
			var p frameParser
			var st wsDirStats
			p.init(fromClient, deflate)
			pieces(func(b []byte) { p.feed(b, tBase, &st) })
			if st != whole || !sameParser(&p, &pw) {
				t.Fatalf("pieces differ from whole:\n got %+v\nwant %+v", st, whole)
			}
			return
		}
		gapLen := int(flags>>3) + 1
		var p frameParser
		var st wsDirStats
		p.init(fromClient, deflate)
		first := true
		pieces(func(b []byte) {
			p.feed(b, tBase, &st)
			if first {
				p.gap(gapLen, &st)
				first = false
			}
		})
		checkStats(t, &p, &st, uint64(len(data)+gapLen))
	}
}

func checkStats(t *testing.T, p *frameParser, st *wsDirStats, maxBytes uint64) {
	t.Helper()
	switch {
	case st.bytes > maxBytes:
		t.Fatalf("bytes %d > input %d", st.bytes, maxBytes)
	case st.frames != st.dataFrames+st.controlFrames():
		t.Fatalf("frames %d != data %d + control %d", st.frames, st.dataFrames, st.controlFrames())
	case uint64(st.text)+uint64(st.binary) > st.dataFrames:
		t.Fatalf("text+binary > dataFrames: %+v", st)
	case uint64(st.afterClose) > st.frames || st.closes > 0 && st.afterClose < st.closes-1:
		t.Fatalf("afterClose %d, closes %d, frames %d", st.afterClose, st.closes, st.frames)
	case st.msgLen > st.bytes || st.maxMsg > st.bytes:
		t.Fatalf("msgLen %d maxMsg %d > bytes %d", st.msgLen, st.maxMsg, st.bytes)
	case st.frames > 0 && st.maxFrame>>63 != 0:
		t.Fatalf("maxFrame %#x", st.maxFrame)
	case (st.protoErr != 0) != (st.errAt != 0):
		t.Fatalf("protoErr %v errAt %v", st.protoErr, st.errAt)
	case (st.protoErr != 0 || st.degraded) != p.stopped():
		t.Fatalf("stopped %v with %+v", p.stopped(), st)
	case st.protoErr != 0 && st.degraded:
		t.Fatalf("both protoErr and degraded")
	case st.closeCode != 0 && st.closes == 0, st.closes > 0 && st.closeAt == 0:
		t.Fatalf("close code %d, closes %d", st.closeCode, st.closes)
	case len(st.closeReason) > 123, st.closeReason != "" && st.closeCode == 0 && st.protoErr != wsErrCloseCode:
		t.Fatalf("close reason %q code %d", st.closeReason, st.closeCode)
	case st.frames > 0 && (st.first == 0 || st.last < st.first):
		t.Fatalf("first %d last %d", st.first, st.last)
	case p.state == fsClose && (p.reason == nil) != (p.remain+uint64(p.cpos) <= 2):
		t.Fatalf("close buffer %d with remain %d cpos %d", len(p.reason), p.remain, p.cpos)
	}
}

// BenchmarkFrameParser: small masked client frames fed in MSS-sized
// segments, and large server frames fed in 64 KiB reads.
func BenchmarkFrameParser(b *testing.B) {
	for _, c := range []struct {
		name          string
		fromClient    bool
		n, size, feed int
	}{
		{"small-masked-32B", true, 2048, 32, 1448},
		{"small-masked-125B", true, 512, 125, 1448},
		{"large-1MiB", false, 16, 1 << 20, 64 << 10},
	} {
		stream := frameStream(c.fromClient, c.n, c.size)
		b.Run(c.name, func(b *testing.B) {
			var p frameParser
			var st wsDirStats
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				p.init(c.fromClient, false)
				for i := 0; i < len(stream); i += c.feed {
					p.feed(stream[i:min(i+c.feed, len(stream))], tBase, &st)
				}
			}
			if st.protoErr != 0 || st.frames == 0 {
				b.Fatalf("%+v", st)
			}
			b.ReportMetric(float64(st.frames)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
