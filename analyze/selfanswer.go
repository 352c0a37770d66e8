package analyze

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A proxy answering a handshake on its own: which of its rules did, in
// the proxy's own terms, from its answer and from what its other requests
// in the capture show (a Host or path that did go upstream).

// maxRoutes bounds the Hosts and paths remembered per proxy.
const maxRoutes = 32

// routes are the Hosts and paths of requests a proxy sent upstream.
type routes struct {
	hosts, paths []string
}

func addBounded(ss []string, s string) []string {
	for _, x := range ss {
		if x == s {
			return ss
		}
	}
	if len(ss) >= maxRoutes {
		return ss
	}
	return append(ss, s)
}

func hasString(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// routed records that the proxy at server sent a request for host and path
// upstream.
func (a *Analyzer) routed(server netip.AddrPort, host, path string) {
	r := a.routes[server]
	if r == nil {
		if len(a.routes) >= 4096 {
			return
		}
		r = &routes{}
		a.routes[server] = r
	}
	r.hosts = addBounded(r.hosts, host)
	r.paths = addBounded(r.paths, path)
}

// otherRoute describes a request through the same proxy that went
// upstream: for the same path with another Host (the Host chose the
// server), or for the same Host with another path (the path chose the
// location). Both empty: nothing to compare with.
func (a *Analyzer) otherRoute(server netip.AddrPort, host, path string) (otherHost, otherPath string) {
	r := a.routes[server]
	if r == nil {
		return "", ""
	}
	if hasString(r.hosts, host) {
		for _, p := range r.paths {
			if p != path {
				return "", p
			}
		}
		return "", ""
	}
	if hasString(r.paths, path) {
		for _, h := range r.hosts {
			return h, ""
		}
	}
	return "", ""
}

// selfAnswerEvidence is what tells, on the client's leg, that the proxy
// answered on its own: its Server header or an empty body, and what its
// other requests show.
func (a *attempt) selfAnswerEvidence() []string {
	A := a.chain[0]
	f := &a.alone
	_, rleg := a.legName(0)
	var ev []string
	if s, ok := A.resp.Headers.Get("Server"); ok {
		ev = append(ev, rleg+": Server: "+s)
	}
	if strings.TrimSpace(A.resp.Body) == "" && A.resp.Status < 400 {
		if cl, ok := A.resp.Headers.Get("Content-Length"); ok {
			ev = append(ev, rleg+": empty body (Content-Length: "+cl+")")
		}
	}
	host, _ := A.req.Headers.Get("Host")
	switch {
	case f.otherHost != "":
		ev = append(ev, fmt.Sprintf("the same path with Host %s went upstream through this proxy; this request's Host is %s", f.otherHost, host))
	case f.otherPath != "":
		ev = append(ev, fmt.Sprintf("requests with the same Host %s went upstream through this proxy for %s", host, f.otherPath))
	}
	return ev
}

// selfAnswerCause says, in the proxy's own terms, which of its rules
// answered the client itself, or "" when its answer does not tell.
func (a *attempt) selfAnswerCause() string {
	A := a.chain[0]
	if A.resp == nil {
		return ""
	}
	st := A.resp.Status
	host, _ := A.req.Headers.Get("Host")
	path := pathOf(A.req.Target)
	oh, op := a.alone.otherHost, a.alone.otherPath
	fam := family(a.proxy.product)
	if fam == "" && a.proxy.generatedBy != "" {
		fam = family(a.proxy.generatedBy)
	}
	switch fam {
	case "caddy":
		if st == 200 && strings.TrimSpace(A.resp.Body) == "" {
			if op != "" {
				return fmt.Sprintf("Caddy has no route for %s in the site of Host %s (a site without a matching handler answers 200 with an empty body): add a handle/reverse_proxy for the path", path, host)
			}
			return fmt.Sprintf("Caddy has no site for Host %s (it answers 200 with an empty body when no site address matches the request's Host): add the host to the site address (or a catch-all :PORT site), or make the client use a host that is served", host)
		}
	case "nginx":
		return nginxSelfCause(st, host, path, oh)
	case "haproxy":
		switch {
		case st == 503 && len(a.connect.failed) == 0:
			c := "haproxy answered 503 itself without connecting anywhere: no use_backend rule matched this request and there is no default_backend, or the backend it chose has no server up (all down by health checks, or none declared)"
			if oh != "" {
				c += fmt.Sprintf("; requests with Host %s did reach a backend, so the use_backend rules choose by Host and none takes %s", oh, host)
			}
			return c
		case st == 403:
			return "haproxy refused the request itself (403): an http-request deny rule matched it"
		}
	}
	return ""
}

// nginxSelfCause says which of nginx's rules answered st itself.
func nginxSelfCause(st int, host, path, otherHost string) string {
	switch {
	case otherHost != "":
		return fmt.Sprintf("nginx answered %d from its default server: Host %s matches no server_name of the server that proxies %s (Host %s went upstream); add the name to server_name, or proxy in the default server", st, host, path, otherHost)
	case st == 404:
		return fmt.Sprintf("nginx answered 404 itself: no location proxies %s in the server that took Host %s (or that server is the default server, used when no server_name matches); add a location that proxies it", path, host)
	case st == 403:
		return fmt.Sprintf("nginx refused the request itself (403) for %s: a deny rule, auth_basic/auth_request, or a return 403 in the location or server that took Host %s; the backend never saw it", path, host)
	case st == 444:
		return "nginx closed the connection by rule (return 444)"
	}
	return fmt.Sprintf("nginx answered %d itself: a return %d (or error_page) in the location or server that took Host %s path %s", st, st, host, path)
}

// statusWord is a status for advice text: never 0.
func statusWord(st int) string {
	if st == 0 {
		return "no answer"
	}
	return strconv.Itoa(st)
}
