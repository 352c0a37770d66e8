package reassembly_test

import "testing"

// A snap length that cut the 101 before its Sec-WebSocket-Extensions line
// leaves permessage-deflate unknown: the compressed frames of the healthy
// sessions in snap200-compress-* are no protocol error. A whole 101 that
// lacks the line (ext-hidden-nginx: the proxy hid it) still makes the
// backend's compressed echo one, on the client's leg only.
func TestDeflateUnknownWhenCut(t *testing.T) {
	for _, c := range []struct {
		file   string
		errors int // legs with a protocol error
	}{
		{"snap200-compress-nginx.pcap", 0},
		{"snap200-compress-haproxy.pcap", 0},
		{"ext-hidden-nginx.pcap", 1},
		{"ext-hidden-node.pcap", 1},
	} {
		s := readInto(t, c.file)
		upgraded, errs := 0, 0
		for _, e := range s.ends {
			if e.WS == nil {
				continue
			}
			upgraded++
			if e.WS.C2S.ProtocolError != "" || e.WS.S2C.ProtocolError != "" {
				errs++
				if e.Server.Port() != 80 {
					t.Errorf("%s: protocol error on the leg to %s", c.file, e.Server)
				}
			} else if e.WS.S2C.Frames == 0 { // (parsing stops at an error)
				t.Errorf("%s: no frames from the server on %s", c.file, e.Server)
			}
		}
		if upgraded != 2 || errs != c.errors {
			t.Errorf("%s: %d upgraded legs, %d with a protocol error", c.file, upgraded, errs)
		}
	}
}
