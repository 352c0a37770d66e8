package reassembly

import (
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
	"github.com/wsdiag/wsdiag/proto/http1"
	"github.com/wsdiag/wsdiag/proto/wsframe"
)

// A connection whose start is not in the capture (tcpdump started while
// WebSocket sessions were open, a rotated file) shows neither a handshake
// nor a request line: its first bytes are frames. Instead of ignoring it
// as a connection of some other protocol, the stream hunts for WebSocket
// framing (wsframe.Resync) when the capture has no SYN of it and its first
// payload is neither HTTP nor TLS. Hunting is bounded by wsframe's budget;
// a connection that never shows frames ends up ignored as before. One that
// does is reported in its ConnEnd (WS.MidStream) and moves out of the
// quiet list.

// startMid begins hunting on s, whose direction d sniffed data as neither
// HTTP nor TLS, and reports whether it did.
func (s *stream) startMid(d flow.Dir, data []byte, t time.Time) bool {
	if s.mid() {
		return true // the other direction started it; deliver feeds it
	}
	if !s.mayHunt() || s.midDone || s.upgraded || s.nreq > 0 || s.nresp > 0 {
		return false
	}
	if k := s.dir[d.Reverse()].Kind(); k != http1.KindUnknown && k != http1.KindOther {
		return false
	}
	s.ws = &wsframe.Session{}
	s.ws.InitMidStream()
	if held := s.dir[d.Reverse()].Held(); len(held) > 0 {
		s.ws.Feed(d.Reverse(), held, t)
	}
	s.ws.Feed(d, data, t)
	s.midCheck()
	return true
}

// mid reports whether s is hunting for frames.
func (s *stream) mid() bool { return s.ws != nil && s.ws.MidStream() }

// midFeed runs the next bytes of direction d through the hunt; a direction
// still undecided goes on being sniffed for HTTP too (a keep-alive
// connection caught in a body may carry a request next).
func (s *stream) midFeed(d flow.Dir, data []byte, t time.Time) {
	s.ws.Feed(d, data, t)
	if s.dir[d].Kind() == http1.KindUnknown {
		s.feed(d, data, t)
		if !s.mid() {
			return // it was HTTP after all
		}
	}
	s.midCheck()
}

// midCheck follows the hunt: frames found make the connection one that
// matters; a hunt that cannot succeed any more leaves it ignored.
func (s *stream) midCheck() {
	m := s.ws
	if m.Hopeless() {
		s.ws, s.midDone, s.ignored = nil, true, true
		return
	}
	if cd, n := m.Found(); n > 0 {
		s.setClient(cd)
		s.engage()
	}
}

// dropMid gives up hunting: a direction turned out to carry HTTP.
func (s *stream) dropMid() {
	s.ws, s.midDone = nil, true
}

// midSummary is the WebSocket session found mid-stream, nil when none.
func (s *stream) midSummary() *WSSession {
	if !s.mid() {
		return nil
	}
	cd, n := s.ws.Found()
	if n == 0 {
		return nil
	}
	s.clientDir = cd
	return s.ws.Summary(cd)
}
