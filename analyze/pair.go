package analyze

import (
	"net/netip"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// pairScore rates y as the upstream leg that the proxy at x's server
// opened for x: 0 means it cannot be. A shared Sec-WebSocket-Key is exact
// (nginx and most proxies forward it untouched even when they drop
// Upgrade); otherwise method, path, forwarding headers and User-Agent
// have to agree, in time order.
func pairScore(x, y *exchange) int {
	xr, yr := x.req, y.req
	if yr.ID == xr.ID || yr.Start.Before(xr.Start) {
		return 0
	}
	// The legs of different clients of one proxy share the proxy's address;
	// a hop always moves to another server.
	if yr.Server == xr.Server {
		return 0
	}
	// The proxy asks upstream before it answers, and the upstream answer
	// comes first.
	if x.resp != nil {
		if yr.Start.After(x.resp.Start) {
			return 0
		}
		if y.resp != nil && y.resp.Start.After(x.resp.End) {
			return 0
		}
	} else if t, ok := x.answeredAt(); ok && yr.Start.After(t) {
		return 0 // x's connection ended unanswered before y began
	}
	xk, yk := x.key, y.key
	xok, yok := xk != "", yk != ""
	switch {
	case xok && yok:
		if xk == yk {
			return scoreExact
		}
		return 0
	case !xok && yok && !h2WebSocket(xr) && !xr.Truncated:
		return 0 // a proxy does not invent a key (but one from HTTP/2 must, and the capture may have cut x's)
	case xok && x.resp != nil && x.resp.Status == 101 && y.resp != nil && y.resp.Status != 101:
		// A proxy answers 101 only after its upstream did (it cannot tunnel
		// otherwise): a keyless request answered otherwise is another
		// client's (socket.io polls alongside its upgrade, same path and
		// User-Agent).
		return 0
	}
	if xr.Method != yr.Method && !(h2WebSocket(xr) && yr.Method == "GET") {
		return 0
	}
	s := 0
	xp, yp := x.path, y.path
	switch {
	case xp == yp:
		s += 3
	case lastSegment(xp) == lastSegment(yp) && lastSegment(xp) != "":
		s++
	}
	if forwardedFor(y, xr.Client.Addr()) || forwardedFor(y, proxySource(xr).Addr()) {
		s += 3
	}
	if src := proxySource(yr); src.IsValid() && src == xr.Client {
		// y began with a PROXY header naming x's client, port and all
		s += scoreExact
	}
	if x.hasUA && y.ua == x.ua {
		s += 2
	}
	if x.hasOrigin && y.origin == x.origin {
		s++
	}
	if yr.Client.Addr() == xr.Server.Addr() {
		s++
	}
	if s < 3 {
		return 0
	}
	return s
}

const scoreExact = 100

func confidence(score int) Confidence {
	switch {
	case score >= scoreExact:
		return ConfExact
	case score >= 8:
		return ConfHigh
	case score >= 5:
		return ConfMedium
	}
	return ConfLow
}

// forwardedFor reports whether y's X-Forwarded-For or X-Real-IP names ip.
func forwardedFor(y *exchange, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, a := range y.xff {
		if a == ip {
			return true
		}
	}
	return false
}

// maxForwarded bounds the addresses kept from forwarding headers.
const maxForwarded = 64

// forwardedAddrs parses the addresses in X-Forwarded-For and X-Real-IP
// ("ip", "ip:port", "[ip6]:port"), unmapped; others are skipped.
func forwardedAddrs(h reassembly.Headers) []netip.Addr {
	var out []netip.Addr
	for _, f := range h {
		if !strings.EqualFold(f.Name, "X-Forwarded-For") && !strings.EqualFold(f.Name, "X-Real-IP") {
			continue
		}
		for v := f.Value; v != "" && len(out) < maxForwarded; {
			var e string
			e, v, _ = strings.Cut(v, ",")
			e = strings.TrimSpace(e)
			a, err := netip.ParseAddr(strings.Trim(e, "[]"))
			if err != nil {
				ap, err := netip.ParseAddrPort(e)
				if err != nil {
					continue
				}
				a = ap.Addr()
			}
			out = append(out, a.Unmap())
		}
	}
	return out
}

// pathOf returns the path of a request target (no query).
func pathOf(target string) string {
	if i := strings.Index(target, "://"); i >= 0 { // absolute form
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			target = rest[j:]
		} else {
			target = "/"
		}
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return target
}

func lastSegment(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
