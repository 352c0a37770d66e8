package reassembly

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
)

// A tunnel's id is the same both ways and differs with the VNI; the flow
// gopacket keys a tunnelled connection by keeps the inner addresses, is
// another tunnel's flow reversed when reversed, and costs no allocation.
func TestTunnelKey(t *testing.T) {
	a, b := netip.MustParseAddr("10.231.2.1"), netip.MustParseAddr("10.231.2.2")
	t10 := capture.Tunnel{Kind: capture.TunnelVXLAN, VNI: 10, Port: 4789, Src: a, Dst: b}
	back := capture.Tunnel{Kind: capture.TunnelVXLAN, VNI: 10, Port: 4789, Src: b, Dst: a}
	t20 := capture.Tunnel{Kind: capture.TunnelVXLAN, VNI: 20, Port: 4789, Src: a, Dst: b}
	if tunnelID(&t10) != tunnelID(&back) || tunnelID(&t10) == tunnelID(&t20) || tunnelID(&t10) == 0 {
		t.Errorf("ids %x %x %x", tunnelID(&t10), tunnelID(&back), tunnelID(&t20))
	}
	nf := gopacket.NewFlow(layers.EndpointIPv4, []byte{10, 231, 3, 1}, []byte{10, 231, 3, 2})
	f10, f20 := slowFlow(nf, tunnelID(&t10)), slowFlow(nf, tunnelID(&t20))
	if f10 == nf || f10 == f20 || slowFlow(nf, 0) != nf || slowFlow(nf.Reverse(), tunnelID(&t10)) != f10.Reverse() {
		t.Errorf("flows %v %v %v", nf, f10, f20)
	}
	if src, dst := f10.Endpoints(); addrPort(src, 1).Addr() != netip.MustParseAddr("10.231.3.1") || addrPort(dst, 1).Addr() != netip.MustParseAddr("10.231.3.2") {
		t.Errorf("addresses %v %v", src, dst)
	}
	if n := testing.AllocsPerRun(100, func() { f10 = slowFlow(nf, tunnelID(&t10)) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
