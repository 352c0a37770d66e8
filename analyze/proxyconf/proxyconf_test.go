package proxyconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t testing.TB, dir, name, text string) string {
	p := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var ap = netip.MustParseAddrPort

func TestHAProxy(t *testing.T) {
	f := write(t, t.TempDir(), "haproxy.cfg", `global
  maxconn 100
defaults
  mode http
  timeout tunnel 30s
frontend www
  bind 127.0.0.1:8080,127.0.0.1:8443
  default_backend be
  use_backend ws if { path_beg /ws }
listen stats
  bind *:9000
  timeout tunnel 2m
  server local 127.0.0.1:9100 check
backend be
  timeout tunnel 1h
  server s1 127.0.0.1:9001
  server s2 app.internal:9002 check
backend ws
  server w1 [::1]:9003
`)
	c, err := Load("haproxy", f)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Find(ap("127.0.0.1:8443"), "x")
	if s == nil || s.Line != 6 || s.Block != "frontend www" || s.Timeout != time.Hour || !strings.Contains(s.TimeoutAt, f+":15 (backend be)") {
		t.Fatalf("8443: %+v", s)
	}
	if got := strings.Join(s.Servers, " "); got != "127.0.0.1:9001 app.internal:9002 [::1]:9003" {
		t.Errorf("8443's servers: %q", got)
	}
	if s := c.Find(ap("10.0.0.1:9000"), ""); s == nil || s.Block != "listen stats" || s.Timeout != 2*time.Minute || strings.Join(s.Servers, " ") != "127.0.0.1:9100" {
		t.Fatalf("9000: %+v", s)
	}
	if s := c.Find(ap("127.0.0.1:9001"), ""); s != nil {
		t.Fatalf("a backend's server is no frontend: %+v", s)
	}
}

func TestApache(t *testing.T) {
	dir := t.TempDir()
	main := write(t, dir, "apache2.conf", `ServerRoot "`+dir+`"
Listen 80
IncludeOptional sites/*.conf
`)
	write(t, dir, "sites/a.conf", `<VirtualHost *:80>
    ServerName a.test
    ProxyPass /ws ws://127.0.0.1:9001/ws
    ProxyPass / http://127.0.0.1:9001/
</VirtualHost>
<VirtualHost *:80>
    ServerName b.test
    ServerAlias *.b.test
    ProxyPass /ws http://127.0.0.1:9002/ws
</VirtualHost>
`)
	c, err := Load("apache", main)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Find(ap("127.0.0.1:80"), "x.b.test:80")
	if s == nil || s.Block != "<VirtualHost *:80>" || s.Line != 6 {
		t.Fatalf("x.b.test: %+v", s)
	}
	if r := s.Route("/ws/chat"); r == nil || r.Upgrade || r.Line != 9 {
		t.Fatalf("b.test route: %+v", r)
	}
	s = c.Find(ap("127.0.0.1:80"), "nosuch")
	if s == nil || s.Line != 1 || !s.Default {
		t.Fatalf("default vhost: %+v", s)
	}
	if r := s.Route("/ws"); r == nil || !r.Upgrade || r.Line != 3 {
		t.Fatalf("a.test /ws: %+v", r)
	}
	if r := s.Route("/api"); r == nil || r.Prefix != "/" {
		t.Fatalf("a.test /api: %+v", r)
	}
}

func TestCaddy(t *testing.T) {
	f := write(t, t.TempDir(), "Caddyfile", `{
	admin off
}
example.com, www.example.com {
	reverse_proxy 127.0.0.1:9001
}
:8080 {
	reverse_proxy /ws 127.0.0.1:9002
}
`)
	c, err := Load("caddy", f)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Find(ap("127.0.0.1:443"), "www.example.com"); s == nil || s.Line != 4 {
		t.Fatalf("www.example.com: %+v", s)
	}
	if s := c.Find(ap("127.0.0.1:8080"), "anything"); s == nil || s.Line != 7 || s.Block != "site :8080" {
		t.Fatalf(":8080: %+v", s)
	}
	if _, err := Load("caddy", write(t, t.TempDir(), "Caddyfile", "a.test {\n")); err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("unclosed block: %v", err)
	}
}

// FuzzLoad: any bytes as each proxy's config: no panic, one-line errors.
func FuzzLoad(f *testing.F) {
	f.Add("frontend fe\n  bind 127.0.0.1:8080\n  timeout tunnel 5s\n")
	f.Add("<VirtualHost [::1]:80>\nServerName a\nProxyPass /ws ws://b/\n</VirtualHost>\nInclude x\n")
	f.Add("{\n}\nhttp://a:1 {\n reverse_proxy b\n}\n")
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		p := write(t, dir, "c", text)
		for _, k := range []string{"haproxy", "apache", "caddy"} {
			c, err := Load(k, p)
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("%s: multi-line error %q", k, err)
				}
				continue
			}
			c.Find(ap("127.0.0.1:80"), "a")
			for i := range c.Sites {
				c.Sites[i].Route("/ws")
			}
		}
	})
}
