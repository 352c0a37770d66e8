package filter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture/filter"
)

// FuzzFilter: an expression either is refused with an *Error that points
// into it, or parses; then it prints as an expression that parses to the
// same print, it compiles for every link type (unless too complex), and
// its Matcher, on what capture's reader decodes, agrees with its program
// in the BPF VM on every test packet.
func FuzzFilter(f *testing.F) {
	for _, c := range cases {
		f.Add(c.expr)
	}
	for _, s := range []string{"src or dst port 80", "src and dst net 10.0.0.0/8", "tcp dst port 80 or 443 or 8080",
		"not (port 80 or port 81)", "port 80 || port 81 && !ip6", "ip6 net fd00::/8", "host 10.0.0.1 & port 80",
		"(port 80", "port 80)", "net 10.0.0.1/8", "tcp[13] & 2 != 0", "portrange 2000-1000", "src 10.0.0.1"} {
		f.Add(s)
	}
	pkts := testPackets(f)
	data := map[layers.LinkType][][]byte{}
	segs := map[layers.LinkType][]*segment{}
	for _, lt := range linkTypes {
		for _, p := range pkts {
			data[lt] = append(data[lt], toLink(p.eth, lt))
		}
		segs[lt] = decode(f, lt, data[lt])
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if len(expr) > 2000 {
			return // compiling is quadratic in the worst case; long inputs only slow the search
		}
		e, err := filter.Parse(expr)
		if err != nil {
			var fe *filter.Error
			if !errors.As(err, &fe) || fe.Expr != expr || fe.Pos < 0 || fe.Pos > len(expr) {
				t.Fatalf("Parse(%q): %#v", expr, err)
			}
			return
		}
		s := e.String()
		if again, err := filter.Parse(s); err != nil || again.String() != s {
			t.Fatalf("Parse(%q) prints %q, which parses to %v, %v", expr, s, again, err)
		}
		m, err := filter.NewMatcher(expr)
		if err != nil {
			t.Fatalf("NewMatcher(%q): %v, but it parses", expr, err)
		}
		for _, lt := range linkTypes {
			raw, err := filter.Compile(expr, lt)
			if err != nil {
				if strings.Contains(err.Error(), "too complex") {
					continue
				}
				t.Fatalf("Compile(%q, %s): %v", expr, lt, err)
			}
			for i, sg := range segs[lt] {
				if sg == nil {
					continue
				}
				if got, vm := m.Match(sg.net, &sg.tcp), runBPFVM(t, raw, data[lt][i]); got != vm {
					t.Fatalf("%s %q on %s: Matcher %v, VM %v", lt, expr, pkts[i].name, got, vm)
				}
			}
		}
	})
}
