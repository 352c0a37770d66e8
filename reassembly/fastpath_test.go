package reassembly

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
)

// wire is one captured segment, copied out of the reader's buffers.
type wire struct {
	net gopacket.Flow
	tcp []byte // header and payload
	ci  gopacket.CaptureInfo
	cut int
}

func readWire(t *testing.T, path string) []wire {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []wire
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b := append(append([]byte(nil), p.TCP.Contents...), p.TCP.Payload...)
		out = append(out, wire{p.Net, b, p.CI, p.Cut})
	}
}

// eventLog writes every event as a line; ends are kept apart, since the
// order in which open connections end at Close is not defined.
type eventLog struct {
	ev, ends []string
	wsEnds   []*WSSession
}

func (l *eventLog) Request(r *Request) { l.ev = append(l.ev, fmt.Sprintf("req %+v", *r)) }
func (l *eventLog) Response(r *Response) {
	x := *r
	x.Request = nil
	ri := -1
	if r.Request != nil {
		ri = r.Request.Index
	}
	l.ev = append(l.ev, fmt.Sprintf("resp to %d %+v", ri, x))
}
func (l *eventLog) TLSStart(e *TLSStart) { l.ev = append(l.ev, fmt.Sprintf("tls %+v", *e)) }
func (l *eventLog) CloseOnly(e *CloseOnly) {
	l.ev = append(l.ev, fmt.Sprintf("closeonly %+v", *e))
}
func (l *eventLog) TLSRecords(e *TLSRecords) {
	l.ev = append(l.ev, fmt.Sprintf("tlsrecs %+v", *e))
}
func (l *eventLog) ConnEnd(e *ConnEnd) {
	x := *e
	x.WS, x.TLSInfo = nil, nil
	s := fmt.Sprintf("end %+v", x)
	if e.WS != nil {
		l.wsEnds = append(l.wsEnds, e.WS)
		s += fmt.Sprintf(" ws %+v", *e.WS)
	}
	if e.TLSInfo != nil {
		s += fmt.Sprintf(" tls %+v", *e.TLSInfo)
	}
	l.ends = append(l.ends, s)
}

// runWire feeds ws to an Assembler. Cut segments are fed as short ones
// unless cuts is set: gopacket cannot be told of them.
func runWire(ws []wire, slowOnly, cuts bool) (*eventLog, Stats) {
	l := &eventLog{}
	opt := DefaultOptions
	opt.slowOnly = slowOnly
	a := New(l, opt)
	var tcp layers.TCP
	for _, w := range ws {
		if tcp.DecodeFromBytes(w.tcp, gopacket.NilDecodeFeedback) != nil {
			continue
		}
		cut := 0
		if cuts {
			cut = w.cut
		}
		a.Packet(w.net, &tcp, w.ci, cut)
	}
	a.Close()
	slices.Sort(l.ends)
	return l, a.Stats()
}

// perturb damages a capture the way networks and capture loss do: every
// k-th data segment is delayed past its successor, sent twice, or lost.
func perturb(ws []wire, how string, k int) []wire {
	out := make([]wire, 0, len(ws)+len(ws)/k)
	n := 0
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		if len(w.tcp) <= 20 || w.tcp[12]>>4 != 5 && len(w.tcp) <= int(w.tcp[12]>>4)*4 {
			out = append(out, w)
			continue
		}
		n++
		if n%k != 0 {
			out = append(out, w)
			continue
		}
		switch how {
		case "reorder":
			if i+1 < len(ws) {
				next := ws[i+1]
				w.ci.Timestamp, next.ci.Timestamp = next.ci.Timestamp, w.ci.Timestamp
				out = append(out, next, w)
				i++
				continue
			}
			out = append(out, w)
		case "duplicate":
			out = append(out, w, w)
		case "drop":
		}
	}
	return out
}

// TestFastPathAgrees: every real capture, clean and damaged, gives the same
// events through the fast path (with handover to gopacket at the first
// hole) as through gopacket's reassembly alone.
func TestFastPathAgrees(t *testing.T) {
	files, _ := filepath.Glob("../testdata/captures/*.pcap*")
	if len(files) < 40 {
		t.Fatalf("%d captures", len(files))
	}
	handovers := map[string]uint64{}
	for _, f := range files {
		clean := readWire(t, f)
		for _, v := range []struct {
			how string
			k   int
		}{{"clean", 0}, {"reorder", 7}, {"duplicate", 5}, {"drop", 11}} {
			ws := clean
			if v.k > 0 {
				ws = perturb(clean, v.how, v.k)
			}
			slow, _ := runWire(ws, true, false)
			fast, st := runWire(ws, false, false)
			handovers[v.how] += st.Handovers
			name := filepath.Base(f) + "/" + v.how
			// Captures started mid-session hold no HTTP (only frames of
			// sessions upgraded before the capture), and midsession-binary
			// nothing wsdiag reads.
			if len(fast.ev) == 0 && len(fast.ends) == 0 && !strings.HasPrefix(name, "midsession-nginx-normal") && !strings.HasPrefix(name, "midsession-binary") {
				t.Errorf("%s: no events", name)
			}
			diff(t, name+" events", slow.ev, fast.ev)
			diff(t, name+" ends", slow.ends, fast.ends)
		}
	}
	for _, how := range []string{"clean", "reorder", "duplicate", "drop"} {
		t.Logf("%s: %d connections handed over to gopacket", how, handovers[how])
	}
	if handovers["reorder"] == 0 || handovers["drop"] == 0 {
		t.Errorf("damaged captures never reached gopacket: %v", handovers)
	}
	if handovers["duplicate"] != handovers["clean"] {
		t.Errorf("duplicates are trimmed by the fast path, yet %d handovers (%d clean)", handovers["duplicate"], handovers["clean"])
	}
}

func diff(t *testing.T, name string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("%s differ at %d (%d vs %d):\ngopacket: %s\nfast:     %s", name, i, len(want), len(got), short(w), short(g))
			return
		}
	}
}

func short(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return strings.ReplaceAll(s, "\r\n", `\r\n`)
}

// TestCutSegmentsStayFast: told how much the snap length cut off each
// segment, the fast path steps over those holes in order. No real capture
// needs gopacket then, the events are at least as many as gopacket's, and the frame
// parser keeps its place through every cut frame: in backend-read-limit
// (snap length 400) it counts the 1 MiB message the client sent, where
// gopacket, finding the holes only later, loses the frame boundaries.
func TestCutSegmentsStayFast(t *testing.T) {
	files, _ := filepath.Glob("../testdata/captures/*.pcap*")
	cutSeen := 0
	for _, f := range files {
		name := filepath.Base(f)
		ws := readWire(t, f)
		for _, w := range ws {
			if w.cut > 0 {
				cutSeen++
			}
		}
		fast, st := runWire(ws, false, true)
		if st.Handovers != 0 {
			t.Errorf("%s: %d handovers", name, st.Handovers)
		}
		slow, _ := runWire(ws, true, false)
		// Where the cut falls inside a header block, the fast path reports
		// the block's whole lines (Cut), which gopacket cannot: more events.
		if len(fast.ev) < len(slow.ev) || len(fast.ends) != len(slow.ends) {
			t.Errorf("%s: %d events %d ends, gopacket %d %d", name, len(fast.ev), len(fast.ends), len(slow.ev), len(slow.ends))
		}
		for _, w := range fast.wsEnds {
			if w.C2S.Degraded || w.S2C.Degraded {
				t.Errorf("%s: frame boundaries lost: %+v", name, *w)
			}
		}
		if name == "backend-read-limit.pcap" {
			fc := frameCounts(fast.wsEnds)
			if !slices.ContainsFunc(fc, func(s string) bool { return strings.HasPrefix(s, "c2s 2 frames 1048578 bytes close 1009") }) {
				t.Errorf("%s: the 1 MiB message and the close are not counted: %v", name, fc)
			}
			if slices.Equal(fc, frameCounts(slow.wsEnds)) {
				t.Errorf("%s: gopacket alone counts the same frames; is the capture still cut?", name)
			}
		}
	}
	if cutSeen < 500 {
		t.Errorf("only %d cut segments in the captures", cutSeen)
	}
}

// frameCounts lists what each upgraded connection carried, in a stable order.
func frameCounts(ws []*WSSession) []string {
	var out []string
	for _, w := range ws {
		out = append(out, fmt.Sprintf("c2s %d frames %d bytes close %d; s2c %d frames %d bytes close %d",
			w.C2S.Frames, w.C2S.Bytes, w.C2S.CloseCode, w.S2C.Frames, w.S2C.Bytes, w.S2C.CloseCode))
	}
	slices.Sort(out)
	return out
}

// endSink fails on an event for a connection after its end, or a second end.
type endSink struct {
	t     *testing.T
	ended map[ConnID]bool
}

func (s *endSink) check(id ConnID, what string) {
	if s.ended[id] {
		s.t.Fatalf("%s on connection %d after its end", what, id)
	}
}
func (s *endSink) Request(r *Request)   { s.check(r.ID, "request") }
func (s *endSink) Response(r *Response) { s.check(r.ID, "response") }
func (s *endSink) ConnEnd(e *ConnEnd)   { s.check(e.ID, "end"); s.ended[e.ID] = true }

// checkLists verifies the fast path's bookkeeping: every connection in the
// map is in exactly the list its state says, and the counts agree.
func checkLists(t *testing.T, a *Assembler) {
	live, quiet, dead, slow := 0, 0, 0, 0
	for k, r := range a.conns {
		s := r.s
		if r.d == 0 && s.key != k || r.d == 1 && s.key.reverse() != k {
			t.Fatalf("connection under the wrong key")
		}
		if a.conns[k.reverse()].s != s {
			t.Fatalf("a connection's other direction is missing")
		}
		if r.d == 1 {
			continue
		}
		switch {
		case s.slow:
			slow++
			if s.linked {
				t.Fatalf("a handed-over connection is still in a list")
			}
		case s.dead:
			dead++
		default:
			if s.engaged {
				live++
			} else {
				quiet++
			}
			if s.ended {
				t.Fatalf("an ended connection is live")
			}
		}
	}
	if live != a.live.n || quiet != a.quiet.n || dead != a.dead.n {
		t.Fatalf("map has %d live %d quiet %d dead, lists %d %d %d", live, quiet, dead, a.live.n, a.quiet.n, a.dead.n)
	}
	for _, l := range []*connList{&a.live, &a.quiet} {
		n := 0
		for s := l.oldest; s != nil; s = s.newer {
			if s.dead || s.slow || a.conns[s.key].s != s || (l == &a.live) != s.engaged {
				t.Fatalf("a list holds a dead, handed-over, forgotten or misfiled connection")
			}
			n++
		}
		if n != l.n {
			t.Fatalf("list walks %d, counts %d", n, l.n)
		}
	}
}

// FuzzFastPath drives a few connections with arbitrary sequence numbers,
// flags and payloads through the Assembler: no panic, no event after a
// connection's end, consistent bookkeeping after every segment.
func FuzzFastPath(f *testing.F) {
	req := "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"
	seed := []byte{0x02, 0, 0, 0x12, 0, 0, 0x10, 0, byte(len(req))}
	seed = append(seed, req...)
	seed = append(seed, 0x18, 0, byte(len(resp)))
	seed = append(seed, resp...)
	seed = append(seed, 0x01|0x10, 0, 0, 0x19, 0, 0, 0x04, 0, 0)
	f.Add(seed)
	f.Add([]byte{0x02, 0, 0, 0x10, 5, 3, 'a', 'b', 'c', 0x10, 0, 3, 'G', 'E', 'T', 0x04, 0, 0, 0x10, 0, 2, 'x', 'y', 0x02, 9, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sink := &endSink{t: t, ended: map[ConnID]bool{}}
		opt := DefaultOptions
		opt.MaxFlows = 3
		a := New(sink, opt)
		a.maxQuiet = 2 // (at least 100 outside tests)
		ip := layers.IPv4{Version: 4, Protocol: layers.IPProtocolTCP,
			SrcIP: []byte{127, 0, 0, 1}, DstIP: []byte{127, 0, 0, 2}}
		fwd, rev := ip.NetworkFlow(), ip.NetworkFlow().Reverse()
		var next [4][2]uint32
		now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
		var hdr [20]byte
		var tcp layers.TCP
		for len(b) >= 3 {
			// op: bits 0-1 flags FIN/SYN, bit 2 RST, bit 3 dir, bit 4 ACK,
			// bits 5-6 connection, bit 7 a second passes
			op, delta, n := b[0], int8(b[1]), int(b[2]&0x3f)
			b = b[3:]
			n = min(n, len(b))
			payload := b[:n]
			b = b[n:]
			c, d := int(op>>5&3), int(op>>3&1)
			seq := next[c][d] + uint32(int32(delta))
			next[c][d] = seq + uint32(n)
			sp, dp := uint16(40000+c), uint16(80)
			nf := fwd
			if d == 1 {
				sp, dp, nf = dp, sp, rev
			}
			binary.BigEndian.PutUint16(hdr[0:], sp)
			binary.BigEndian.PutUint16(hdr[2:], dp)
			binary.BigEndian.PutUint32(hdr[4:], seq)
			hdr[12] = 5 << 4
			hdr[13] = op & 0x03
			if op&0x04 != 0 {
				hdr[13] |= 0x04
			}
			if op&0x10 != 0 {
				hdr[13] |= 0x10
			}
			pkt := append(hdr[:], payload...)
			if tcp.DecodeFromBytes(pkt, gopacket.NilDecodeFeedback) != nil {
				t.Fatal("decode")
			}
			if op&0x80 != 0 {
				now = now.Add(time.Second)
			}
			cut := 0
			if delta == 7 {
				cut = 100
			}
			a.Packet(nf, &tcp, gopacket.CaptureInfo{Timestamp: now}, cut)
			checkLists(t, a)
		}
		a.Close()
		if len(a.conns) != 0 || a.live.n != 0 || a.quiet.n != 0 || a.dead.n != 0 || a.Stats().Open != 0 {
			t.Fatalf("after Close: %d in the map, %d live, %d quiet, %d dead, %d open", len(a.conns), a.live.n, a.quiet.n, a.dead.n, a.Stats().Open)
		}
	})
}
