package filter_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/wsdiag/wsdiag/capture/filter"
	"github.com/wsdiag/wsdiag/capture/internal/frames"
)

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

// expected results on testPackets, in order (udp, fragment and arp are never accepted;
// the last packet is the hop-by-hop copy of packet 5)
var cases = []struct {
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

var linkTypes = []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2}

func TestBPF(t *testing.T) {
	pkts := testPackets(t)
	for _, lt := range linkTypes {
		for _, c := range cases {
			raw, err := filter.Compile(c.expr, lt)
			if err != nil {
				t.Fatalf("Compile(%q, %s): %v", c.expr, lt, err)
			}
			got := make([]byte, len(pkts))
			for i, p := range pkts {
				got[i] = '0'
				if runBPFVM(t, raw, toLink(p.eth, lt)) {
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

func TestBPFIPv4OnlyLinkType(t *testing.T) {
	raw, err := filter.Compile("port 80", layers.LinkTypeIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if !runBPFVM(t, raw, frames.TCP4(t, "10.0.0.1", "10.0.0.2", 1, 80, "")[14:]) {
		t.Errorf("IPv4 link type: port 80 rejected")
	}
	raw, err = filter.Compile("ip6", layers.LinkTypeIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 3 {
		t.Errorf("ip6 on an IPv4 link type should fold to reject, got %d instructions", len(raw))
	}
}

func TestBPFTruncated(t *testing.T) {
	raw, err := filter.Compile("not port 80", layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	p := frames.TCP4(t, "10.0.0.1", "10.0.0.2", 40000, 81, "")
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
func TestBPFLongJumps(t *testing.T) {
	var parts []string
	for p := 1; p <= 300; p++ {
		parts = append(parts, fmt.Sprintf("port %d", 10000+p))
	}
	expr := "(" + strings.Join(parts, " or ") + ") and host 10.0.0.1 or port 80"
	raw, err := filter.Compile(expr, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 600 {
		t.Fatalf("only %d instructions", len(raw))
	}
	m, err := filter.NewMatcher(expr)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    []byte
		want bool
	}{
		{frames.TCP4(t, "10.0.0.1", "10.0.0.2", 10001, 9, ""), true},
		{frames.TCP4(t, "10.0.0.1", "10.0.0.2", 9, 10300, ""), true},
		{frames.TCP4(t, "10.0.0.1", "10.0.0.2", 9, 10301, ""), false},
		{frames.TCP4(t, "10.0.0.9", "10.0.0.2", 9, 10150, ""), false},
		{frames.TCP4(t, "10.0.0.9", "10.0.0.2", 80, 10150, ""), true},
		{frames.TCP6(t, "::1", "::2", 10150, 80, ""), true},
		{frames.TCP6(t, "::1", "::2", 10150, 81, ""), false},
	} {
		if got := runBPFVM(t, raw, c.p); got != c.want {
			t.Errorf("VM: %v, want %v", got, c.want)
		}
		s := decodeOne(t, c.p)
		if got := m.Match(s.net, &s.tcp); got != c.want {
			t.Errorf("Matcher: %v, want %v", got, c.want)
		}
	}
	var huge []string
	for p := 0; p < 3000; p++ {
		huge = append(huge, fmt.Sprintf("port %d", p))
	}
	if _, err := filter.Compile(strings.Join(huge, " or "), layers.LinkTypeEthernet); err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Errorf("huge filter: %v, want too complex", err)
	}
}
