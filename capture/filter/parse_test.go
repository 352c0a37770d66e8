package filter_test

import (
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture/filter"
)

func TestParse(t *testing.T) {
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
		e, err := filter.Parse(c.in)
		if err != nil {
			t.Errorf("parse %q: %v", c.in, err)
			continue
		}
		if got := e.String(); got != c.want {
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
		_, err := filter.Parse(c.in)
		if err == nil {
			t.Errorf("parse %q: no error, want %q", c.in, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse %q: error %q, want it to contain %q", c.in, err, c.want)
		}
		if _, ok := err.(*filter.Error); !ok {
			t.Errorf("parse %q: error %T, want *filter.Error", c.in, err)
		}
		if strings.Contains(c.want, "unsupported token") && !strings.Contains(err.Error(), filter.Syntax) {
			t.Errorf("parse %q: error %q does not list what is supported", c.in, err)
		}
	}
	if _, err := filter.NewMatcher("udp"); err == nil || !strings.Contains(err.Error(), "supported:") {
		t.Errorf("NewMatcher(udp) = %v, want the supported list", err)
	}
	if _, err := filter.Compile("port 80", layers.LinkTypeNull); err == nil {
		t.Errorf("Compile for BSD loopback: no error")
	}
}
