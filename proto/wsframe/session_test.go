package wsframe

import (
	"testing"
	"time"
	"unsafe"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// The WebSocket state a connection carries after a 101 must stay small: it
// is embedded in every upgraded connection of a busy proxy host.
func TestSessionStateSize(t *testing.T) {
	const limit = 512
	s, p, st := unsafe.Sizeof(Session{}), unsafe.Sizeof(frameParser{}), unsafe.Sizeof(wsDirStats{})
	t.Logf("Session %d bytes (per direction: frameParser %d + wsDirStats %d)", s, p, st)
	if s > limit {
		t.Fatalf("Session is %d bytes, more than %d", s, limit)
	}
}

func TestSession(t *testing.T) {
	var s Session
	s.Init(flow.Rev, false) // the client sends in flow.Rev
	at := func(sec int) time.Time { return tBase.Add(time.Duration(sec) * time.Second) }
	s.Feed(flow.Rev, wsFrame(bFIN|wsOpText, true, []byte("hi")), at(0))
	s.Feed(flow.Fwd, wsFrame(bFIN|wsOpText, false, []byte("hi")), at(0))
	s.Feed(flow.Fwd, wsFrame(bFIN|wsOpClose, false, closePayload(4000, "going away: test")), at(1))
	s.Gap(flow.Rev, 3) // at a frame boundary in the client's direction
	s.Feed(flow.Rev, wsFrame(bFIN|wsOpClose, true, closePayload(4000, "")), at(1))

	c, b := &s.dir[1].st, &s.dir[0].st
	if c.frames != 1 || c.text != 1 || !c.degraded || c.closed() {
		t.Errorf("client: %+v", *c)
	}
	if b.frames != 2 || b.closeCode != 4000 || b.closeReason != "going away: test" || !b.closeAt.Time().Equal(at(1)) || b.protoErr != 0 {
		t.Errorf("backend: %+v", *b)
	}

	// A masked frame from the server side is a protocol error there.
	s.Init(flow.Fwd, true)
	s.Feed(flow.Rev, wsFrame(bFIN|wsOpText, true, []byte("x")), at(2))
	if s.dir[1].st.protoErr != wsErrMasked || s.dir[1].st.protoErr.String() != "masked server-to-client frame" {
		t.Errorf("server dir: %+v", s.dir[1].st)
	}
	s.Feed(flow.Fwd, wsFrame(bFIN|bRSV1|wsOpText, true, []byte("x")), at(2)) // deflate negotiated: fine
	if s.dir[0].st.protoErr != 0 || s.dir[0].st.frames != 1 {
		t.Errorf("client dir: %+v", s.dir[0].st)
	}
	for e := wsErrNone + 1; e <= wsErrLength64; e++ {
		if e.String() == "" || e.String() == "unknown protocol error" {
			t.Errorf("wsProtoErr %d has no text", e)
		}
	}
}
