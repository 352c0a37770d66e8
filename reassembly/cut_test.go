package reassembly

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// cutSink keeps the header blocks.
type cutSink struct {
	reqs  []*Request
	resps []*Response
	ends  []*ConnEnd
}

func (s *cutSink) Request(r *Request)   { s.reqs = append(s.reqs, r) }
func (s *cutSink) Response(r *Response) { s.resps = append(s.resps, r) }
func (s *cutSink) ConnEnd(e *ConnEnd)   { s.ends = append(s.ends, e) }

// TestCutHeaderBlocks: on real captures made with tcpdump -s 96 and -s 200,
// a header block whose packet the snap length cut comes out as a block of
// its whole lines, marked Cut with the bytes kept; a cut line ("Host:
// 127") is not a header; a cut 101 still switches the connection to its
// tunnel, whose frames are counted.
func TestCutHeaderBlocks(t *testing.T) {
	for _, tc := range []struct {
		file       string
		kept       int
		reqHeaders int // headers of the first client request
	}{
		{"snap96-nginx.pcap", 30, 0},   // "GET /ws/ok HTTP/1.1\r\nHost: 127"
		{"snap200-nginx.pcap", 134, 4}, // Host, User-Agent, Connection, Origin (the key cut)
	} {
		s := &cutSink{}
		a := New(s, DefaultOptions)
		var tcp layers.TCP
		for _, w := range readWire(t, "../testdata/captures/"+tc.file) {
			if tcp.DecodeFromBytes(w.tcp, gopacket.NilDecodeFeedback) != nil {
				continue
			}
			a.Packet(w.net, &tcp, w.ci, w.cut)
		}
		a.Close()
		if len(s.reqs) != 8 || len(s.resps) != 8 {
			t.Fatalf("%s: %d requests, %d responses, want 8 and 8", tc.file, len(s.reqs), len(s.resps))
		}
		for _, r := range s.reqs {
			if !r.Cut || !r.Truncated || r.Kept != tc.kept || r.Method != "GET" {
				t.Errorf("%s: request %s %s: cut %v truncated %v kept %d", tc.file, r.Method, r.Target, r.Cut, r.Truncated, r.Kept)
			}
			for _, h := range r.Headers {
				if h.Name == "Host" && h.Value == "127" {
					t.Errorf("%s: a cut line became a header: %+v", tc.file, h)
				}
			}
		}
		if n := len(s.reqs[0].Headers); n != tc.reqHeaders {
			t.Errorf("%s: first request has %d headers, want %d: %+v", tc.file, n, tc.reqHeaders, s.reqs[0].Headers)
		}
		upgraded := 0
		for _, e := range s.ends {
			if e.Upgraded {
				upgraded++
				if e.WS == nil || e.WS.C2S.Frames != 2 || e.WS.S2C.Frames != 2 {
					t.Errorf("%s: tunnel after a cut 101: %+v", tc.file, e.WS)
				}
			}
		}
		if upgraded != 4 { // 2 attempts × 2 legs
			t.Errorf("%s: %d upgraded connections, want 4", tc.file, upgraded)
		}
	}
}
