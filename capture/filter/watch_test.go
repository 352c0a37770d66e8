package filter_test

import (
	"net/netip"
	"testing"

	"github.com/wsdiag/wsdiag/capture/filter"
)

func TestWatch(t *testing.T) {
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
		got := filter.Watch(c.ports, ups)
		if got != c.want {
			t.Errorf("Watch(%v, %v) = %q, want %q", c.ports, c.ups, got, c.want)
		}
		if _, err := filter.Parse(got); err != nil {
			t.Errorf("Watch(%v, %v) does not parse: %v", c.ports, c.ups, err)
		}
	}
	if got := filter.Combine("port 80 or port 81", "host 10.0.0.1"); got != "(port 80 or port 81) and (host 10.0.0.1)" {
		t.Errorf("Combine = %q", got)
	}
	if got := filter.Combine("", " ip "); got != "ip" {
		t.Errorf("Combine = %q", got)
	}
}
