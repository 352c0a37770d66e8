package nginxconf

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests here use real nginx as the oracle: every location answers its
// own name, and for each request Find must name the block nginx chose.

func needNginx(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nginx")
	if err != nil {
		for _, c := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		t.Skip("nginx not installed")
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeTree writes files (name → text, names relative to dir) with
// PORT1/PORT2/DIR substituted.
func writeTree(t *testing.T, dir string, files map[string]string, repl *strings.Replacer) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(repl.Replace(text)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dumpConfig runs `nginx -T` on the tree's nginx.conf and parses it.
func dumpConfig(t *testing.T, ngx, dir string) (*Config, []byte) {
	t.Helper()
	cmd := exec.Command(ngx, "-T", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir, "-e", filepath.Join(dir, "error.log"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nginx -T: %v\n%s", err, stderr.String())
	}
	c, err := ParseDump(bytes.NewReader(out), "nginx -T")
	if err != nil {
		t.Fatal(err)
	}
	return c, out
}

func startNginx(t *testing.T, ngx, dir string, ports ...int) {
	t.Helper()
	cmd := exec.Command(ngx, "-c", filepath.Join(dir, "nginx.conf"), "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	for _, p := range ports {
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx does not listen on %d: %s", p, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

const preamble = `worker_processes 1;
daemon off;
pid DIR/nginx.pid;
events { worker_connections 64; }
`

// A config with includes, several servers on two ports (exact, wildcard
// and regex names, default_server), nested, exact, ^~ and regex locations.
var oracleTree = map[string]string{
	"nginx.conf": preamble + `http {
    access_log off;
    client_body_temp_path DIR/tmp;
    proxy_temp_path DIR/tmp;
    fastcgi_temp_path DIR/tmp;
    uwsgi_temp_path DIR/tmp;
    scgi_temp_path DIR/tmp;
    include conf.d/*.conf;
    include sites/*;
}
`,
	"conf.d/map.conf": `map $http_upgrade $connection_upgrade { default upgrade; '' close; }
`,
	"sites/a-default": `server {
    listen 127.0.0.1:PORT1;
    server_name _;
    location / { return 200 "a:/"; }
    location /ws { return 200 "a:/ws"; }
}
server {
    listen PORT1 default_server;
    server_name default.test;
    location / { return 200 "d:/"; }
}
`,
	"sites/b-app": `server {
    listen 127.0.0.1:PORT1;
    server_name app.test *.app.test;
    location / { return 200 "app:/"; }
    location = /exact { return 200 "app:=/exact"; }
    location /ws/ {
        location /ws/deep/ { return 200 "app:/ws/deep/"; }
        location ~ \.json$ { return 200 "app:/ws/~json"; }
        return 200 "app:/ws/";
    }
    location ^~ /static/ { return 200 "app:^~/static/"; }
    location ~* \.(png|JPG)$ { return 200 "app:~*img"; }
    location ~ ^/ws/chat { return 200 "app:~^/ws/chat"; }
    location /ws/chat/room { return 200 "app:/ws/chat/room"; }
}
server {
    listen 127.0.0.1:PORT1;
    server_name www.*;
    location / { return 200 "wwwstar:/"; }
}
server {
    listen 127.0.0.1:PORT1;
    server_name ~^api\d+\.test$;
    location / { return 200 "re:/"; }
}
server {
    listen 127.0.0.1:PORT2;
    location /only { return 200 "p2:/only"; }
}
`,
}

// label returns the name a location answers with: the string in its
// return directive.
func label(m Match) string {
	leaf := m.Leaf()
	if leaf == nil {
		return "<none>"
	}
	for _, d := range leaf.Block {
		if d.Name == "return" && len(d.Args) == 2 {
			return d.Args[1]
		}
	}
	return "<no return>"
}

func TestFindAgreesWithNginx(t *testing.T) {
	ngx := needNginx(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o755)
	p1, p2 := freePort(t), freePort(t)
	repl := strings.NewReplacer("PORT1", fmt.Sprint(p1), "PORT2", fmt.Sprint(p2), "DIR", dir)
	writeTree(t, dir, oracleTree, repl)
	c, _ := dumpConfig(t, ngx, dir)
	startNginx(t, ngx, dir, p1, p2)

	type req struct {
		port       int
		host, path string
	}
	var reqs []req
	hosts := []string{"app.test", "x.app.test", "www.example", "api12.test", "api.test", "other", "default.test", "APP.test"}
	paths := []string{"/", "/ws", "/ws/", "/ws/x", "/ws/deep/y", "/ws/a.json", "/ws/deep/a.json", "/exact", "/exact/",
		"/static/a.png", "/x/a.png", "/x/a.jpg", "/ws/chat", "/ws/chat/room", "/ws/chat/room/1", "/ws/../exact", "/a//b", "/only", "/ws?x=1"}
	for _, h := range hosts {
		for _, p := range paths {
			reqs = append(reqs, req{p1, h, p})
		}
	}
	for _, p := range paths {
		reqs = append(reqs, req{p2, "any", p})
	}
	client := &http.Client{Timeout: 3 * time.Second}
	bad := 0
	for _, r := range reqs {
		u := fmt.Sprintf("http://127.0.0.1:%d%s", r.port, r.path)
		hr, _ := http.NewRequest("GET", u, nil)
		hr.URL.Opaque = strings.SplitN(r.path, "?", 2)[0] // keep "..", "//" as sent
		if i := strings.IndexByte(r.path, '?'); i >= 0 {
			hr.URL.RawQuery = r.path[i+1:]
		}
		hr.Host = r.host
		resp, err := client.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := string(body)
		if resp.StatusCode != 200 { // no location: nginx serves files (403/404)
			want = "<none>"
		}
		m, ok := c.Find(netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", r.port)), r.host, r.path)
		got := "<no server>"
		if ok {
			got = label(m)
		}
		if got != want {
			bad++
			t.Errorf("port %d Host %s %s: nginx chose %q, Find %q", r.port, r.host, r.path, want, got)
		}
	}
	t.Logf("%d requests compared with nginx", len(reqs))
}

// The inheritance trap and the other usual mistakes, split over files.
var patchTree = map[string]string{
	"nginx.conf": preamble + `http {
    access_log off;
    client_body_temp_path DIR/tmp;
    proxy_temp_path DIR/tmp;
    fastcgi_temp_path DIR/tmp;
    uwsgi_temp_path DIR/tmp;
    scgi_temp_path DIR/tmp;
    include sites/*.conf;
}
`,
	"sites/app.conf": `server {
    listen 127.0.0.1:PORT1;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    proxy_http_version 1.1;

    # sets its own header: inherits none of the server's
    location /trap {
        proxy_set_header X-Trap yes;
        proxy_pass http://127.0.0.1:PORT2;
    }
    location /inherits { proxy_pass http://127.0.0.1:PORT2; }
    location /old {
        proxy_http_version 1.0;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "";
        proxy_pass http://127.0.0.1:PORT2;
    }
    location /nested/ {
        location /nested/ws { proxy_set_header X-N 1; proxy_pass http://127.0.0.1:PORT2; }
    }
    location /parent/ {
        proxy_set_header X-Parent-IP $remote_addr;
        location /parent/ws { proxy_pass http://127.0.0.1:PORT2; }
    }
}
`,
}

func TestPatchFixesWhatNginxForwards(t *testing.T) {
	ngx := needNginx(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o755)
	p1, p2 := freePort(t), freePort(t)
	repl := strings.NewReplacer("PORT1", fmt.Sprint(p1), "PORT2", fmt.Sprint(p2), "DIR", dir)
	writeTree(t, dir, patchTree, repl)
	c, _ := dumpConfig(t, ngx, dir)

	local := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", p1))
	paths := map[string]int{"/trap": 2, "/inherits": 0, "/old": 2, "/nested/ws": 2, "/parent/ws": 2}
	var ms []Match
	for p, nprob := range paths {
		m, ok := c.Find(local, "x", p)
		if !ok || m.Leaf() == nil {
			t.Fatalf("%s: no location", p)
		}
		u := m.Effective()
		probs := u.Problems(m.Leaf())
		if len(probs) != nprob {
			t.Errorf("%s (%s): %d problems, want %d: %+v", p, BlockName(m.Leaf()), len(probs), nprob, probs)
		}
		ms = append(ms, m)
	}
	// The trap is named as such, at the location that sets its own header.
	m, _ := c.Find(local, "x", "/trap")
	u := m.Effective()
	if ps := u.Problems(m.Leaf()); len(ps) == 0 || !strings.Contains(ps[0].What, "is not inherited") || ps[0].At != m.Leaf() {
		t.Errorf("/trap: want the inheritance trap at the location, got %+v", ps)
	}

	patch := c.Patch(ms)
	t.Logf("patch:\n%s", patch)
	if patch == "" {
		t.Fatal("empty patch")
	}
	cmd := exec.Command("patch", "-p0", "--batch")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(patch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("patch -p0: %v\n%s", err, out)
	}
	if out, err := exec.Command(ngx, "-t", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t after the patch: %v\n%s", err, out)
	}
	c2, _ := dumpConfig(t, ngx, dir)
	for p := range paths {
		m, _ := c2.Find(local, "x", p)
		u := m.Effective()
		if ps := u.Problems(m.Leaf()); len(ps) != 0 {
			t.Errorf("%s after the patch: %+v", p, ps)
		}
	}
	if again := c2.Patch(ms2(c2, local, paths)); again != "" {
		t.Errorf("a second patch is not empty:\n%s", again)
	}

	// What the backend receives through the patched nginx.
	seen := make(chan http.Header, 8)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Proto", r.Proto)
		h.Set("X-Connection", strings.Join(r.Header.Values("Connection"), ","))
		seen <- h
		w.WriteHeader(200)
	})}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p2))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	startNginx(t, ngx, dir, p1)
	for p := range paths {
		conn, err := net.Dial("tcp", local.String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", p)
		var h http.Header
		select {
		case h = <-seen:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the backend saw nothing", p)
		}
		conn.Close()
		if h.Get("X-Proto") != "HTTP/1.1" || !strings.EqualFold(h.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(h.Get("X-Connection")), "upgrade") {
			t.Errorf("%s: backend saw %s, Upgrade %q, Connection %q", p, h.Get("X-Proto"), h.Get("Upgrade"), h.Get("X-Connection"))
		}
		// The location had none of its own: the patch's proxy_set_header
		// lines must carry over what it inherited.
		if p == "/parent/ws" && h.Get("X-Parent-IP") == "" {
			t.Errorf("/parent/ws: the parent's X-Parent-IP was lost by the patch")
		}
	}
}

func ms2(c *Config, local netip.AddrPort, paths map[string]int) []Match {
	var ms []Match
	for p := range paths {
		if m, ok := c.Find(local, "x", p); ok {
			ms = append(ms, m)
		}
	}
	return ms
}
