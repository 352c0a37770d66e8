package nginxconf

import (
	"net/netip"
	"strings"
	"testing"
)

// FindUpstream names every location of the servers listening at the
// proxy's address that passes to the backend: by address, default port,
// upstream block or nested location; not a location of another listener,
// one passing elsewhere, or one with variables.
func TestFindUpstream(t *testing.T) {
	dump := `# configuration file /e/nginx.conf:
http {
    upstream app { server 10.0.0.9:9000; server 10.0.0.8:9000; }
    server {
        listen 10.0.0.1:80;
        server_name a.test;
        location / { proxy_pass http://10.0.0.9:9000; }
        location /api { location /api/ws { proxy_read_timeout 5s; proxy_pass http://app/ws; } }
        location /other { proxy_pass http://10.0.0.7:9000; }
        location /var { proxy_pass http://$host:9000; }
        location /plain { proxy_pass http://10.0.0.9; }
    }
    server {
        listen 10.0.0.1:80;
        server_name b.test;
        location /b { proxy_pass https://[::ffff:10.0.0.9]:9000/; }
    }
    server {
        listen 81;
        location / { proxy_pass http://10.0.0.9:9000; }
    }
}
`
	c, err := ParseDump(strings.NewReader(dump), "dump.txt")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range c.FindUpstream(netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.9:9000")) {
		var names []string
		for _, l := range m.Location {
			names = append(names, BlockName(l))
		}
		got = append(got, strings.Join(names, " > "))
	}
	want := "location / | location /api > location /api/ws | location /b"
	if strings.Join(got, " | ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " | "), want)
	}
	if ms := c.FindUpstream(netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.9:80")); len(ms) != 1 || BlockName(ms[0].Leaf()) != "location /plain" {
		t.Errorf("port 80: %v", ms)
	}
	if ms := c.FindUpstream(netip.MustParseAddrPort("10.0.0.2:8080"), netip.MustParseAddrPort("10.0.0.9:9000")); len(ms) != 0 {
		t.Errorf("no listener: %v", ms)
	}
}
