package capture

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

func TestFilterParse(t *testing.T) {
	good := []struct{ in, want string }{
		{"", "tcp"},
		{"   ", "tcp"},
		{"tcp", "tcp"},
		{"ip", "ip"},
		{"ip6", "ip6"},
		{"host 10.0.0.1", "host 10.0.0.1"},
		{"src host 10.0.0.1", "src host 10.0.0.1"},
		{"dst host ::1", "dst host ::1"},
		{"net 10.0.0.0/8", "net 10.0.0.0/8"},
		{"net 10.0.0.1", "host 10.0.0.1"},
		{"src net 2001:db8::/32", "src net 2001:db8::/32"},
		{"port 80", "port 80"},
		{"src port 80", "src port 80"},
		{"dst port 65535", "dst port 65535"},
		{"portrange 1000-2000", "portrange 1000-2000"},
		{"portrange 2000-1000", "portrange 1000-2000"},
		{"tcp port 80", "port 80"},
		{"tcp dst port 80", "dst port 80"},
		{"ip host 10.0.0.1", "host 10.0.0.1"},
		{"ip6 net fd00::/8", "net fd00::/8"},
		{"10.0.0.1", "host 10.0.0.1"},
		{"10.0.0.0/8", "net 10.0.0.0/8"},
		{"src 10.0.0.1", "src host 10.0.0.1"},
		{"dst 10.0.0.0/8", "dst net 10.0.0.0/8"},
		{"src or dst port 80", "port 80"},
		{"src and dst net 10.0.0.0/8", "src and dst net 10.0.0.0/8"},
		{"port 80 or 443", "(port 80 or port 443)"},
		{"dst port 80 or 443 or 8080", "((dst port 80 or dst port 443) or dst port 8080)"},
		{"host 10.0.0.1 or 10.0.0.2", "(host 10.0.0.1 or host 10.0.0.2)"},
		{"not host 10.0.0.1 and 10.0.0.2", "(not host 10.0.0.1 and host 10.0.0.2)"},
		// pcap: and/or have equal precedence, left to right
		{"port 80 or port 81 and ip", "((port 80 or port 81) and ip)"},
		{"port 80 and port 81 or ip", "((port 80 and port 81) or ip)"},
		{"port 80 || port 81 && !ip6", "((port 80 or port 81) and not ip6)"},
		{"not (port 80 or port 81)", "not (port 80 or port 81)"},
		{"!port 80", "not port 80"},
		{"((ip))", "ip"},
		{"tcp and (host 10.0.0.1 or net 192.168.0.0/16) and not port 22",
			"((tcp and (host 10.0.0.1 or net 192.168.0.0/16)) and not port 22)"},
	}
	for _, c := range good {
		n, err := parseFilter(c.in)
		if err != nil {
			t.Errorf("parse %q: %v", c.in, err)
			continue
		}
		if got := n.String(); got != c.want {
			t.Errorf("parse %q = %s, want %s", c.in, got, c.want)
		}
	}

	bad := []struct{ in, want string }{
		{"udp", `"udp" is not supported (wsdiag captures TCP only)`},
		{"udp port 53", `"udp" is not supported`},
		{"vlan 10", `"vlan" is not supported (link-layer filters`},
		{"ether host 00:11:22:33:44:55", `"ether" is not supported`},
		{"tcp[13] & 2 != 0", `unsupported token "[" at offset 3`},
		{"greater 100", `"greater" is not supported (not in the supported subset)`},
		{"host example.com", "only numeric IPv4/IPv6 addresses are supported"},
		{"host 10.0.0.0/8", `for a CIDR use "net 10.0.0.0/8"`},
		{"host 10.0.0.256", "not a valid IPv4 or IPv6 address"},
		{"host fe80::1%eth0", "zone"},
		{"net 10.0.0.1/8", "non-network bits set (did you mean 10.0.0.0/8?)"},
		{"net 10.0.0.0/33", "prefix length must be 0-32"},
		{"port http", "service names are not supported"},
		{"port 65536", "expected a port number 0-65535"},
		{"port 1000-2000", `use "portrange 1000-2000"`},
		{"portrange 1000", "expected A-B"},
		{"port", "port needs a value"},
		{"host", "host needs a value"},
		{"port 80 and", "unexpected end of expression"},
		{"(port 80", `unbalanced "("`},
		{"port 80)", `unbalanced ")"`},
		{"port 80 port 81", `expected "and" or "or" before "port"`},
		{"80", "a value needs a keyword before it"},
		{"ip host 2001:db8::1", "not an IPv4 address"},
		{"ip6 host 10.0.0.1", "not an IPv6 address"},
		{"tcp host 10.0.0.1", `"tcp host" is not supported`},
		{"ip port 80", `"ip port" is not supported`},
		{"src foo", "expected host, net, port or portrange"},
		{"host 10.0.0.1 & port 80", `unsupported token "&"`},
		{"not", "unexpected end of expression"},
	}
	for _, c := range bad {
		_, err := parseFilter(c.in)
		if err == nil {
			t.Errorf("parse %q: no error, want %q", c.in, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse %q: error %q, want it to contain %q", c.in, err, c.want)
		}
		if _, ok := err.(*FilterError); !ok {
			t.Errorf("parse %q: error %T, want *FilterError", c.in, err)
		}
		if strings.Contains(c.want, "unsupported token") && !strings.Contains(err.Error(), FilterSyntax) {
			t.Errorf("parse %q: error %q does not list what is supported", c.in, err)
		}
	}
	if _, err := NewMatcher("udp"); err == nil || !strings.Contains(err.Error(), "supported:") {
		t.Errorf("NewMatcher(udp) = %v, want the supported list", err)
	}
	if _, err := CompileFilter("port 80", layers.LinkTypeNull); err == nil {
		t.Errorf("CompileFilter for BSD loopback: no error")
	}
}

func TestWatchFilter(t *testing.T) {
	cases := []struct {
		ports []uint16
		ups   []string
		want  string
	}{
		{[]uint16{80, 443}, nil, ""},
		{[]uint16{80}, []string{"10.0.0.9:8081"}, "port 80 or (src host 10.0.0.9 and src port 8081) or (dst host 10.0.0.9 and dst port 8081)"},
		{nil, []string{"[::1]:9000", "0.0.0.0:3000", "10.1.1.1:0"}, "(src host ::1 and src port 9000) or (dst host ::1 and dst port 9000) or port 3000 or host 10.1.1.1"},
		{[]uint16{80}, []string{"0.0.0.0:0"}, ""},
	}
	for _, c := range cases {
		var ups []netip.AddrPort
		for _, u := range c.ups {
			ups = append(ups, netip.MustParseAddrPort(u))
		}
		got := WatchFilter(c.ports, ups)
		if got != c.want {
			t.Errorf("WatchFilter(%v, %v) = %q, want %q", c.ports, c.ups, got, c.want)
		}
		if _, err := parseFilter(got); err != nil {
			t.Errorf("WatchFilter(%v, %v) does not parse: %v", c.ports, c.ups, err)
		}
	}
	if got := CombineFilters("port 80 or port 81", "host 10.0.0.1"); got != "(port 80 or port 81) and (host 10.0.0.1)" {
		t.Errorf("CombineFilters = %q", got)
	}
	if got := CombineFilters("", " ip "); got != "ip" {
		t.Errorf("CombineFilters = %q", got)
	}
}

// ---------------------------------------------------------------------------
// test packets

type filterTestPkt struct {
	name string
	eth  []byte // Ethernet frame
	tcp  bool   // decodes as a TCP segment
}

func mkSerialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	testMACA = net.HardwareAddr{0, 1, 2, 3, 4, 5}
	testMACB = net.HardwareAddr{0, 1, 2, 3, 4, 6}
)

func mkTCP4(t testing.TB, src, dst string, sp, dp uint16, payload string, opts ...layers.IPv4Option) []byte {
	eth := &layers.Ethernet{SrcMAC: testMACA, DstMAC: testMACB, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4(), Options: opts}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: 1000, Ack: 1, ACK: true, PSH: true, Window: 512}
	tcp.SetNetworkLayerForChecksum(ip)
	return mkSerialize(t, eth, ip, tcp, gopacket.Payload(payload))
}

func mkTCP6(t testing.TB, src, dst string, sp, dp uint16, payload string) []byte {
	eth := &layers.Ethernet{SrcMAC: testMACA, DstMAC: testMACB, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: 1000, Ack: 1, ACK: true, Window: 512}
	tcp.SetNetworkLayerForChecksum(ip)
	return mkSerialize(t, eth, ip, tcp, gopacket.Payload(payload))
}

func filterTestPackets(t testing.TB) []filterTestPkt {
	udp := func() []byte {
		eth := &layers.Ethernet{SrcMAC: testMACA, DstMAC: testMACB, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		u := &layers.UDP{SrcPort: 80, DstPort: 80}
		u.SetNetworkLayerForChecksum(ip)
		return mkSerialize(t, eth, ip, u, gopacket.Payload("x"))
	}
	frag := func() []byte {
		eth := &layers.Ethernet{SrcMAC: testMACA, DstMAC: testMACB, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4MoreFragments,
			SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Window: 1}
		tcp.SetNetworkLayerForChecksum(ip)
		return mkSerialize(t, eth, ip, tcp, gopacket.Payload("frag"))
	}
	arp := func() []byte {
		eth := &layers.Ethernet{SrcMAC: testMACA, DstMAC: testMACB, EthernetType: layers.EthernetTypeARP}
		a := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: 1, SourceHwAddress: testMACA, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: testMACB, DstProtAddress: []byte{10, 0, 0, 2}}
		return mkSerialize(t, eth, a)
	}
	hbh := func() []byte {
		// IPv6 with a hop-by-hop header before TCP (the decoder follows it, so does the filter)
		b := mkTCP6(t, "2001:db8::1", "2001:db8::2", 40000, 80, "")
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
	return []filterTestPkt{
		{"v4 client->proxy:80", mkTCP4(t, "10.0.0.1", "10.0.0.2", 40000, 80, "GET / HTTP/1.1\r\n"), true},
		{"v4 backend:8081->lo", mkTCP4(t, "192.168.1.5", "127.0.0.1", 8081, 51000, "HTTP/1.1 101\r\n"), true},
		{"v4 options 443->5555", mkTCP4(t, "10.1.2.3", "10.0.0.2", 443, 5555, "tls", opt, opt, opt, opt), true},
		{"v4 10.0.0.2:80->10.0.0.1", mkTCP4(t, "10.0.0.2", "10.0.0.1", 80, 40000, ""), true},
		{"v4 port 0", mkTCP4(t, "10.0.0.3", "10.255.255.255", 0, 65535, ""), true},
		{"v6 client->proxy:80", mkTCP6(t, "2001:db8::1", "2001:db8::2", 40000, 80, "GET /ws HTTP/1.1\r\n"), true},
		{"v6 ::1:8081->fd00::5", mkTCP6(t, "::1", "fd00::5", 8081, 60000, "x"), true},
		{"v6 mapped", mkTCP6(t, "::ffff:10.0.0.1", "2001:db8:ffff::1", 1024, 443, ""), true},
		{"udp", udp(), false},
		{"v4 fragment", frag(), false},
		{"arp", arp(), false},
		{"v6 hop-by-hop", hbh(), true},
	}
}

// link-layer variants of an Ethernet frame
func filterToLink(eth []byte, lt layers.LinkType) []byte {
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

func runBPFVM(t *testing.T, raw []bpf.RawInstruction, pkt []byte) bool {
	t.Helper()
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		prog[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatalf("vm.Run: %v", err)
	}
	return n > 0
}

// expected results on filterTestPackets, in order (udp, fragment and arp are never accepted;
// the last packet is the hop-by-hop copy of packet 5)
var filterCases = []struct {
	expr string
	want string // one char per packet: 1 accept, 0 reject
}{
	{"", "11111111" + "0001"},
	{"tcp", "11111111" + "0001"},
	{"ip", "11111000" + "0000"},
	{"ip6", "00000111" + "0001"},
	{"not ip", "00000111" + "0001"},
	{"host 10.0.0.1", "10010000" + "0000"},
	{"src host 10.0.0.1", "10000000" + "0000"},
	{"dst host 10.0.0.1", "00010000" + "0000"},
	{"host 10.0.0.2 and host 10.0.0.1", "10010000" + "0000"},
	{"net 10.0.0.0/8", "10111000" + "0000"},
	{"net 10.0.0.0/31", "10010000" + "0000"},
	{"net 10.0.0.0/30", "10111000" + "0000"},
	{"net 0.0.0.0/0", "11111000" + "0000"},
	{"not net 10.0.0.0/8", "01000111" + "0001"},
	{"src and dst net 10.0.0.0/8", "10111000" + "0000"},
	{"dst net 127.0.0.0/8", "01000000" + "0000"},
	{"host 2001:db8::2", "00000100" + "0001"},
	{"net 2001:db8::/32", "00000101" + "0001"},
	{"net 2001:db8::/31", "00000101" + "0001"},
	{"net 2001:db8::/127", "00000100" + "0001"},
	{"net 2001:db8:ff00::/40", "00000001" + "0000"},
	{"src net ::/0", "00000111" + "0001"},
	{"host ::1", "00000010" + "0000"},
	{"host ::ffff:10.0.0.1", "00000001" + "0000"},
	{"src net fd00::/8", "00000000" + "0000"},
	{"dst net fd00::/8", "00000010" + "0000"},
	{"port 80", "10010100" + "0001"},
	{"src port 80", "00010000" + "0000"},
	{"dst port 80", "10000100" + "0001"},
	{"port 8081", "01000010" + "0000"},
	{"port 443", "00100001" + "0000"},
	{"dst port 5555", "00100000" + "0000"},
	{"port 0", "00001000" + "0000"},
	{"port 65535", "00001000" + "0000"},
	{"portrange 0-1023", "10111101" + "0001"},
	{"portrange 1024-65535", "11111111" + "0001"},
	{"src portrange 1024-65535", "11000111" + "0001"},
	{"dst portrange 50000-60000", "01000010" + "0000"},
	{"portrange 81-442", "00000000" + "0000"},
	{"src and dst portrange 1024-65535", "01000010" + "0000"},
	{"not port 80", "01101011" + "0000"},
	{"port 80 or 443", "10110101" + "0001"},
	{"port 80 or port 8081 and ip", "11010000" + "0000"},
	{"port 80 or (port 8081 and ip)", "11010100" + "0001"},
	{"ip6 and not port 80 or host 10.1.2.3", "00100011" + "0000"},
	{"tcp port 8081 or ip6 host ::1", "01000010" + "0000"},
	{"!(host 10.0.0.1 || ip6) && dst portrange 0-1023", "00000000" + "0000"},
	{"(host 10.0.0.1 or ip6) and dst portrange 0-1023", "10000101" + "0001"},
	{"10.0.0.3", "00001000" + "0000"},
}

var filterLinkTypes = []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2}

func TestFilterBPF(t *testing.T) {
	pkts := filterTestPackets(t)
	for _, lt := range filterLinkTypes {
		for _, c := range filterCases {
			raw, err := CompileFilter(c.expr, lt)
			if err != nil {
				t.Fatalf("CompileFilter(%q, %s): %v", c.expr, lt, err)
			}
			got := make([]byte, len(pkts))
			for i, p := range pkts {
				got[i] = '0'
				if runBPFVM(t, raw, filterToLink(p.eth, lt)) {
					got[i] = '1'
				}
			}
			if string(got) != c.want {
				t.Errorf("%s: %q accepts %s, want %s", lt, c.expr, got, c.want)
				for i := range got {
					if got[i] != c.want[i] {
						t.Logf("  %s: got %c", pkts[i].name, got[i])
					}
				}
			}
		}
	}
}

func TestFilterBPFIPv4OnlyLinkType(t *testing.T) {
	raw, err := CompileFilter("port 80", layers.LinkTypeIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if !runBPFVM(t, raw, mkTCP4(t, "10.0.0.1", "10.0.0.2", 1, 80, "")[14:]) {
		t.Errorf("IPv4 link type: port 80 rejected")
	}
	raw, err = CompileFilter("ip6", layers.LinkTypeIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 3 {
		t.Errorf("ip6 on an IPv4 link type should fold to reject, got %d instructions", len(raw))
	}
}

func TestFilterBPFTruncated(t *testing.T) {
	raw, err := CompileFilter("not port 80", layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	p := mkTCP4(t, "10.0.0.1", "10.0.0.2", 40000, 81, "")
	for n := 0; n < 14+20+4; n++ {
		if runBPFVM(t, raw, p[:n]) {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	if !runBPFVM(t, raw, p[:14+20+4]) {
		t.Errorf("ports present: rejected")
	}
}

// A long expression needs jumps farther than a conditional branch reaches.
func TestFilterBPFLongJumps(t *testing.T) {
	var parts []string
	for p := 1; p <= 300; p++ {
		parts = append(parts, fmt.Sprintf("port %d", 10000+p))
	}
	expr := "(" + strings.Join(parts, " or ") + ") and host 10.0.0.1 or port 80"
	raw, err := CompileFilter(expr, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 600 {
		t.Fatalf("only %d instructions", len(raw))
	}
	m, err := NewMatcher(expr)
	if err != nil {
		t.Fatal(err)
	}
	dec := newDecoder()
	var pkt Packet
	for _, c := range []struct {
		p    []byte
		want bool
	}{
		{mkTCP4(t, "10.0.0.1", "10.0.0.2", 10001, 9, ""), true},
		{mkTCP4(t, "10.0.0.1", "10.0.0.2", 9, 10300, ""), true},
		{mkTCP4(t, "10.0.0.1", "10.0.0.2", 9, 10301, ""), false},
		{mkTCP4(t, "10.0.0.9", "10.0.0.2", 9, 10150, ""), false},
		{mkTCP4(t, "10.0.0.9", "10.0.0.2", 80, 10150, ""), true},
		{mkTCP6(t, "::1", "::2", 10150, 80, ""), true},
		{mkTCP6(t, "::1", "::2", 10150, 81, ""), false},
	} {
		if got := runBPFVM(t, raw, c.p); got != c.want {
			t.Errorf("VM: %v, want %v", got, c.want)
		}
		if !dec.decode(layers.LayerTypeEthernet, c.p, &pkt) {
			t.Fatal("decode")
		}
		if got := m.Match(&pkt); got != c.want {
			t.Errorf("Matcher: %v, want %v", got, c.want)
		}
	}
	var huge []string
	for p := 0; p < 3000; p++ {
		huge = append(huge, fmt.Sprintf("port %d", p))
	}
	if _, err := CompileFilter(strings.Join(huge, " or "), layers.LinkTypeEthernet); err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Errorf("huge filter: %v, want too complex", err)
	}
}

func TestFilterMatcher(t *testing.T) {
	pkts := filterTestPackets(t)
	dec := newDecoder()
	var pkt Packet
	for _, c := range filterCases {
		m, err := NewMatcher(c.expr)
		if err != nil {
			t.Fatalf("NewMatcher(%q): %v", c.expr, err)
		}
		if m.String() != c.expr {
			t.Errorf("String() = %q", m.String())
		}
		for _, lt := range filterLinkTypes {
			raw, err := CompileFilter(c.expr, lt)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range pkts {
				data := filterToLink(p.eth, lt)
				ok := dec.decode(firstLayer(lt), data, &pkt)
				if ok != p.tcp {
					t.Fatalf("%s %s: decoded as TCP %v, want %v", lt, p.name, ok, p.tcp)
				}
				if !ok {
					continue
				}
				vm := runBPFVM(t, raw, data)
				got := m.Match(&pkt)
				if got != vm {
					t.Errorf("%s %q on %s: Matcher %v, VM %v", lt, c.expr, p.name, got, vm)
				}
				if want := c.want[i] == '1'; got != want {
					t.Errorf("%s %q on %s: Matcher %v, want %v", lt, c.expr, p.name, got, want)
				}
			}
		}
	}
	var zero Matcher
	if !dec.decode(layers.LayerTypeEthernet, pkts[0].eth, &pkt) || !zero.Match(&pkt) {
		t.Errorf("zero Matcher does not match")
	}
}

func TestFilterMatcherNoAlloc(t *testing.T) {
	m, err := NewMatcher("(host 10.0.0.1 or net 2001:db8::/32) and not portrange 1-79 or src and dst port 80 or ip6")
	if err != nil {
		t.Fatal(err)
	}
	dec := newDecoder()
	var p4, p6 Packet
	if !dec.decode(layers.LayerTypeEthernet, mkTCP4(t, "10.0.0.1", "10.0.0.2", 40000, 80, ""), &p4) {
		t.Fatal("decode")
	}
	dec6 := newDecoder()
	if !dec6.decode(layers.LayerTypeEthernet, mkTCP6(t, "2001:db8::1", "2001:db8::2", 40000, 80, ""), &p6) {
		t.Fatal("decode")
	}
	n := testing.AllocsPerRun(1000, func() {
		if !m.Match(&p4) || !m.Match(&p6) {
			t.Fatal("no match")
		}
	})
	if n != 0 {
		t.Errorf("Match allocates %v times per call", n)
	}
}

func BenchmarkMatcher(b *testing.B) {
	m, _ := NewMatcher("port 80 or port 443 or (src host 10.0.0.9 and src port 8081) or (dst host 10.0.0.9 and dst port 8081)")
	dec := newDecoder()
	var p Packet
	dec.decode(layers.LayerTypeEthernet, mkTCP4(b, "10.0.0.1", "10.0.0.9", 40000, 8081, ""), &p)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Match(&p)
	}
}
