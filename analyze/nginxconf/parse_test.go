package nginxconf

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseErrorsAreOneLine(t *testing.T) {
	cases := map[string]string{
		"unterminated quote": "# configuration file /e/nginx.conf:\nhttp { server_name \"abc; }\n",
		"missing semicolon":  "# configuration file /e/nginx.conf:\nhttp { listen 80 }\n",
		"unbalanced":         "# configuration file /e/nginx.conf:\nhttp { server {\n",
		"stray brace":        "# configuration file /e/nginx.conf:\n}\n",
		"not a dump":         "user www-data;\nhttp {}\n",
		"include loop":       "# configuration file /e/nginx.conf:\ninclude /e/a.conf;\n# configuration file /e/a.conf:\ninclude /e/nginx.conf;\n",
	}
	for name, in := range cases {
		_, err := ParseDump(strings.NewReader(in), "dump.txt")
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), ":") {
			t.Errorf("%s: error %q is not one line naming where", name, err)
		}
	}
}

func TestLoadFollowsIncludesOnDisk(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sites"), 0o755)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("http {\n    include sites/*.conf;\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sites", "a.conf"), []byte("server {\n    listen 127.0.0.1:8080;\n    location /ws { proxy_pass http://b; }\n}\n"), 0o644)
	c, err := Load(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Find(netip.MustParseAddrPort("127.0.0.1:8080"), "h", "/ws/x")
	if !ok || m.Leaf() == nil || m.Leaf().File != filepath.Join(dir, "sites", "a.conf") || m.Leaf().Line != 3 {
		t.Fatalf("got %+v", m.Leaf())
	}
	// A loop on disk is refused, not followed forever.
	os.WriteFile(filepath.Join(dir, "sites", "b.conf"), []byte("include sites/b.conf;\n"), 0o644)
	if _, err := Load(filepath.Join(dir, "nginx.conf")); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("include loop: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "nope.conf")); err == nil || !strings.Contains(err.Error(), "nope.conf") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseDump(f *testing.F) {
	f.Add([]byte("# configuration file /e/nginx.conf:\nhttp { map $http_upgrade $c { default upgrade; '' close; } server { listen 8080; location /ws { proxy_pass http://x; } } }\n"))
	f.Add([]byte("# configuration file /e/nginx.conf:\nhttp { upstream u { server 127.0.0.1; } server { listen 127.0.0.1:8080; location / { location /a { proxy_pass http://u/x; } } } }\n"))
	f.Add([]byte("# configuration file /e/nginx.conf:\nhttp { include /e/*.conf; }\n# configuration file /e/a.conf:\nserver { location ~ ^/a\\d+ { location = /a1 { } } }\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseDump(bytes.NewReader(b), "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, p := range []string{"/", "/ws", "/a1", "/a/../b?q"} {
			m, ok := c.Find(netip.MustParseAddrPort("127.0.0.1:8080"), "h", p)
			if ok {
				u := m.Effective()
				if leaf := m.Leaf(); leaf != nil {
					u.Problems(leaf)
				}
				c.Patch([]Match{m})
			}
		}
		for _, m := range c.FindUpstream(netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("127.0.0.1:80")) {
			if m.Leaf() == nil || len(find(m.Leaf().Block, "proxy_pass")) == 0 {
				t.Fatalf("FindUpstream: %+v has no proxy_pass", m)
			}
			m.Effective()
		}
	})
}
