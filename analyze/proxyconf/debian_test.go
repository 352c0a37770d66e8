package proxyconf

import (
	"os"
	"testing"
)

// TestDebianApache: Debian's own apache2.conf (Include ports.conf,
// IncludeOptional sites-enabled/*.conf) when installed.
func TestDebianApache(t *testing.T) {
	if _, err := os.Stat("/etc/apache2/apache2.conf"); err != nil {
		t.Skip("apache2 is not installed")
	}
	c, err := Load("apache", "/etc/apache2/apache2.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Find(ap("127.0.0.1:80"), "localhost")
	if s == nil {
		t.Fatalf("nothing on port 80: %+v", c.Sites)
	}
	t.Logf("%s:%d %s", s.File, s.Line, s.Block)
}

// TestDebianCaddy: Debian's /etc/caddy/Caddyfile when installed.
func TestDebianCaddy(t *testing.T) {
	if _, err := os.Stat("/etc/caddy/Caddyfile"); err != nil {
		t.Skip("caddy is not installed")
	}
	c, err := Load("caddy", "/etc/caddy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sites) == 0 {
		t.Fatal("no site in Debian's Caddyfile")
	}
	t.Logf("%s:%d %s %+v", c.Sites[0].File, c.Sites[0].Line, c.Sites[0].Block, c.Sites[0].Binds)
}
