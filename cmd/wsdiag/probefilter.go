package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wsdiag/wsdiag/analyze/nginxconf"
)

// probe captures its own connections and the upstream connections the
// proxy opens for them, nothing else: the kernel filter names each
// connection's 4-tuple as the probe opens it (its local port is bound
// before the SYN), and the upstream connections by the backends' ports.

// keepTuples is how many of the probe's latest connections the filter
// names: a connection's last packets (its FIN, the server's) may come
// while the next one opens.
const keepTuples = 4

// probeFilter builds the kernel filter of a probe's capture.
type probeFilter struct {
	// upstreams are the backends' addresses (an invalid address: any
	// host, that port); none known: every connection but the proxy's
	// other clients.
	upstreams []netip.AddrPort
	own       []string // "host … and port … and port …", the latest last
}

// add names a new connection of the probe and returns the filter.
func (f *probeFilter) add(local, remote netip.AddrPort) string {
	f.own = append(f.own, fmt.Sprintf("(host %s and port %d and port %d)", remote.Addr().Unmap(), remote.Port(), local.Port()))
	if len(f.own) > keepTuples {
		f.own = f.own[len(f.own)-keepTuples:]
	}
	return f.expr(remote)
}

func (f *probeFilter) expr(remote netip.AddrPort) string {
	parts := append([]string(nil), f.own...)
	if len(f.upstreams) == 0 {
		// The upstream ports are not known: all TCP but the connections
		// of the proxy's other clients.
		parts = append(parts, fmt.Sprintf("not (host %s and port %d)", remote.Addr().Unmap(), remote.Port()))
	}
	for _, u := range f.upstreams {
		if u.Addr().IsValid() {
			parts = append(parts, fmt.Sprintf("(host %s and port %d)", u.Addr().Unmap(), u.Port()))
		} else {
			parts = append(parts, fmt.Sprintf("port %d", u.Port()))
		}
	}
	return "tcp and (" + strings.Join(parts, " or ") + ")"
}

// upstreamFinder is a configuration that names the backends a request
// for host and path, arriving at proxy, goes to.
type upstreamFinder interface {
	upstreams(proxy netip.AddrPort, host, path string) []netip.AddrPort
}

func (n *nginxLocator) upstreams(proxy netip.AddrPort, host, path string) []netip.AddrPort {
	return nginxUpstreams(n.cfg, proxy, host, path)
}

// upstreams of HAProxy are the servers of the backends the frontend names
// (which of them a use_backend picks is not read: all are taken), with
// the frontend's port where a server has none; of Apache, the target of
// the ProxyPass that takes the path.
func (l *lightLocator) upstreams(proxy netip.AddrPort, host, path string) []netip.AddrPort {
	s := l.cfg.Find(proxy, host)
	if s == nil {
		return nil
	}
	var out []netip.AddrPort
	for _, sv := range s.Servers {
		if a, ok := strings.CutPrefix(sv, "ipv4@"); ok {
			sv = a
		} else if a, ok := strings.CutPrefix(sv, "ipv6@"); ok {
			sv = a
		}
		if strings.Contains(sv, "@") || strings.HasPrefix(sv, "/") {
			continue // a unix socket, an abstract namespace: not on TCP
		}
		out = append(out, resolveUpstream(sv, strconv.Itoa(int(proxy.Port())))...)
	}
	if rt := s.Route(pathOnly(path)); rt != nil {
		if hostport, defPort, ok := urlHostPort(rt.Target); ok {
			out = append(out, resolveUpstream(hostport, defPort)...)
		}
	}
	return out
}

// urlHostPort is the "host[:port]" of a proxy's target URL
// ("http://127.0.0.1:9001/ws", "wss://app/") and the port its scheme
// implies; not ok for a unix socket ("http://unix:/run/app.sock:/ws") or
// no scheme.
func urlHostPort(target string) (hostport, defPort string, ok bool) {
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok || strings.HasPrefix(rest, "unix:") {
		return "", "", false
	}
	hostport, _, _ = strings.Cut(rest, "/")
	defPort = "80"
	if scheme == "https" || scheme == "wss" {
		defPort = "443"
	}
	return hostport, defPort, true
}

// nginxUpstreams are the backends that the nginx configuration sends a
// request for host and path, arriving at proxy, to: the proxy_pass of the
// location in force, or the servers of the upstream block it names.
func nginxUpstreams(cfg *nginxconf.Config, proxy netip.AddrPort, host, path string) []netip.AddrPort {
	m, ok := cfg.Find(proxy, host, path)
	if !ok {
		return nil
	}
	u := m.Effective()
	if u.Pass == nil || len(u.Pass.Args) == 0 {
		return nil
	}
	hostport, defPort, ok := urlHostPort(u.Pass.Args[0])
	if !ok || strings.Contains(hostport, "$") {
		return nil // a unix socket, or a variable: nothing to name on TCP
	}
	for _, d := range m.HTTP.Block {
		if d.Name == "upstream" && len(d.Args) == 1 && d.Args[0] == hostport {
			var out []netip.AddrPort
			for _, s := range d.Block {
				if s.Name == "server" && len(s.Args) > 0 {
					out = append(out, resolveUpstream(s.Args[0], defPort)...)
				}
			}
			return out
		}
	}
	return resolveUpstream(hostport, defPort)
}

// resolveUpstream turns nginx's "host[:port]" into addresses (a name is
// looked up, as nginx does when it reads the configuration).
func resolveUpstream(hp, defPort string) []netip.AddrPort {
	if strings.HasPrefix(hp, "unix:") {
		return nil
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		host, port = strings.Trim(hp, "[]"), defPort
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(n))}
	}
	ips, _ := net.LookupIP(host)
	var out []netip.AddrPort
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(n)))
		}
	}
	return out
}
