package wsframe

import (
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file finds WebSocket framing in a connection whose start is not in
// the capture (tcpdump started while sessions were open, a rotated file):
// no handshake says the bytes are frames, so each direction hunts for a
// frame boundary. Senders write a frame at a time, so a segment usually
// starts with a frame header: a trial parse starts at a segment start and
// either breaks the rules of RFC 6455 §5 (then the next segment start is
// tried) or runs into a chain of valid frames. A direction locks onto that
// chain when it holds at least resyncFrames frames, one of them with a
// real opcode (a run of zero bytes parses as empty continuation frames),
// and at least one frame ended exactly where a segment ended. Lengths must
// be minimally encoded while hunting (RFC 6455 §5.2 says MUST), which
// most binary protocols do not happen to do. Hunting is bounded: trials
// start only in the first resyncBudget bytes of a direction, at most
// resyncTries of them, and a trial that has not locked after
// resyncTrialMax bytes is dropped.
//
// One direction alone is weak evidence; the caller (Found) wants both, the
// one masked (the client's) and the other not, or one plus a partner leg
// relaying the same frames (analyze pairs legs on the prints kept here: a
// proxy tunnels frames byte for byte, masking keys included).

const (
	resyncFrames   = 2
	resyncBudget   = 16 << 10
	resyncTries    = 48
	resyncTrialMax = 64 << 10
	// MaxPrints is how many frames per direction keep a print.
	MaxPrints = 16
	// printPayload is how many payload bytes go into a print's hash.
	printPayload = 8
)

type huntState uint8

const (
	huntIdle   huntState = iota // waiting for a segment start
	huntTrial                   // a trial parse is running
	huntLocked                  // frames found: parsed from the trial on
	huntGaveUp                  // budget spent without finding frames
)

type hunt struct {
	seen    uint32 // bytes of the direction seen while hunting
	trial   uint32 // bytes of the current trial
	tries   uint8
	aligned uint8 // frames of the trial that ended where a segment ended
	state   huntState
	masked  bool // the trial's (and then the direction's) frames are masked
}

// resync is what a Session hunting for frames holds beside its parsers
// (InitMidStream): a Session that followed a 101 has none, so it costs
// the many ordinary ones a pointer only.
type resync struct {
	hunt [2]hunt
	log  [2]printLog
}

// InitMidStream prepares s for a connection whose start was not captured:
// its directions hunt for frames before they are parsed, and which one
// is the client's is found from the masking. Feed takes each call to
// start a segment.
func (s *Session) InitMidStream() {
	*s = Session{r: &resync{}}
}

// MidStream reports whether s was prepared by InitMidStream.
func (s *Session) MidStream() bool { return s.r != nil }

// feed runs bytes of direction d, captured at t, through its hunt or, once
// locked, its frame parser.
func (r *resync) feed(s *Session, d flow.Dir, b []byte, t time.Time) {
	h, dir := &r.hunt[d], &s.dir[d]
	switch h.state {
	case huntLocked:
		dir.p.feedPrints(b, t, &dir.st, &r.log[d])
		return
	case huntGaveUp:
		return
	case huntIdle:
		if h.seen >= resyncBudget || h.tries >= resyncTries {
			h.state = huntGaveUp
			return
		}
		if len(b) < 2 {
			h.seen += uint32(len(b))
			return
		}
		h.tries++
		h.state, h.trial, h.aligned, h.masked = huntTrial, 0, 0, b[1]&0x80 != 0
		r.log[d] = printLog{}
		*dir = wsDir{p: frameParser{fromClient: h.masked, deflate: true, mid: true, loose: true}}
	}
	dir.p.feedPrints(b, t, &dir.st, &r.log[d])
	h.seen += uint32(min(len(b), resyncBudget))
	h.trial += uint32(min(len(b), resyncTrialMax))
	switch {
	case dir.p.stopped():
		h.state = huntIdle
	case !dir.p.midFrame():
		h.aligned++
	}
	if h.state != huntTrial {
		return
	}
	st := &dir.st
	if st.frames >= resyncFrames && h.aligned > 0 && st.text+st.binary+st.ping+st.pong+st.closes > 0 {
		h.state = huntLocked
		return
	}
	if h.trial >= resyncTrialMax {
		h.state = huntIdle
	}
}

// gap tells direction d that n bytes were lost: a trial fails (its next
// frame boundary is unknown), a locked direction steps over them.
func (r *resync) gap(s *Session, d flow.Dir, n int) {
	h := &r.hunt[d]
	switch h.state {
	case huntLocked:
		r.log[d].payload(nil) // the print ends with what came before the gap
		s.dir[d].p.gap(n, &s.dir[d].st)
	case huntTrial:
		h.state = huntIdle
	}
}

// Locked reports whether direction d of a hunting Session found frames.
func (s *Session) Locked(d flow.Dir) bool { return s.r != nil && s.r.hunt[d].state == huntLocked }

// Hopeless reports whether neither direction of a hunting Session can lock
// any more.
func (s *Session) Hopeless() bool {
	return s.r != nil && s.r.hunt[flow.Fwd].state == huntGaveUp && s.r.hunt[flow.Rev].state == huntGaveUp
}

// Found says what the hunt found: n is the number of directions locked
// (0 when the connection does not carry WebSocket frames: none locked, or
// both locked with the same masking, which no WebSocket connection has),
// client the direction whose frames are masked (the client's).
func (s *Session) Found() (client flow.Dir, n int) {
	l0, l1 := s.Locked(flow.Fwd), s.Locked(flow.Rev)
	switch {
	case l0 && l1:
		if s.r.hunt[flow.Fwd].masked == s.r.hunt[flow.Rev].masked {
			return flow.Fwd, 0
		}
		if s.r.hunt[flow.Fwd].masked {
			return flow.Fwd, 2
		}
		return flow.Rev, 2
	case l0, l1:
		d := flow.Fwd
		if l1 {
			d = flow.Rev
		}
		if s.r.hunt[d].masked {
			return d, 1
		}
		return d.Reverse(), 1
	}
	return flow.Fwd, 0
}

// midSummary completes a hunting Session's summary: the prints of each
// direction's first frames, and no figures for a direction that did not
// lock (it has only a failed trial's).
func (s *Session) midSummary(sum *Summary, client flow.Dir) {
	sum.MidStream = true
	if s.Locked(client) {
		sum.C2S.Prints = s.r.log[client].export()
	} else {
		sum.C2S = DirSummary{}
	}
	if s.Locked(client.Reverse()) {
		sum.S2C.Prints = s.r.log[client.Reverse()].export()
	} else {
		sum.S2C = DirSummary{}
	}
}

// Print identifies one frame as a relay copies it: the hash of its header
// (a client frame's masking key included) and its first payload bytes,
// its payload length, and when its header was captured. A proxy that
// tunnels WebSocket sends each frame on with the same bytes, a few hundred
// µs later.
type Print struct {
	At   time.Time
	Len  uint64
	Hash uint64
}

// printLog records the prints of a direction's first MaxPrints frames.
type printLog struct {
	p    [MaxPrints]print
	n    uint8
	need uint8 // payload bytes still to hash into the current print
	open bool  // p[n] is being hashed
}

type print struct {
	at   wsTime
	len  uint64
	hash uint64
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// start begins the print of a frame whose header is h and payload n bytes.
func (l *printLog) start(h []byte, n uint64, t time.Time) {
	l.close()
	if int(l.n) >= MaxPrints {
		return
	}
	l.p[l.n] = print{at: wsTimeOf(t), len: n, hash: fnv(fnvOffset, h)}
	l.need, l.open = uint8(min(n, printPayload)), true
	if l.need == 0 {
		l.close()
	}
}

// payload hashes the next payload bytes of the current frame; nil ends
// the print (a gap).
func (l *printLog) payload(b []byte) {
	if !l.open {
		return
	}
	if b == nil {
		l.close()
		return
	}
	k := min(int(l.need), len(b))
	l.p[l.n].hash = fnv(l.p[l.n].hash, b[:k])
	l.need -= uint8(k)
	if l.need == 0 {
		l.close()
	}
}

func (l *printLog) close() {
	if l.open {
		l.open = false
		l.n++
	}
}

func (l *printLog) export() []Print {
	n := int(l.n)
	if l.open {
		n++
	}
	if n == 0 {
		return nil
	}
	out := make([]Print, n)
	for i := range out {
		out[i] = Print{At: l.p[i].at.Time(), Len: l.p[i].len, Hash: l.p[i].hash}
	}
	return out
}
