package reassembly

import (
	"path/filepath"
	"testing"
)

// midEnds counts, on a capture, the connections reported as WebSocket
// sessions found mid-stream, and of them those with frames both ways.
func midEnds(t *testing.T, name string) (n, both int, ends []*WSSession) {
	t.Helper()
	l, _ := runWire(readWire(t, filepath.Join("../testdata/captures", name)), false, true)
	for _, ws := range l.wsEnds {
		if !ws.MidStream {
			continue
		}
		n++
		if ws.C2S.Frames > 0 && ws.S2C.Frames > 0 {
			both++
		}
		ends = append(ends, ws)
	}
	return n, both, ends
}

// TestMidStreamCaptures: connections whose handshake the capture missed
// are found by their frames, on every leg; binary traffic that is not
// WebSocket (random bytes both ways, a download's body, TLS records, all
// mid-stream) never locks a single direction.
func TestMidStreamCaptures(t *testing.T) {
	for _, c := range []struct {
		name    string
		n, both int
		// the largest client frame on every leg; its bytes are counted
		// (up to the backend's 64 KiB read limit) through snap length cuts
		maxFrame uint64
	}{
		{"midsession-nginx-timeout.pcap", 6, 6, 22},
		{"midsession-haproxy-tunnel.pcap", 6, 6, 22},
		{"midsession-nginx-normal.pcap", 6, 6, 22},
		{"midsession-chain.pcap", 9, 9, 22},
		// nginx resets the client leg before the backend's 1009 reaches
		// it on some legs; the client's frames are still there
		// (a 200 000-byte frame the snap length cut: its header is kept)
		{"midsession-nginx-1009.pcap", 6, -1, 200000},
		{"midsession-binary.pcap", 0, 0, 0},
		// a capture with every handshake: nothing is taken for mid-stream
		{"idle-timeout.pcap", 0, 0, 0},
	} {
		n, both, ends := midEnds(t, c.name)
		if n != c.n || c.both >= 0 && both != c.both {
			t.Errorf("%s: %d connections found mid-stream (%d with frames both ways), want %d (%d)", c.name, n, both, c.n, c.both)
		}
		for _, ws := range ends {
			if ws.C2S.ProtocolError != "" || ws.S2C.ProtocolError != "" || len(ws.C2S.Prints)+len(ws.S2C.Prints) == 0 || ws.C2S.MaxFrame != c.maxFrame || ws.C2S.Bytes < min(c.maxFrame, 64<<10) {
				t.Errorf("%s: %+v", c.name, ws)
			}
		}
	}
}
