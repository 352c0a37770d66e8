package filter_test

import (
	"fmt"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/filter"
)

// The fanout program sends both directions of each connection to one
// socket, also in an overlay, where each direction has its own outer UDP
// source port: on the real captures of every overlay (and the plain legs
// beside them), every packet of a connection gets the same socket, and
// the connections are spread.
func TestFanoutProgram(t *testing.T) {
	const n = 4
	raw, err := filter.FanoutProgramAt(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := filter.FanoutProgram(n); err != nil {
		t.Fatal(err)
	}
	used, tunUsed := map[uint32]bool{}, map[uint32]bool{}
	conns := 0
	for _, f := range []string{"vxlan-nginx.pcapng", "vxlan8472-haproxy.pcap", "geneve-nginx.pcap", "gre-nginx.pcap", "ipip-nginx.pcap", "vxlan-tenants-nginx.pcap"} {
		frames := ethFrames(t, f)
		segs := decode(t, layers.LinkTypeEthernet, frames)
		socket := map[string]uint32{}
		tunnelled := 0
		for i, s := range segs {
			if s == nil {
				continue
			}
			a, b := fmt.Sprint(s.net.Src(), ":", s.tcp.SrcPort), fmt.Sprint(s.net.Dst(), ":", s.tcp.DstPort)
			if b < a {
				a, b = b, a
			}
			key := fmt.Sprint(s.tun, " ", a, " ", b)
			got := runVM(t, raw, toLink(frames[i], layers.LinkTypeRaw))
			if got >= n {
				t.Fatalf("%s: socket %d of %d", f, got, n)
			}
			if s.tun != capture.TunnelNone {
				tunnelled++
				tunUsed[got] = true
			}
			if w, ok := socket[key]; ok && w != got {
				t.Errorf("%s %s: socket %d, and %d before", f, key, got, w)
			}
			if _, ok := socket[key]; !ok {
				conns++
			}
			socket[key] = got
			used[got] = true
		}
		if tunnelled == 0 {
			t.Errorf("%s: no tunnelled segment", f)
		}
	}
	if len(used) < 3 || len(tunUsed) < 3 {
		t.Errorf("%d connections on sockets %v only, the tunnelled ones on %v", conns, used, tunUsed)
	}
}
