//go:build linux && amd64

package tlsplain

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
)

// The end-to-end tests: real nginx and HAProxy serving TLS on 127.0.0.1,
// started before the probes attach, real clients writing a key log. The
// same run is judged twice: live, keyless, from the packets and the
// proxies' plaintext; and from tcpdump's recording of it read with the
// clients' key log. The two must agree on every attempt — code, hop,
// statuses, pairing, findings, evidence and fix (times and durations
// aside: the proxy's calls and the packets are microseconds apart). The
// pcapng the live run writes (packets and plaintext) must read back,
// keyless, to the live run's verdicts exactly.

// e2e holds one run's moving parts.
type e2e struct {
	dir      string
	keysPath string
	keys     *keyLog
	ports    []int
}

func newE2E(t *testing.T) *e2e {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	e := &e2e{dir: dir, keysPath: filepath.Join(dir, "keys.log")}
	f, err := os.OpenFile(e.keysPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	e.keys = &keyLog{w: f}
	return e
}

// curl runs curl over HTTP/2 with the key log, and returns the status.
func (e *e2e) curl(t *testing.T, url string) string {
	t.Helper()
	cmd := exec.Command("curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", url)
	cmd.Env = append(os.Environ(), "SSLKEYLOGFILE="+e.keysPath)
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("curl %s: %v", url, err)
	}
	return string(out)
}

// compare checks the live verdicts against the keyed ones (and the file
// written live against the live ones). The attempts in partial (by client
// address, with the reason) cannot agree in full: code and hop must, and
// the difference is logged.
func compare(t *testing.T, name string, live, keyed, reread []*analyze.Verdict, partial map[string]string) {
	t.Helper()
	lv, kv, rv := describeAll(live), describeAll(keyed), describeAll(reread)
	writeTable(t, name, lv, kv)
	if len(kv) == 0 {
		t.Fatal("no verdicts from the keyed read")
	}
	for _, k := range sortedKeys(kv) {
		l, ok := lv[k]
		switch {
		case !ok:
			t.Errorf("%s: no live verdict; keyed:\n%s", k, kv[k])
		case partial[k] != "":
			// client [path] code "hop" hop …
			lf, kf := strings.Fields(strings.SplitN(l, "\n", 2)[0]), strings.Fields(strings.SplitN(kv[k], "\n", 2)[0])
			code := func(f []string) string {
				if i := slices.Index(f, "hop"); i > 1 && i+1 < len(f) {
					return f[i-1] + " " + f[i+1]
				}
				return "?"
			}
			same := code(lf) == code(kf)
			if !same {
				t.Errorf("%s (%s):\nlive:\n%s\nkeyed:\n%s", k, partial[k], l, kv[k])
			} else {
				t.Logf("%s (%s): the same code and hop; live:\n%s\nkeyed:\n%s", k, partial[k], l, kv[k])
			}
		case l != kv[k]:
			t.Errorf("%s:\nlive:\n%s\nkeyed:\n%s", k, l, kv[k])
		}
	}
	for _, k := range sortedKeys(lv) {
		if _, ok := kv[k]; !ok {
			t.Errorf("%s: live verdict without a keyed one:\n%s", k, lv[k])
		}
	}
	if len(live) != len(reread) {
		t.Errorf("-w file read back: %d verdicts, live %d", len(reread), len(live))
	}
	for k, l := range lv {
		if rv[k] != l {
			t.Errorf("%s: -w file read back:\n%s\nlive:\n%s", k, rv[k], l)
		}
	}
	for i := range min(len(live), len(reread)) {
		if !live[i].Time.Equal(reread[i].Time) {
			t.Errorf("verdict %d: time %v live, %v read back", i, live[i].Time, reread[i].Time)
		}
	}
}

// TestLiveNginx: nginx 1.22 (two workers, TLS, HTTP/2 offered) with the
// locations the proxy decides on by itself and the ones it forwards; a
// session open before the attach and then cut by proxy_read_timeout;
// curl over HTTP/2; a reload in the middle.
func TestLiveNginx(t *testing.T) {
	nginx := requireProbes(t, "nginx")
	e := newE2E(t)
	cert, key := selfSigned(t, e.dir)
	be := wsBackend(t)
	beHost, bePort, _ := strings.Cut(be, ":")
	_ = beHost
	// The session open before the attach goes to a server of its own:
	// what the analyzer says of the proxy's other requests stays the same
	// whether or not one of them was seen.
	port, port2 := freePort(t), freePort(t)
	os.MkdirAll(filepath.Join(e.dir, "www"), 0o755)
	upgrade := `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;`
	master := startNginx(t, nginx, e.dir, fmt.Sprintf(`    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:%[1]d ssl http2;
        ssl_certificate %[2]s; ssl_certificate_key %[3]s;
        large_client_header_buffers 4 1k;
        root %[4]s/www;
        location /ok { proxy_pass http://%[5]s; %[6]s }
        location /broken { proxy_pass http://%[5]s; }
        location /deny { deny all; }
    }
    server {
        listen 127.0.0.1:%[7]d ssl;
        ssl_certificate %[2]s; ssl_certificate_key %[3]s;
        location /timeout { proxy_pass http://%[5]s; %[6]s proxy_read_timeout 3s; }
    }
`, port, cert, key, e.dir, be, upgrade, port2))
	waitListen(t, port)
	waitListen(t, port2)
	var bp int
	fmt.Sscan(bePort, &bp)
	e.ports = []int{port, port2, bp}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stopDump := tcpdump(t, filepath.Join(e.dir, "run.pcap"), e.ports)

	// A session opened before the attach, silent after its messages.
	ready, attached, preDone := make(chan struct{}), make(chan struct{}), make(chan result)
	go func() {
		preDone <- attempt{addr: fmt.Sprintf("127.0.0.1:%d", port2), path: "/timeout", msgs: 3, silent: true, mid: func() { close(ready); <-attached }}.run(t, e.keys)
	}()
	<-ready
	lp := startLive(t, []uint32{uint32(master)}, e.ports, filepath.Join(e.dir, "live.pcapng"))
	close(attached)

	partial := map[string]string{}
	for _, a := range []struct {
		attempt
		want string
	}{
		{attempt{addr: addr, path: "/ok", msgs: 2}, "101"},
		{attempt{addr: addr, path: "/broken", msgs: 2}, "400"},
		{attempt{addr: addr, path: "/deny"}, "403"},
		{attempt{addr: addr, path: "/missing"}, "404"},
		{attempt{addr: addr, path: "/ok", header: "Cookie: " + strings.Repeat("c", 2000) + "\r\n"}, "400"},
	} {
		r := a.run(t, e.keys)
		if !strings.HasPrefix(r.status, a.want) {
			t.Errorf("%s: %q, want %s", a.path, r.status, a.want)
		}
		if a.header != "" {
			partial[r.client] = "nginx refused the header block before reading all of it: the plaintext holds what it read"
		}
	}
	for _, p := range []string{"/deny", "/missing"} {
		if got := e.curl(t, fmt.Sprintf("https://127.0.0.1:%d%s", port, p)); !strings.HasSuffix(got, " 2") {
			t.Errorf("curl --http2 %s: %q", p, got)
		}
	}

	// A reload: new workers serve the rest.
	old := children(master)
	syscall.Kill(master, syscall.SIGHUP)
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		if n := children(master); len(n) >= 2 && !slices.Contains(old, n[len(n)-1]) && !slices.Contains(old, n[0]) {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, a := range []attempt{{addr: addr, path: "/ok", msgs: 1}, {addr: addr, path: "/broken"}} {
		a.run(t, e.keys)
	}
	pre := <-preDone
	if !strings.HasPrefix(pre.status, "101") {
		t.Errorf("the session open before the attach: %q", pre.status)
	}
	partial[pre.client] = "open before the attach: live sees the session from its middle"

	live, st, ast := lp.finish(t)
	stopDump()
	t.Logf("probes: %+v", st)
	t.Logf("reassembly: %+v", ast)
	if st.Forks < 2 || st.Drops != 0 || ast.PlainLost != 0 || ast.PlainMidStream != 1 {
		t.Errorf("probes %+v, reassembly %+v", st, ast)
	}
	keyed := readFile(t, filepath.Join(e.dir, "run.pcap"), loadKeys(t, e.keysPath))
	reread := readFile(t, filepath.Join(e.dir, "live.pcapng"), nil)
	compare(t, "nginx", live, keyed, reread, partial)
}

// TestLiveHAProxy: HAProxy 2.6 (TLS, ALPN h2 and http/1.1): a WebSocket
// over HTTP/1.1, one refused by an http-request deny, headless Chromium
// opening one over HTTP/2 (RFC 8441 extended CONNECT), curl over HTTP/2.
func TestLiveHAProxy(t *testing.T) {
	haproxy := requireProbes(t, "haproxy")
	e := newE2E(t)
	cert, key := selfSigned(t, e.dir)
	both := filepath.Join(e.dir, "both.pem")
	c, _ := os.ReadFile(cert)
	k, _ := os.ReadFile(key)
	os.WriteFile(both, append(c, k...), 0o600)
	be := wsBackend(t)
	_, bePort, _ := strings.Cut(be, ":")
	var bp int
	fmt.Sscan(bePort, &bp)
	port := freePort(t)
	page := fmt.Sprintf(`<html><body><script>var w=new WebSocket('wss://localhost:%d/ws');w.onopen=function(){w.send('hello from chromium');};w.onmessage=function(e){document.title='got:'+e.data;w.close(1000,'done');};w.onclose=function(e){document.title+=' close:'+e.code;};</script></body></html>`, port)
	conf := fmt.Sprintf(`global
    log stderr format raw local0 info
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout tunnel 10s
frontend fe
    bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
    http-request return status 200 content-type "text/html" string "%s" if { path / }
    http-request return status 404 if { path /favicon.ico }
    http-request deny if { path /deny }
    default_backend be
backend be
    server up %s
`, port, both, strings.ReplaceAll(page, `"`, `\"`), be)
	os.WriteFile(filepath.Join(e.dir, "haproxy.cfg"), []byte(conf), 0o644)
	cmd := exec.Command(haproxy, "-db", "-f", filepath.Join(e.dir, "haproxy.cfg"))
	log, _ := os.Create(filepath.Join(e.dir, "haproxy.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(cmd); log.Close() })
	waitListen(t, port)
	e.ports = []int{port, bp}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stopDump := tcpdump(t, filepath.Join(e.dir, "run.pcap"), e.ports)
	lp := startLive(t, []uint32{uint32(cmd.Process.Pid)}, e.ports, filepath.Join(e.dir, "live.pcapng"))

	if r := (attempt{addr: addr, path: "/ws", msgs: 2}).run(t, e.keys); !strings.HasPrefix(r.status, "101") {
		t.Errorf("/ws: %q", r.status)
	}
	if r := (attempt{addr: addr, path: "/deny"}).run(t, e.keys); !strings.HasPrefix(r.status, "403") {
		t.Errorf("/deny: %q", r.status)
	}
	if got := e.curl(t, fmt.Sprintf("https://127.0.0.1:%d/deny", port)); got != "403 2" {
		t.Errorf("curl --http2 /deny: %q", got)
	}
	if chromium, err := exec.LookPath("chromium"); err == nil {
		prof := filepath.Join(e.dir, "chromium")
		ch := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+prof,
			"--ignore-certificate-errors", "--virtual-time-budget=5000", "--dump-dom", fmt.Sprintf("https://localhost:%d/", port))
		ch.Env = append(os.Environ(), "SSLKEYLOGFILE="+e.keysPath)
		out, _ := ch.Output()
		// (Whether the page saw the close before its DOM was dumped
		// depends on the machine's load: the verdicts tell the rest.)
		if !strings.Contains(string(out), "<title>got:hello from chromium") {
			t.Errorf("chromium: %s", out)
		}
	} else if os.Getenv("CI") != "" {
		t.Error("chromium is not installed")
	}

	live, st, ast := lp.finish(t)
	stopDump()
	t.Logf("probes: %+v", st)
	t.Logf("reassembly: %+v", ast)
	keyed := readFile(t, filepath.Join(e.dir, "run.pcap"), loadKeys(t, e.keysPath))
	reread := readFile(t, filepath.Join(e.dir, "live.pcapng"), nil)
	compare(t, "haproxy", live, keyed, reread, nil)
}
