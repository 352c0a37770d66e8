package wsframe

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// segments feeds stream to direction d of r in pieces of the given sizes
// (the last piece takes the rest), one per 10 ms.
func segments(r *Session, d flow.Dir, stream []byte, sizes ...int) {
	at := tBase
	for i := 0; len(stream) > 0; i++ {
		k := len(stream)
		if i < len(sizes) {
			k = min(sizes[i], k)
		}
		r.Feed(d, stream[:k], at)
		stream = stream[k:]
		at = at.Add(10 * time.Millisecond)
	}
}

func midSession() *Session {
	var s Session
	s.InitMidStream()
	return &s
}

// keyed is a masked frame with its own key (prints tell keys apart).
func keyed(b0 byte, key uint32, payload []byte) []byte {
	f := wsFrame(b0, true, payload)
	h := len(f) - len(payload)
	binary.BigEndian.PutUint32(f[h-4:], key)
	for i := range payload {
		f[h+i] = payload[i] ^ f[h-4+i&3]
	}
	return f
}

func TestResyncFindsFrames(t *testing.T) {
	msg := []byte("hello 3 from attempt 1")
	big := bytes.Repeat([]byte{'y'}, 3000)
	for _, c := range []struct {
		name           string
		c2s, s2c       []byte
		c2sCut, s2cCut []int
		want           int // directions locked
		frames         [2]uint64
	}{
		{name: "one frame a segment",
			c2s: cat(keyed(bFIN|wsOpText, 1, msg), keyed(bFIN|wsOpText, 2, msg)), c2sCut: []int{28},
			s2c: cat(wsFrame(bFIN|wsOpText, false, msg), wsFrame(bFIN|wsOpText, false, msg)), s2cCut: []int{24},
			want: 2, frames: [2]uint64{2, 2}},
		{name: "the capture begins inside a 3000-byte frame",
			// the tail of a frame (1000 bytes: its header is not captured),
			// then whole frames, each in its own segment
			c2s:    cat(bytes.Repeat([]byte{'y'}, 1000), keyed(bFIN|wsOpBinary, 3, big), keyed(bFIN|wsOpPing, 4, nil), keyed(bFIN|wsOpText, 5, msg)),
			c2sCut: []int{1000, 1448, 1448, 112, 6},
			s2c:    cat(msg[:7], wsFrame(bFIN|wsOpText, false, msg), wsFrame(bFIN|wsOpPong, false, nil)), s2cCut: []int{7, 24},
			want: 2, frames: [2]uint64{3, 2}},
		{name: "a fragmented message in progress, permessage-deflate",
			c2s:  cat(keyed(wsOpContinuation, 6, msg), keyed(bFIN|wsOpContinuation, 7, msg), keyed(bFIN|0x40|wsOpText, 8, msg)),
			s2c:  nil,
			want: 1, frames: [2]uint64{3, 0}},
		{name: "server frames only",
			s2c:  cat(wsFrame(bFIN|wsOpBinary, false, msg), wsFrame(bFIN|wsOpBinary, false, msg), wsFrame(bFIN|wsOpBinary, false, msg)),
			want: 1, frames: [2]uint64{0, 3}},
		{name: "one frame is not enough",
			c2s: keyed(bFIN|wsOpText, 9, msg), s2c: wsFrame(bFIN|wsOpText, false, msg), want: 0},
		{name: "masked both ways is no WebSocket",
			c2s: cat(keyed(bFIN|wsOpText, 1, msg), keyed(bFIN|wsOpText, 2, msg)), s2c: cat(keyed(bFIN|wsOpText, 3, msg), keyed(bFIN|wsOpText, 4, msg)), want: 0},
		{name: "zeros are empty continuations, not frames",
			c2s: make([]byte, 300), s2c: make([]byte, 300), want: 0},
		{name: "TLS records",
			c2s:  cat([]byte{0x17, 3, 3, 0, 20}, make([]byte, 20), []byte{0x17, 3, 3, 0, 20}, make([]byte, 20)),
			s2c:  cat([]byte{0x17, 3, 3, 0, 30}, make([]byte, 30), []byte{0x15, 3, 3, 0, 2, 1, 0}),
			want: 0},
		{name: "a 16-bit length that fits in 7 bits",
			c2s: cat(wsFrameLen(bFIN|wsOpText, true, 5, 16, []byte("hello")), keyed(bFIN|wsOpText, 2, msg)), want: 0},
	} {
		r := midSession()
		segments(r, flow.Fwd, c.c2s, c.c2sCut...)
		segments(r, flow.Rev, c.s2c, c.s2cCut...)
		cd, n := r.Found()
		if n != c.want {
			t.Errorf("%s: %d directions locked, want %d", c.name, n, c.want)
			continue
		}
		if n == 0 {
			continue
		}
		s := r.Summary(cd)
		if cd != flow.Fwd && c.c2s != nil || s.C2S.Frames != c.frames[0] || s.S2C.Frames != c.frames[1] || !s.MidStream {
			t.Errorf("%s: client direction %d, frames %d/%d, want 0, %v", c.name, cd, s.C2S.Frames, s.S2C.Frames, c.frames)
		}
		if int(s.C2S.Frames) != len(s.C2S.Prints) || int(s.S2C.Frames) != len(s.S2C.Prints) {
			t.Errorf("%s: %d/%d prints", c.name, len(s.C2S.Prints), len(s.S2C.Prints))
		}
	}
}

// TestResyncPrints: a relayed frame has the same print on both legs,
// however the relay splits it; frames that differ only in their masking
// key do not.
func TestResyncPrints(t *testing.T) {
	msg := []byte("hello 3 from attempt 1")
	stream := cat(keyed(bFIN|wsOpText, 1, msg), keyed(bFIN|wsOpText, 2, msg), keyed(bFIN|wsOpText, 3, msg))
	a, b := midSession(), midSession()
	segments(a, flow.Fwd, stream, 28, 28)
	segments(b, flow.Fwd, stream, 3, 30, 1, 100)
	pa, pb := a.Summary(flow.Fwd).C2S.Prints, b.Summary(flow.Fwd).C2S.Prints
	if len(pa) != 3 || len(pb) != 3 {
		t.Fatalf("prints %v %v", pa, pb)
	}
	for i := range pa {
		if pa[i].Hash != pb[i].Hash || pa[i].Len != 22 {
			t.Errorf("frame %d: %x %x", i, pa[i].Hash, pb[i].Hash)
		}
		if i > 0 && pa[i].Hash == pa[i-1].Hash {
			t.Errorf("frames %d and %d share a print", i-1, i)
		}
	}
}

// TestResyncRandomBytes: random bytes in random-sized segments, both ways,
// never pass for a WebSocket connection, and rarely lock one direction.
func TestResyncRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const conns = 3000
	one := 0
	for i := 0; i < conns; i++ {
		r := midSession()
		for _, d := range []flow.Dir{flow.Fwd, flow.Rev} {
			for k := 0; k < 40; k++ {
				b := make([]byte, 1+rng.Intn(1448))
				if k%3 == 0 {
					b = make([]byte, 1+rng.Intn(40)) // short segments too
				}
				rng.Read(b)
				r.Feed(d, b, tBase)
			}
		}
		_, n := r.Found()
		if n == 2 {
			t.Fatalf("connection %d: random bytes locked both directions", i)
		}
		one += n
	}
	t.Logf("%d of %d random connections locked one direction", one, conns)
	if one > conns/100 {
		t.Errorf("%d of %d random connections locked one direction", one, conns)
	}
}

func TestResyncAllocs(t *testing.T) {
	msg := []byte("hello 3 from attempt 1")
	f := keyed(bFIN|wsOpText, 1, msg)
	r := midSession()
	segments(r, flow.Fwd, cat(f, f))
	allocs := testing.AllocsPerRun(100, func() { r.Feed(flow.Fwd, f, tBase) })
	noise := bytes.Repeat([]byte{0x47}, 1448)
	q := midSession()
	allocs += testing.AllocsPerRun(100, func() { q.Feed(flow.Rev, noise, tBase) })
	if allocs != 0 || !r.Locked(flow.Fwd) {
		t.Fatalf("%v allocs per segment, locked %v", allocs, r.Locked(flow.Fwd))
	}
}

// FuzzResync: any bytes in any pieces, with or without a gap, never panic
// and keep the figures consistent.
func FuzzResync(f *testing.F) {
	msg := []byte("hello")
	f.Add(cat(keyed(bFIN|wsOpText, 1, msg), keyed(bFIN|wsOpText, 2, msg)), []byte{10, 3}, cat(wsFrame(bFIN|wsOpText, false, msg), wsFrame(bFIN|wsOpClose, false, closePayload(1000, "x"))), false)
	f.Add(make([]byte, 64), []byte{1, 2, 3}, []byte{0x17, 3, 3, 0, 1, 0}, true)
	f.Fuzz(func(t *testing.T, c2s, cuts, s2c []byte, gap bool) {
		r := midSession()
		rest := c2s
		for _, c := range cuts {
			if len(rest) == 0 {
				break
			}
			k := min(int(c)+1, len(rest))
			r.Feed(flow.Fwd, rest[:k], tBase)
			rest = rest[k:]
			if gap {
				r.Gap(flow.Fwd, int(c))
			}
		}
		r.Feed(flow.Fwd, rest, tBase)
		r.Feed(flow.Rev, s2c, tBase)
		cd, n := r.Found()
		if n == 0 {
			return
		}
		s := r.Summary(cd)
		for _, d := range []*DirSummary{&s.C2S, &s.S2C} {
			if d.Frames > uint64(len(c2s)+len(s2c)) || len(d.Prints) > MaxPrints || uint64(len(d.Prints)) > d.Frames {
				t.Fatalf("%+v", d)
			}
		}
	})
}
