package filter

import (
	"net/netip"
	"strconv"
	"strings"
)

// Watch is the filter expression for the traffic wsdiag watches: TCP
// on one of clientPorts, or to/from one of upstreams. With no upstreams it
// is "" (all TCP): HTTP is recognised by content on any port. An upstream
// with an unspecified address matches its port on any address; one with
// port 0 matches every port of its address.
func Watch(clientPorts []uint16, upstreams []netip.AddrPort) string {
	if len(upstreams) == 0 {
		return ""
	}
	var parts []string
	for _, p := range clientPorts {
		parts = append(parts, "port "+strconv.Itoa(int(p)))
	}
	for _, u := range upstreams {
		a, port := u.Addr().Unmap(), u.Port()
		switch {
		case !a.IsValid() || a.IsUnspecified():
			if port == 0 {
				return "" // everything
			}
			parts = append(parts, "port "+strconv.Itoa(int(port)))
		case port == 0:
			parts = append(parts, "host "+a.String())
		default:
			ps := strconv.Itoa(int(port))
			parts = append(parts, "(src host "+a.String()+" and src port "+ps+") or (dst host "+a.String()+" and dst port "+ps+")")
		}
	}
	return strings.Join(parts, " or ")
}

// Combine returns "(a) and (b)", or the non-empty one.
func Combine(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + ") and (" + b + ")"
}
