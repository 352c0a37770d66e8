package filter_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/internal/frames"
)

// testPkt is a test packet: an Ethernet frame, and whether capture's
// decoder takes it for a TCP segment.
type testPkt struct {
	name string
	eth  []byte
	tcp  bool
}

func testPackets(t testing.TB) []testPkt {
	udp := func() []byte {
		eth := &layers.Ethernet{SrcMAC: frames.MACA, DstMAC: frames.MACB, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		u := &layers.UDP{SrcPort: 80, DstPort: 80}
		u.SetNetworkLayerForChecksum(ip)
		return frames.Serialize(t, eth, ip, u, gopacket.Payload("x"))
	}
	frag := func() []byte {
		eth := &layers.Ethernet{SrcMAC: frames.MACA, DstMAC: frames.MACB, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4MoreFragments,
			SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Window: 1}
		tcp.SetNetworkLayerForChecksum(ip)
		return frames.Serialize(t, eth, ip, tcp, gopacket.Payload("frag"))
	}
	arp := func() []byte {
		eth := &layers.Ethernet{SrcMAC: frames.MACA, DstMAC: frames.MACB, EthernetType: layers.EthernetTypeARP}
		a := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: 1, SourceHwAddress: frames.MACA, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: frames.MACB, DstProtAddress: []byte{10, 0, 0, 2}}
		return frames.Serialize(t, eth, a)
	}
	hbh := func() []byte {
		// IPv6 with a hop-by-hop header before TCP (the decoder follows it, so does the filter)
		b := frames.TCP6(t, "2001:db8::1", "2001:db8::2", 40000, 80, "")
		ip := b[14:]
		ext := []byte{6, 0, 1, 4, 0, 0, 0, 0} // next=TCP, len 0, PadN
		out := append([]byte(nil), b[:14+40]...)
		out = append(out, ext...)
		out = append(out, ip[40:]...)
		out[14+6] = 0 // hop-by-hop
		plen := int(out[14+4])<<8 | int(out[14+5]) + 8
		out[14+4], out[14+5] = byte(plen>>8), byte(plen)
		return out
	}
	opt := layers.IPv4Option{OptionType: 1} // NOP; serialised padded to 4 bytes
	return []testPkt{
		{"v4 client->proxy:80", frames.TCP4(t, "10.0.0.1", "10.0.0.2", 40000, 80, "GET / HTTP/1.1\r\n"), true},
		{"v4 backend:8081->lo", frames.TCP4(t, "192.168.1.5", "127.0.0.1", 8081, 51000, "HTTP/1.1 101\r\n"), true},
		{"v4 options 443->5555", frames.TCP4(t, "10.1.2.3", "10.0.0.2", 443, 5555, "tls", opt, opt, opt, opt), true},
		{"v4 10.0.0.2:80->10.0.0.1", frames.TCP4(t, "10.0.0.2", "10.0.0.1", 80, 40000, ""), true},
		{"v4 port 0", frames.TCP4(t, "10.0.0.3", "10.255.255.255", 0, 65535, ""), true},
		{"v6 client->proxy:80", frames.TCP6(t, "2001:db8::1", "2001:db8::2", 40000, 80, "GET /ws HTTP/1.1\r\n"), true},
		{"v6 ::1:8081->fd00::5", frames.TCP6(t, "::1", "fd00::5", 8081, 60000, "x"), true},
		{"v6 mapped", frames.TCP6(t, "::ffff:10.0.0.1", "2001:db8:ffff::1", 1024, 443, ""), true},
		{"udp", udp(), false},
		{"v4 fragment", frag(), false},
		{"arp", arp(), false},
		{"v6 hop-by-hop", hbh(), true},
	}
}

// toLink is an Ethernet frame as a packet of link type lt.
func toLink(eth []byte, lt layers.LinkType) []byte {
	switch lt {
	case layers.LinkTypeEthernet:
		return eth
	case layers.LinkTypeRaw:
		return eth[14:]
	case layers.LinkTypeLinuxSLL:
		h := make([]byte, 16)
		h[1] = 0 // to us
		h[3] = 1 // ARPHRD_ETHER
		h[5] = 6
		copy(h[6:], eth[6:12])
		h[14], h[15] = eth[12], eth[13]
		return append(h, eth[14:]...)
	case layers.LinkTypeLinuxSLL2:
		h := make([]byte, 20)
		h[0], h[1] = eth[12], eth[13]
		h[7] = 1 // ifindex
		h[9] = 1 // ARPHRD_ETHER
		h[11] = 6
		copy(h[12:], eth[6:12])
		return append(h, eth[14:]...)
	}
	panic("link type")
}

// segment is a TCP segment as capture's reader decoded it.
type segment struct {
	net gopacket.Flow
	tcp layers.TCP
}

// decode runs the packets, as link type lt, through capture's reader (a
// pcapng written by capture.Writer): what the reader makes of them, by
// packet index, nil where it found no TCP segment. So the filter is held
// to the decoder whose packets the Matcher sees.
func decode(tb testing.TB, lt layers.LinkType, pkts [][]byte) []*segment {
	tb.Helper()
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, lt)
	if err != nil {
		tb.Fatal(err)
	}
	for i, p := range pkts {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(int64(i+1), 0), Length: len(p)}, p); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	r, err := capture.NewReader("filter-test.pcapng", &buf)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	out := make([]*segment, len(pkts))
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out[p.CI.Timestamp.Unix()-1] = &segment{p.Net, *p.TCP}
	}
}

// decodeOne is decode of one Ethernet frame, which must be TCP.
func decodeOne(tb testing.TB, eth []byte) *segment {
	tb.Helper()
	s := decode(tb, layers.LinkTypeEthernet, [][]byte{eth})[0]
	if s == nil {
		tb.Fatal("not decoded as TCP")
	}
	return s
}
