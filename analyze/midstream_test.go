package analyze

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// midConn is a connection found carrying frames mid-stream: prints of its
// client frames (keys: one frame each, at 1 s, 2 s …, shifted by delay:
// negative on a client's leg, whose frames the proxy relays later)
// and of its server frames (the same content for every session: an echo
// of alike messages), ended by FINs at end.
func midConn(id int, client, server string, keys []uint64, server2 int, delay time.Duration, closer reassembly.Side, end time.Time) *reassembly.ConnEnd {
	c := reassembly.Conn{ID: reassembly.ConnID(id), Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)}
	ws := &reassembly.WSSession{MidStream: true}
	for i, k := range keys {
		t := at(float64(i + 1)).Add(delay)
		ws.C2S.Prints = append(ws.C2S.Prints, reassembly.WSPrint{At: t, Len: 22, Hash: k})
		ws.C2S.Frames++
		ws.C2S.Last = t
	}
	for i := 0; i < server2; i++ {
		// the server's frames reach the upstream leg (delay 0) first and
		// the client's leg (delay ≠ 0) |delay| later
		t := at(float64(i + 1)).Add(time.Millisecond + delay.Abs())
		ws.S2C.Prints = append(ws.S2C.Prints, reassembly.WSPrint{At: t, Len: 18, Hash: 0xEC40})
		ws.S2C.Frames++
		ws.S2C.Last = t
	}
	e := &reassembly.ConnEnd{Conn: c, First: at(0.9), Last: end, WS: ws, Reason: reassembly.EndClosed}
	fin := reassembly.Close{Kind: reassembly.CloseFIN, Time: end}
	if closer == reassembly.SideClient {
		e.ClientClose, e.ServerClose = fin, reassembly.Close{Kind: reassembly.CloseFIN, Time: end.Add(time.Millisecond)}
	} else {
		e.ServerClose, e.ClientClose = fin, reassembly.Close{Kind: reassembly.CloseFIN, Time: end.Add(time.Millisecond)}
	}
	return e
}

func runMid(ends ...*reassembly.ConnEnd) []*Verdict {
	var vs []*Verdict
	a := New(DefaultOptions, func(v *Verdict) { vs = append(vs, v) })
	for _, e := range ends {
		a.ConnEnd(e)
	}
	a.Finish()
	return vs
}

// TestMidstreamPairing: two sessions through one proxy whose server frames
// look alike pair by their client frames' masking keys, leg for leg; the
// proxy's idle timeout is judged as on a captured handshake.
func TestMidstreamPairing(t *testing.T) {
	const us = time.Microsecond
	end := at(7)
	vs := runMid(
		// upstream legs end first, in the other order than their clients
		midConn(4, "127.0.0.1:40002", "127.0.0.1:9001", []uint64{21, 22}, 2, 0, reassembly.SideClient, end),
		midConn(3, "127.0.0.1:40001", "127.0.0.1:9001", []uint64{11, 12}, 2, 0, reassembly.SideClient, end),
		midConn(1, "10.0.0.5:50001", "192.0.2.1:80", []uint64{11, 12}, 2, -150*us, reassembly.SideServer, end),
		midConn(2, "10.0.0.6:50002", "192.0.2.1:80", []uint64{21, 22}, 2, -90*us, reassembly.SideServer, end),
	)
	if len(vs) != 2 {
		t.Fatalf("%d verdicts", len(vs))
	}
	want := map[string]string{"10.0.0.5:50001": "127.0.0.1:40001", "10.0.0.6:50002": "127.0.0.1:40002"}
	for _, v := range vs {
		if len(v.Legs) != 2 || want[v.Client.String()] != v.Legs[1].Client.String() {
			t.Errorf("client %s paired with %+v", v.Client, v.Legs)
		}
		ev := strings.Join(v.Evidence, "\n")
		if v.Code != IdleTimeout || v.Hop != HopSession || v.PairConfidence != ConfHigh || !v.hasFinding(HandshakeNotCaptured) ||
			v.Path != "" || v.StatusClient != 0 || v.Session == nil || !strings.Contains(ev, "2 client frames with the same masking keys") ||
			!strings.Contains(ev, "no frame in either direction for 5.00s") {
			t.Errorf("%s: %s %s %s %v\n%s", v.Client, v.Code, v.Hop, v.PairConfidence, v.Findings, ev)
		}
	}
}

// TestMidstreamAlone: one leg with frames both ways is judged on its own;
// frames one way and no relaying leg are too little to report.
func TestMidstreamAlone(t *testing.T) {
	oneWay := midConn(1, "10.0.0.5:50001", "192.0.2.1:80", []uint64{1, 2, 3}, 0, 0, reassembly.SideClient, at(5))
	if vs := runMid(oneWay); len(vs) != 0 {
		t.Errorf("one direction, no partner: %d verdicts (%s)", len(vs), vs[0].Code)
	}
	both := midConn(1, "10.0.0.5:50001", "192.0.2.1:80", []uint64{1, 2, 3}, 2, 0, reassembly.SideClient, at(5))
	both.WS.C2S.CloseAt, both.WS.C2S.CloseCode = at(4), 1000
	vs := runMid(both)
	if len(vs) != 1 {
		t.Fatalf("%d verdicts", len(vs))
	}
	v := vs[0]
	if v.Code != OK || v.PairConfidence != ConfNone || !v.hasFinding(HandshakeNotCaptured) || v.hasFinding(Unpaired) ||
		!strings.Contains(v.Fix, "began before the capture") || v.Backend.String() != "192.0.2.1:80" {
		t.Errorf("%s %s %v %s fix %q", v.Code, v.PairConfidence, v.Findings, v.Backend, v.Fix)
	}
}

// TestMidstreamServerFramesOnly: with no client frame on a leg, alike
// server frames pair only from the proxy's address, at low confidence;
// where both legs have client frames, server frames alone never pair.
func TestMidstreamServerFramesOnly(t *testing.T) {
	A := midConn(1, "127.0.0.1:50001", "127.0.0.1:8080", nil, 3, 200*time.Microsecond, reassembly.SideServer, at(6))
	B := midConn(2, "127.0.0.1:40001", "127.0.0.1:9001", nil, 3, 0, reassembly.SideClient, at(6))
	vs := runMid(A, B)
	if len(vs) != 1 || len(vs[0].Legs) != 2 || vs[0].PairConfidence != ConfLow {
		t.Fatalf("%d verdicts %+v", len(vs), vs)
	}
	C := midConn(1, "127.0.0.1:50001", "127.0.0.1:8080", []uint64{1, 2}, 3, 200*time.Microsecond, reassembly.SideServer, at(6))
	D := midConn(2, "127.0.0.1:40001", "127.0.0.1:9001", []uint64{7, 8}, 3, 0, reassembly.SideClient, at(6))
	if vs := runMid(C, D); len(vs) != 2 || len(vs[0].Legs) != 1 || len(vs[1].Legs) != 1 {
		t.Errorf("legs with different keys paired: %d verdicts", len(vs))
	}
}

// midCases are the cases of sessions whose handshake came before the
// capture.
func midCases() []ruleCase {
	return []ruleCase{{
		name: "one leg with frames both ways, closed normally",
		by:   "handshake before the capture",
		mid: func(*Analyzer) []*midLeg {
			e := midConn(1, "10.0.0.5:50001", "192.0.2.1:80", []uint64{1, 2, 3}, 2, 0, reassembly.SideClient, at(5))
			e.WS.C2S.CloseAt, e.WS.C2S.CloseCode = at(4), 1000
			return []*midLeg{{end: e}}
		},
		code: OK, hop: HopNone,
		findings: []Code{ClosedByClient, HandshakeNotCaptured},
		evidence: []string{"client→server 10.0.0.5:50001→192.0.2.1:80: no handshake in the capture", "client→server: client sent close 1000"},
		fix:      "the session began before the capture",
	}}
}

func TestMidstreamRules(t *testing.T) { runRuleCases(t, midCases()) }
