package capture

import (
	"encoding/binary"
	"io"
	"math/rand"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The overlay captures of testdata/gen/node.sh: the upstream leg is on the
// wire only encapsulated (vxlan-any-nginx also has it decapsulated, from
// the vxlan device). Every upstream segment comes out with its inner
// 4-tuple (10.231.3.1 ↔ 10.231.3.2:9000) and the tunnel that carried it.
func TestTunnelCaptures(t *testing.T) {
	p := netip.MustParseAddr("10.231.2.1")
	b := netip.MustParseAddr("10.231.2.2")
	for _, c := range []struct {
		file string
		want Tunnel // as sent by the proxy host
		bare bool   // the capture also has the upstream leg unencapsulated
	}{
		{"vxlan-nginx.pcapng", Tunnel{Kind: TunnelVXLAN, VNI: 42, Port: 4789, Src: p, Dst: b}, false},
		{"vxlan8472-haproxy.pcap", Tunnel{Kind: TunnelVXLAN, VNI: 1, Port: 8472, Src: p, Dst: b}, false},
		{"vxlan-any-nginx.pcap", Tunnel{Kind: TunnelVXLAN, VNI: 42, Port: 4789, Src: p, Dst: b}, true},
		{"geneve-nginx.pcap", Tunnel{Kind: TunnelGeneve, VNI: 77, Port: 6081, Src: p, Dst: b}, false},
		{"gre-nginx.pcap", Tunnel{Kind: TunnelGRE, VNI: 1234, HasKey: true, Src: p, Dst: b}, false},
		{"ipip-nginx.pcap", Tunnel{Kind: TunnelIPIP, Src: p, Dst: b}, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			r, err := Open(filepath.Join("../testdata/captures", c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var tunnelled, bare, client int
			for {
				pk, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				src, _ := netip.AddrFromSlice(pk.Net.Src().Raw())
				inner := src.As4()[2] == 3 // 10.231.3.x: the overlay
				switch {
				case pk.Tunnel.Kind == TunnelNone && inner:
					bare++
				case pk.Tunnel.Kind == TunnelNone:
					client++
				case !inner:
					t.Fatalf("tunnelled segment with inner source %s", src)
				default:
					tunnelled++
					want := c.want // from the proxy host
					if pk.TCP.SrcPort == 9000 {
						want.Src, want.Dst = b, p
					}
					if pk.Tunnel != want {
						t.Fatalf("tunnel %+v, want %+v", pk.Tunnel, want)
					}
				}
			}
			if tunnelled < 20 || client < 20 || (bare > 0) != c.bare {
				t.Errorf("%d tunnelled, %d bare upstream, %d client-leg segments", tunnelled, bare, client)
			}
		})
	}
}

func TestTunnelString(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, c := range []struct {
		t    Tunnel
		want string
	}{
		{Tunnel{}, ""},
		{Tunnel{Kind: TunnelVXLAN, VNI: 1, Port: 8472, Src: a, Dst: b}, "VXLAN VNI 1 (UDP 8472) 10.0.0.1 → 10.0.0.2"},
		{Tunnel{Kind: TunnelGRE, VNI: 7, HasKey: true, Src: a, Dst: b}, "GRE key 7 10.0.0.1 → 10.0.0.2"},
		{Tunnel{Kind: TunnelGRE, Src: a, Dst: b}, "GRE 10.0.0.1 → 10.0.0.2"},
		{Tunnel{Kind: TunnelIPIP, Src: a, Dst: b}, "IPIP 10.0.0.1 → 10.0.0.2"},
	} {
		if got := c.t.String(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

// firstTunnelled returns the first encapsulated TCP segment's frame of a
// capture (Ethernet or SLL2), for tests that build on a real one.
func firstTunnelled(t testing.TB, file string) (gopacket.LayerType, []byte) {
	t.Helper()
	r, err := Open(filepath.Join("../testdata/captures", file))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := newDecoder()
	for {
		data, _, err := r.pcap.next()
		if err != nil {
			t.Fatal("no tunnelled segment")
		}
		var pk Packet
		if d.decode(r.first, data, &pk) && pk.Tunnel.Kind != TunnelNone && len(pk.TCP.Payload) > 0 {
			return r.first, append([]byte(nil), data...)
		}
	}
}

// Decoding a tunnelled segment allocates nothing, as an outer one.
func TestTunnelDecodeNoAlloc(t *testing.T) {
	for _, f := range []string{"vxlan8472-haproxy.pcap", "vxlan-any-nginx.pcap", "geneve-nginx.pcap", "gre-nginx.pcap", "ipip-nginx.pcap"} {
		first, frame := firstTunnelled(t, f)
		d := newDecoder()
		var p Packet
		n := testing.AllocsPerRun(1000, func() {
			if !d.decode(first, frame, &p) {
				t.Fatal("decode")
			}
		})
		if n != 0 {
			t.Errorf("%s: %.1f allocations per tunnelled packet", f, n)
		}
	}
}

// A snap length that cuts the inner segment is counted in Cut, as for an
// outer one.
func TestTunnelCut(t *testing.T) {
	first, frame := firstTunnelled(t, "vxlan8472-haproxy.pcap")
	d := newDecoder()
	var whole, cut Packet
	if !d.decode(first, frame, &whole) {
		t.Fatal("decode")
	}
	n := len(whole.TCP.Payload)
	if !d.decode(first, frame[:len(frame)-n/2], &cut) {
		t.Fatal("decode cut")
	}
	if cut.Cut != n/2 || len(cut.TCP.Payload) != n-n/2 || cut.Tunnel != whole.Tunnel {
		t.Errorf("cut %d, payload %d of %d, tunnel %v", cut.Cut, len(cut.TCP.Payload), n, cut.Tunnel)
	}
}

// udp4 builds an Ethernet/IPv4/UDP frame around payload.
func udp4(dport uint16, payload []byte) []byte {
	b := make([]byte, 14+20+8, 14+20+8+len(payload))
	b[12], b[13] = 0x08, 0x00
	ip := b[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	binary.BigEndian.PutUint16(ip[10:], ^ipSum(ip[:20]))
	udp := b[34:]
	binary.BigEndian.PutUint16(udp, 40000)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func ipSum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// VXLAN is recognised on any port by content, and random UDP payload is
// not taken for it: a million random datagrams, and ones that start like a
// VXLAN header but do not hold a whole inner TCP/IP packet, on a port
// that is no tunnel's.
func TestTunnelByContent(t *testing.T) {
	_, frame := firstTunnelled(t, "vxlan8472-haproxy.pcap")
	vx := frame[14+20+8:] // the VXLAN header and inner frame
	d := newDecoder()
	var p Packet
	if !d.decode(layers.LayerTypeEthernet, udp4(31000, vx), &p) || p.Tunnel.Kind != TunnelVXLAN || p.Tunnel.Port != 31000 || p.Tunnel.VNI != 1 {
		t.Fatalf("VXLAN on port 31000: %v", p.Tunnel)
	}
	// the same with the inner IP length off by one: not on another port,
	// still on VXLAN's own
	bad := append([]byte(nil), vx...)
	binary.BigEndian.PutUint16(bad[8+14+2:], binary.BigEndian.Uint16(bad[8+14+2:])+1)
	if d.decode(layers.LayerTypeEthernet, udp4(31000, bad), &p) {
		t.Error("an inner packet whose length disagrees was taken on port 31000")
	}
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 1500)
	for i := 0; i < 1_000_000; i++ {
		n := 8 + rng.Intn(len(buf)-8)
		rng.Read(buf[:n])
		if i%2 == 0 { // half of them with a valid-looking VXLAN header
			copy(buf, []byte{0x08, 0, 0, 0, 0, 0, 42, 0})
		}
		if d.decode(layers.LayerTypeEthernet, udp4(uint16(1024+rng.Intn(3000)), buf[:n]), &p) {
			t.Fatalf("random datagram %d decoded as %v", i, p.Tunnel)
		}
	}
}

// Tunnels nest up to maxTunnelDepth; the outermost is the one reported.
func TestTunnelNesting(t *testing.T) {
	_, frame := firstTunnelled(t, "ipip-nginx.pcap")
	ip := frame[14:] // outer IPv4, inner IPv4, TCP
	wrap := func(inner []byte, src byte) []byte {
		h := make([]byte, 20, 20+len(inner))
		h[0], h[8], h[9] = 0x45, 64, 4
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(inner)))
		copy(h[12:], []byte{192, 0, 2, src, 192, 0, 2, 99})
		binary.BigEndian.PutUint16(h[10:], ^ipSum(h))
		return append(h, inner...)
	}
	d := newDecoder()
	var p Packet
	two := wrap(ip, 7)
	if !d.decode(layers.LayerTypeIPv4, two, &p) || p.Tunnel.Src != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("two deep: %v", p.Tunnel)
	}
	if d.decode(layers.LayerTypeIPv4, wrap(wrap(two, 8), 9), &p) {
		t.Error("four tunnels deep decoded")
	}
}

// FuzzDecode: any bytes under any link type decode without a panic, and a
// packet taken as TCP has its header and a sane cut.
func FuzzDecode(f *testing.F) {
	for _, file := range []string{"vxlan8472-haproxy.pcap", "vxlan-any-nginx.pcap", "geneve-nginx.pcap", "gre-nginx.pcap", "ipip-nginx.pcap"} {
		first, frame := firstTunnelled(f, file)
		f.Add(uint8(firstIndex(first)), frame)
	}
	f.Add(uint8(0), udp4(4789, []byte{0x08, 0, 0, 0, 0, 0, 1, 0}))
	f.Add(uint8(0), udp4(6081, []byte{0, 0, 0x65, 0x58, 0, 0, 1, 0}))
	d := newDecoder()
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		var p Packet
		if d.decode(fuzzFirst[int(which)%len(fuzzFirst)], data, &p) {
			if p.TCP == nil || p.Cut < 0 || len(p.Net.Src().Raw()) == 0 {
				t.Fatalf("decoded %+v", p)
			}
		}
	})
}

var fuzzFirst = []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLinuxSLL2,
	layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6, layerTypeRawIP}

func firstIndex(l gopacket.LayerType) int {
	for i, x := range fuzzFirst {
		if x == l {
			return i
		}
	}
	return 0
}
