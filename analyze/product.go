package analyze

import (
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Which proxy product answered: its own error pages, a Server header the
// next leg's answer lacks, how it writes header names.

// proxySignature names the proxy whose own error page body is, or "".
func proxySignature(r *reassembly.Response) string {
	b := r.Body
	switch {
	case strings.Contains(b, "<hr><center>nginx"):
		if i := strings.Index(b, "<center>nginx/"); i >= 0 {
			rest := b[i+len("<center>"):]
			if j := strings.IndexByte(rest, '<'); j > 0 {
				return rest[:j]
			}
		}
		return "nginx"
	case strings.Contains(b, "<address>Apache"):
		return "apache"
	case strings.Contains(b, "<html><body><h1>") && r.Status >= 400 && strings.Contains(b, "</h1>\n"):
		// HAProxy's built-in error pages
		if _, ok := r.Headers.Get("Server"); !ok {
			return "haproxy"
		}
	}
	return ""
}

// productAt tells the product of the proxy that listens at leg i's server,
// from its answers on leg i: its own error page, or a Server header that
// the next leg's answer does not carry (nginx hides the backend's Server
// and sends its own; haproxy and Caddy relay the backend's). Without a
// next leg, only a proxy that is evident (connect attempts seen) or
// nginx's header count.
func productAt(chain []*exchange, i int, evident bool) string {
	x := chain[i]
	if x.resp == nil {
		return ""
	}
	sig := proxySignature(x.resp)
	if sig != "" && sig != "nginx" {
		return sig
	}
	if s, ok := x.resp.Headers.Get("Server"); ok {
		switch {
		case i+1 < len(chain):
			if y := chain[i+1].resp; y == nil || !sameHeader(y.Headers, "Server", s) {
				return s
			}
		case evident || sig != "" || strings.HasPrefix(strings.ToLower(s), "nginx"):
			return s
		}
	}
	return sig
}

func sameHeader(h reassembly.Headers, name, v string) bool {
	w, ok := h.Get(name)
	return ok && w == v
}

// guessProduct names the proxy that relayed an answer from how it wrote
// it, when no Server header or error page does: haproxy writes every
// header name in lower case (the backends here canonicalise theirs).
func guessProduct(r *reassembly.Response) string {
	if len(r.Headers) < 3 {
		return ""
	}
	for _, h := range r.Headers {
		if strings.ToLower(h.Name) != h.Name {
			return ""
		}
	}
	return "haproxy (guessed from its lower-case header names)"
}

// caddyEmpty: Caddy's answer when no site (or no route in the site)
// matches a request: 200, Server: Caddy, nothing in the body.
func caddyEmpty(r *reassembly.Response) bool {
	srv, _ := r.Headers.Get("Server")
	cl, hasCL := r.Headers.Get("Content-Length")
	return r.Status == 200 && strings.EqualFold(srv, "Caddy") && strings.TrimSpace(r.Body) == "" && (!hasCL || strings.TrimSpace(cl) == "0")
}

// family names the proxy product a fix is written for.
func family(product string) string {
	p := strings.ToLower(product)
	for _, f := range []string{"nginx", "apache", "haproxy", "caddy", "envoy", "traefik"} {
		if strings.HasPrefix(p, f) {
			return f
		}
	}
	return ""
}
