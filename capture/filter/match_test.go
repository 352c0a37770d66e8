package filter_test

import (
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture/filter"
	"github.com/wsdiag/wsdiag/capture/internal/frames"
)

// The Matcher on what capture's reader decodes agrees with the kernel's
// program (run in x/net/bpf's VM) on every test packet and link type, and
// with the expected results.
func TestMatcher(t *testing.T) {
	pkts := testPackets(t)
	segs := map[layers.LinkType][]*segment{}
	for _, lt := range linkTypes {
		var data [][]byte
		for _, p := range pkts {
			data = append(data, toLink(p.eth, lt))
		}
		segs[lt] = decode(t, lt, data)
		for i, p := range pkts {
			if got := segs[lt][i] != nil; got != p.tcp {
				t.Fatalf("%s %s: decoded as TCP %v, want %v", lt, p.name, got, p.tcp)
			}
		}
	}
	for _, c := range cases {
		m, err := filter.NewMatcher(c.expr)
		if err != nil {
			t.Fatalf("NewMatcher(%q): %v", c.expr, err)
		}
		if m.String() != c.expr {
			t.Errorf("String() = %q", m.String())
		}
		for _, lt := range linkTypes {
			raw, err := filter.Compile(c.expr, lt)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range pkts {
				s := segs[lt][i]
				if s == nil {
					continue
				}
				vm := runBPFVM(t, raw, toLink(p.eth, lt))
				got := m.Match(s.net, &s.tcp)
				if got != vm {
					t.Errorf("%s %q on %s: Matcher %v, VM %v", lt, c.expr, p.name, got, vm)
				}
				if want := c.want[i] == '1'; got != want {
					t.Errorf("%s %q on %s: Matcher %v, want %v", lt, c.expr, p.name, got, want)
				}
			}
		}
	}
	var zero filter.Matcher
	if s := segs[layers.LinkTypeEthernet][0]; !zero.Match(s.net, &s.tcp) {
		t.Errorf("zero Matcher does not match")
	}
}

func TestMatcherNoAlloc(t *testing.T) {
	m, err := filter.NewMatcher("(host 10.0.0.1 or net 2001:db8::/32) and not portrange 1-79 or src and dst port 80 or ip6")
	if err != nil {
		t.Fatal(err)
	}
	p4 := decodeOne(t, frames.TCP4(t, "10.0.0.1", "10.0.0.2", 40000, 80, ""))
	p6 := decodeOne(t, frames.TCP6(t, "2001:db8::1", "2001:db8::2", 40000, 80, ""))
	n := testing.AllocsPerRun(1000, func() {
		if !m.Match(p4.net, &p4.tcp) || !m.Match(p6.net, &p6.tcp) {
			t.Fatal("no match")
		}
	})
	if n != 0 {
		t.Errorf("Match allocates %v times per call", n)
	}
}

func BenchmarkMatcher(b *testing.B) {
	m, _ := filter.NewMatcher("port 80 or port 443 or (src host 10.0.0.9 and src port 8081) or (dst host 10.0.0.9 and dst port 8081)")
	p := decodeOne(b, frames.TCP4(b, "10.0.0.1", "10.0.0.9", 40000, 8081, ""))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Match(p.net, &p.tcp)
	}
}
