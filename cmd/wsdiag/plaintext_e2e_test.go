//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/capture/tlsplain"
	"github.com/wsdiag/wsdiag/cmd/internal/browser"
)

// live --tls-plaintext end to end: real nginx and HAProxy serving TLS on
// 127.0.0.1, started before wsdiag attaches, real clients writing a key
// log. The same run is judged twice: by `live --tls-plaintext`, keyless,
// from the packets and the proxies' plaintext; and by `read --keylog`
// from tcpdump's recording of it with the clients' key log. They must
// agree on every attempt — code, hop, statuses, pairing, findings,
// evidence and fix (times and durations aside: the proxy's calls and the
// packets are microseconds apart). The file live writes with -w (packets
// and plaintext) must read back, keyless, to live's verdicts exactly; and
// tcpdump's recording read without keys must say what it could not see.

// requirePlaintext skips where the probes cannot run (saying why), and
// returns the proxy binary named.
func requirePlaintext(t *testing.T, bin string) string {
	t.Helper()
	if err := tlsplain.Check(); err != nil {
		t.Skip(err)
	}
	return requireBin(t, bin)
}

// plainRun is one run: its files, the clients' key log, the ports.
type plainRun struct {
	dir      string
	keysPath string
	keys     *keyLogFile
	ports    []int
}

func newPlainRun(t *testing.T) *plainRun {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // nginx's workers (nobody) look for files in it
	os.Chmod(dir, 0o755)
	r := &plainRun{dir: dir, keysPath: filepath.Join(dir, "keys.log")}
	f, err := os.OpenFile(r.keysPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r.keys = &keyLogFile{w: f}
	return r
}

func (r *plainRun) filter() string {
	var f []string
	for _, p := range r.ports {
		f = append(f, fmt.Sprintf("port %d", p))
	}
	return strings.Join(f, " or ")
}

// tcpdump records the run's ports on lo until the returned func is
// called.
func (r *plainRun) tcpdump(t *testing.T) func() {
	t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tcpdump is not installed")
		}
		t.Skip("tcpdump is not installed")
	}
	path := filepath.Join(r.dir, "run.pcap")
	cmd := exec.Command(bin, "-i", "lo", "-Z", "root", "-U", "-s", "0", "-w", path, r.filter())
	var errb bytes.Buffer
	cmd.Stderr = &syncWriter{w: &errb}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && !strings.Contains(cmd.Stderr.(*syncWriter).String(), "listening on"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		time.Sleep(2 * time.Second) // tcpdump hands packets over in blocks
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	t.Cleanup(stop)
	return stop
}

// live starts `wsdiag live --tls-plaintext` on lo for d, and returns what
// waits for its end and gives its output.
func (r *plainRun) live(t *testing.T, d time.Duration, extra ...string) func() (jsonOutput, int, string) {
	t.Helper()
	var out bytes.Buffer
	errb := &syncWriter{w: &bytes.Buffer{}}
	// (-Z root: live drops root in this process otherwise.)
	args := append([]string{"live", "--tls-plaintext", "-Z", "root", "-i", "lo", "--all", "--format", "json", "--duration", d.String(),
		"-w", filepath.Join(r.dir, "live.pcapng")}, extra...)
	args = append(args, r.filter())
	exit := make(chan int, 1)
	go func() { exit <- run(args, nil, &out, errb) }()
	// The probes and the socket are open after the calibration.
	time.Sleep(1500 * time.Millisecond)
	return func() (jsonOutput, int, string) {
		code := <-exit
		return decodeOutput(t, out.Bytes()), code, errb.String()
	}
}

// syncWriter is a writer two goroutines may use (run's stderr while the
// test reads it).
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// TestLiveTLSPlaintextNginx: nginx 1.22 (two workers, TLS, HTTP/2
// offered) with the locations the proxy decides on by itself and the
// ones it forwards; a session open before the attach and then cut by
// proxy_read_timeout; curl over HTTP/2; a reload in the middle.
func TestLiveTLSPlaintextNginx(t *testing.T) {
	nginx := requirePlaintext(t, "nginx")
	r := newPlainRun(t)
	cert, key := selfSigned(t, r.dir)
	be := wsBackend(t)
	_, bePort, _ := strings.Cut(be, ":")
	// The session open before the attach goes to a server of its own:
	// what the analyzer says of the proxy's other requests stays the same
	// whether or not one of them was seen.
	port, port2 := freePort(t), freePort(t)
	os.MkdirAll(filepath.Join(r.dir, "www"), 0o755)
	upgrade := `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;`
	conf := nginxMain(r.dir, "warn", fmt.Sprintf(`    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
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
`, port, cert, key, r.dir, be, upgrade, port2))
	conf = strings.Replace(conf, "worker_processes 1;", "worker_processes 2;", 1)
	os.WriteFile(filepath.Join(r.dir, "nginx.conf"), []byte(conf), 0o644)
	cmd := startProc(t, filepath.Join(r.dir, "nginx.log"), nginx, "-c", filepath.Join(r.dir, "nginx.conf"), "-p", r.dir, "-g", "daemon off;")
	master := cmd.Process.Pid
	waitListen(t, port)
	waitListen(t, port2)
	var bp int
	fmt.Sscan(bePort, &bp)
	r.ports = []int{port, port2, bp}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stopDump := r.tcpdump(t)

	// A session opened before the attach, silent after its messages.
	ready, attached, preDone := make(chan struct{}), make(chan struct{}), make(chan wsResult)
	go func() {
		preDone <- wsAttempt{addr: fmt.Sprintf("127.0.0.1:%d", port2), path: "/timeout", msgs: 3, silent: true, mid: func() { close(ready); <-attached }}.run(t, r.keys)
	}()
	<-ready
	wait := r.live(t, 14*time.Second)
	close(attached)

	partial := map[string]string{}
	for _, a := range []struct {
		wsAttempt
		want string
	}{
		{wsAttempt{addr: addr, path: "/ok", msgs: 2}, "101"},
		{wsAttempt{addr: addr, path: "/broken", msgs: 2}, "400"},
		{wsAttempt{addr: addr, path: "/deny"}, "403"},
		{wsAttempt{addr: addr, path: "/missing"}, "404"},
		{wsAttempt{addr: addr, path: "/ok", header: "Cookie: " + strings.Repeat("c", 2000) + "\r\n"}, "400"},
	} {
		res := a.run(t, r.keys)
		if !strings.HasPrefix(res.status, a.want) {
			t.Errorf("%s: %q, want %s", a.path, res.status, a.want)
		}
		if a.header != "" {
			partial[res.client] = "nginx refused the header block before reading all of it: the plaintext holds what it read"
		}
	}
	for _, p := range []string{"/deny", "/missing"} {
		c := exec.Command("curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", fmt.Sprintf("https://127.0.0.1:%d%s", port, p))
		c.Env = append(os.Environ(), "SSLKEYLOGFILE="+r.keysPath)
		if out, err := c.Output(); err != nil || !strings.HasSuffix(string(out), " 2") {
			t.Errorf("curl --http2 %s: %q %v", p, out, err)
		}
	}

	// A reload: new workers serve the rest.
	old := childrenOf(master)
	syscall.Kill(master, syscall.SIGHUP)
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		if n := childrenOf(master); len(n) >= 2 && !slices.Contains(old, n[0]) && !slices.Contains(old, n[len(n)-1]) {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, a := range []wsAttempt{{addr: addr, path: "/ok", msgs: 1}, {addr: addr, path: "/broken"}} {
		a.run(t, r.keys)
	}
	pre := <-preDone
	if !strings.HasPrefix(pre.status, "101") {
		t.Errorf("the session open before the attach: %q", pre.status)
	}
	partial[pre.client] = "open before the attach: live sees the session from its middle"

	live, code, stderr := wait()
	stopDump()
	if code == exitTrouble || strings.Contains(stderr, "--tls-plaintext") {
		t.Fatalf("live: exit %d\n%s", code, stderr)
	}
	ps := live.summary.TLSPlaintext
	if ps == nil || ps.Processes < 3 || ps.Connections < 10 || ps.RingDrops != 0 || ps.LostBytes != 0 || ps.MidStream != 1 || ps.Skipped != 0 {
		t.Errorf("the summary's tls_plaintext: %+v", ps)
	}
	keyed, kerr := readAll(t, "--keylog", r.keysPath, filepath.Join(r.dir, "run.pcap"))
	reread, rerr := readAll(t, filepath.Join(r.dir, "live.pcapng"))
	if kerr != "" || rerr != "" {
		t.Errorf("read: %s %s", kerr, rerr)
	}
	comparePlain(t, "nginx", append(live.verdicts, live.exchanges...), keyed, reread, partial)
	saveCaptures(t, "nginx", r)

	// Without keys the recording judges what went upstream, and says how
	// many TLS connections the proxy answered itself.
	_, sum, _, _ := readJSON(t, "--all", filepath.Join(r.dir, "run.pcap"))
	if sum.TLSSelfAnswered != 5 {
		t.Errorf("read without keys: %d TLS connections answered by the proxy itself, want 5 (/deny, /missing, the cookie, curl's two)", sum.TLSSelfAnswered)
	}
}

// TestLiveTLSPlaintextHAProxy: HAProxy 2.6 (TLS, ALPN h2 and http/1.1): a
// WebSocket over HTTP/1.1, one refused by an http-request deny, headless
// Chromium opening one over HTTP/2 (RFC 8441 extended CONNECT), curl over
// HTTP/2.
func TestLiveTLSPlaintextHAProxy(t *testing.T) {
	haproxy := requirePlaintext(t, "haproxy")
	chromium := browser.Need(t, testing.Short())
	r := newPlainRun(t)
	cert, key := selfSigned(t, r.dir)
	both := filepath.Join(r.dir, "both.pem")
	c, _ := os.ReadFile(cert)
	k, _ := os.ReadFile(key)
	os.WriteFile(both, append(c, k...), 0o600)
	be := wsBackend(t)
	_, bePort, _ := strings.Cut(be, ":")
	var bp int
	fmt.Sscan(bePort, &bp)
	port := freePort(t)
	page := fmt.Sprintf(`<html><body><script>fetch('/hold');var w=new WebSocket('wss://127.0.0.1:%d/ws');w.onopen=function(){w.send('hello from chromium');};w.onmessage=function(e){document.title='got:'+e.data;w.close(1000,'done');};w.onclose=function(e){document.title+=' close:'+e.code;};</script></body></html>`, port)
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
	os.WriteFile(filepath.Join(r.dir, "haproxy.cfg"), []byte(conf), 0o644)
	startProc(t, filepath.Join(r.dir, "haproxy.log"), haproxy, "-db", "-f", filepath.Join(r.dir, "haproxy.cfg"))
	waitListen(t, port)
	r.ports = []int{port, bp}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stopDump := r.tcpdump(t)
	wait := r.live(t, 20*time.Second)

	if res := (wsAttempt{addr: addr, path: "/ws", msgs: 2}).run(t, r.keys); !strings.HasPrefix(res.status, "101") {
		t.Errorf("/ws: %q", res.status)
	}
	if res := (wsAttempt{addr: addr, path: "/deny"}).run(t, r.keys); !strings.HasPrefix(res.status, "403") {
		t.Errorf("/deny: %q", res.status)
	}
	cu := exec.Command("curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", fmt.Sprintf("https://127.0.0.1:%d/deny", port))
	cu.Env = append(os.Environ(), "SSLKEYLOGFILE="+r.keysPath)
	if out, err := cu.Output(); err != nil || string(out) != "403 2" {
		t.Errorf("curl --http2 /deny: %q %v", out, err)
	}
	// (Whether the page saw the close before its DOM was dumped depends
	// on the machine's load, and on a loaded machine the page may be
	// dumped before its WebSocket answered: a second try. Every try's
	// connections are judged alike on both sides.)
	var out []byte
	for try := 0; try < 2 && !strings.Contains(string(out), "<title>got:hello from chromium"); try++ {
		ch := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+filepath.Join(r.dir, fmt.Sprint("chromium", try)),
			"--ignore-certificate-errors", "--virtual-time-budget=10000", "--dump-dom", fmt.Sprintf("https://127.0.0.1:%d/", port))
		ch.Env = append(os.Environ(), "SSLKEYLOGFILE="+r.keysPath)
		out, _ = ch.Output()
	}
	if !strings.Contains(string(out), "<title>got:hello from chromium") {
		t.Errorf("chromium: %s", out)
	}

	live, code, stderr := wait()
	stopDump()
	if code == exitTrouble || strings.Contains(stderr, "--tls-plaintext") {
		t.Fatalf("live: exit %d\n%s", code, stderr)
	}
	keyed, _ := readAll(t, "--keylog", r.keysPath, filepath.Join(r.dir, "run.pcap"))
	reread, _ := readAll(t, filepath.Join(r.dir, "live.pcapng"))
	comparePlain(t, "haproxy", append(live.verdicts, live.exchanges...), keyed, reread, nil)
	saveCaptures(t, "haproxy", r)
}

// saveCaptures copies the run's captures (live's -w file with the
// plaintext, tcpdump's with the key log) to WSDIAG_SAVE_CAPTURES, which
// is how testdata/gen/tlsplain.sh makes testdata.
func saveCaptures(t *testing.T, name string, r *plainRun) {
	dir := os.Getenv("WSDIAG_SAVE_CAPTURES")
	if dir == "" || t.Failed() {
		return
	}
	for from, to := range map[string]string{"live.pcapng": "tls-plaintext-" + name + ".pcapng",
		"run.pcap": "tls-plaintext-" + name + "-tcpdump.pcap", "keys.log": "tls-plaintext-" + name + "-tcpdump.keylog"} {
		b, err := os.ReadFile(filepath.Join(r.dir, from))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, to), b, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}
}

// childrenOf lists the PIDs whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		c, err1 := strconv.Atoi(e.Name())
		pp, err2 := strconv.Atoi(f[min(1, len(f)-1)])
		if len(f) > 1 && err1 == nil && err2 == nil && pp == pid {
			out = append(out, c)
		}
	}
	return out
}

// TestLiveTLSPlaintextUnavailable: where the probes cannot run, live
// --tls-plaintext says why in one line and captures as without the flag.
func TestLiveTLSPlaintextUnavailable(t *testing.T) {
	requireE2E(t)
	defer func(f func(tlsplain.Options) (*tlsplain.Probe, error)) { openProbes = f }(openProbes)
	openProbes = func(tlsplain.Options) (*tlsplain.Probe, error) {
		return nil, fmt.Errorf("%w: the kernel has no BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)", tlsplain.ErrUnsupported)
	}
	var out, errb bytes.Buffer
	code := run([]string{"live", "--tls-plaintext", "-Z", "root", "-i", "lo", "--format", "json", "--duration", "1s", fmt.Sprintf("port %d", freePort(t))}, nil, &out, &errb)
	var warn []string
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if strings.Contains(l, "--tls-plaintext") {
			warn = append(warn, l)
		}
	}
	if code != exitOK || len(warn) != 1 || !strings.Contains(warn[0], "--tls-plaintext: TLS plaintext capture is not available: the kernel has no BTF") {
		t.Errorf("exit %d, warnings %q\n%s", code, warn, errb.String())
	}
	if o := decodeOutput(t, out.Bytes()); o.summary.Type != "summary" || o.summary.TLSPlaintext != nil {
		t.Errorf("summary %+v", o.summary)
	}
}

// TestLiveTLSPlaintextApache: Apache httpd 2.4 (event MPM, mod_ssl, its
// workers running as www-data): a WebSocket relayed with upgrade=websocket,
// one through a ProxyPass without it (mod_proxy_http drops Upgrade: the
// backend answers 400), one refused by Require all denied, a 404 of its
// own. mod_ssl reads and writes through BIOs of its own filters rather
// than the socket, which the probes must still place on their connection.
func TestLiveTLSPlaintextApache(t *testing.T) {
	apache := requirePlaintext(t, "apache2")
	r := newPlainRun(t)
	cert, key := selfSigned(t, r.dir)
	be := wsBackend(t)
	_, bePort, _ := strings.Cut(be, ":")
	var bp int
	fmt.Sscan(bePort, &bp)
	port := freePort(t)
	startApache(t, apache, r.dir, port, "ssl_module", fmt.Sprintf(`<VirtualHost 127.0.0.1:%[1]d>
    SSLEngine on
    SSLCertificateFile %[2]s
    SSLCertificateKeyFile %[3]s
    ProxyPass /ok http://%[4]s/ok upgrade=websocket
    ProxyPass /broken http://%[4]s/broken
    <Location /deny>
        Require all denied
    </Location>
</VirtualHost>
`, port, cert, key, be))
	waitListen(t, port)
	r.ports = []int{port, bp}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stopDump := r.tcpdump(t)
	wait := r.live(t, 6*time.Second)

	for _, a := range []struct {
		wsAttempt
		want string
	}{
		{wsAttempt{addr: addr, path: "/ok", msgs: 2}, "101"},
		{wsAttempt{addr: addr, path: "/broken", msgs: 1}, "400"},
		{wsAttempt{addr: addr, path: "/deny"}, "403"},
		{wsAttempt{addr: addr, path: "/missing"}, "404"},
	} {
		if res := a.run(t, r.keys); !strings.HasPrefix(res.status, a.want) {
			t.Errorf("%s: %q, want %s", a.path, res.status, a.want)
		}
	}

	live, code, stderr := wait()
	stopDump()
	if code == exitTrouble || strings.Contains(stderr, "--tls-plaintext") {
		t.Fatalf("live: exit %d\n%s", code, stderr)
	}
	if ps := live.summary.TLSPlaintext; ps == nil || ps.Processes < 2 || ps.Connections < 4 || ps.RingDrops != 0 || ps.LostBytes != 0 {
		t.Errorf("the summary's tls_plaintext: %+v", ps)
	}
	keyed, kerr := readAll(t, "--keylog", r.keysPath, filepath.Join(r.dir, "run.pcap"))
	reread, rerr := readAll(t, filepath.Join(r.dir, "live.pcapng"))
	if kerr != "" || rerr != "" {
		t.Errorf("read: %s %s", kerr, rerr)
	}
	comparePlain(t, "apache", append(live.verdicts, live.exchanges...), keyed, reread, nil)
	want := map[string]string{"/ok": "ok", "/broken": "upgrade_header_dropped", "/deny": "proxy_rejected", "/missing": "proxy_rejected"}
	for _, v := range live.verdicts {
		if w, ok := want[v.Path]; ok && v.Code != w {
			t.Errorf("live: %s is %s, want %s", v.Path, v.Code, w)
		}
		delete(want, v.Path)
	}
	if len(want) > 0 {
		t.Errorf("live: no verdict for %v", want)
	}
	saveCaptures(t, "apache", r)
}
