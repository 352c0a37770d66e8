//go:build linux

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeRun runs probe --format json and returns its (last) verdict.
func probeRun(t *testing.T, args ...string) (VerdictLine, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"probe", "--format", "json"}, args...), nil, &out, &errb)
	var v VerdictLine
	if vs := decodeOutput(t, out.Bytes()).verdicts; len(vs) > 0 {
		v = vs[len(vs)-1]
	}
	if v.Type == "" {
		t.Fatalf("probe %v: no verdict (exit %d)\nstdout: %s\nstderr: %s", args, code, out.String(), errb.String())
	}
	return v, code, errb.String()
}

// TestProbeFixLoop is the loop a user goes through on real nginx: a config
// in several files whose WebSocket location falls into the inheritance
// trap → probe says upgrade_header_dropped and names that location →
// --patch applied to the running copy of the config → nginx -t → reload
// (HUP to the master's PID) → probe says ok. Then probe --idle finds the
// 5 s proxy_read_timeout of another location.
func TestProbeFixLoop(t *testing.T) {
	nginx := requireE2E(t)
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch is not installed")
	}
	bin := buildTestGen(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	live := filepath.Join(dir, "live")
	os.MkdirAll(filepath.Join(live, "conf.d"), 0o755)
	proxyPort, backendPort := freePort(t), freePort(t)
	backend := fmt.Sprintf("127.0.0.1:%d", backendPort)
	main := nginxMain(live, "info", "    include conf.d/*.conf;\n")
	app := fmt.Sprintf(`server {
    listen 127.0.0.1:%[1]d;
    server_name app.test;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";

    location /ws {
        proxy_set_header X-Real-IP $remote_addr;
        proxy_pass http://%[2]s;
    }
    location /idle {
        proxy_read_timeout 5s;
        proxy_pass http://%[2]s/ws;
    }
}
`, proxyPort, backend)
	appConf := filepath.Join(live, "conf.d", "app.conf")
	for name, text := range map[string]string{filepath.Join(live, "nginx.conf"): main, appConf: app} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startProc(t, filepath.Join(dir, "backend.log"), bin+"/backend", "-addr", backend)
	ngx := startProc(t, filepath.Join(dir, "nginx.log"), nginx, "-p", live, "-c", filepath.Join(live, "nginx.conf"), "-e", filepath.Join(live, "error.log"), "-g", "daemon off;")
	waitListen(t, backendPort)
	waitListen(t, proxyPort)

	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", proxyPort)
	patchFile := filepath.Join(dir, "fix.patch")
	conf := "--nginx-config=" + filepath.Join(live, "nginx.conf")
	v, code, stderr := probeRun(t, conf, "--patch", patchFile, url)
	if v.Code != "upgrade_header_dropped" || code != exitNotOK {
		t.Fatalf("broken config: %s (exit %d), want upgrade_header_dropped\n%s", v.Code, code, stderr)
	}
	if v.Config == nil || v.Config.File != appConf || v.Config.Line != 8 || v.Config.Block != "location /ws" {
		t.Errorf("config %+v, want %s:8 location /ws", v.Config, appConf)
	}
	if !strings.Contains(strings.Join(v.Findings, " "), "config_headers_not_inherited") {
		t.Errorf("findings %v lack config_headers_not_inherited", v.Findings)
	}
	if !strings.Contains(v.Fix, appConf+":8") {
		t.Errorf("fix does not name %s:8:\n%s", appConf, v.Fix)
	}
	if !strings.Contains(stderr, "patch -p0 < "+patchFile) {
		t.Errorf("probe does not say how to apply the patch:\n%s", stderr)
	}
	// Without the capture: only the client's side, and it says so.
	if v, code, stderr := probeRun(t, "--no-capture", url); v.Code == "ok" || code != exitNotOK || !strings.Contains(stderr, "sees only its own side") || !strings.Contains(v.Fix, "as root on the proxy host") {
		t.Errorf("--no-capture: %s (exit %d), fix %q\n%s", v.Code, code, v.Fix, stderr)
	}
	diff, err := os.ReadFile(patchFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("patch:\n%s", diff)

	// Apply to the running copy, test, reload by the master's PID.
	p := exec.Command("patch", "-p0", "-i", patchFile)
	p.Dir = live
	if out, err := p.CombinedOutput(); err != nil {
		t.Fatalf("patch -p0: %v\n%s", err, out)
	}
	if out, err := exec.Command(nginx, "-t", "-p", live, "-c", filepath.Join(live, "nginx.conf"), "-e", filepath.Join(live, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t after the patch: %v\n%s", err, out)
	}
	if err := ngx.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var after VerdictLine
	for i := 0; i < 20; i++ { // the new workers take over within a moment
		time.Sleep(250 * time.Millisecond)
		// --proxy-config auto: nginx -T as the running master was started
		if after, code, stderr = probeRun(t, "--proxy-config=auto", url); after.Code == "ok" {
			break
		}
	}
	if after.Code != "ok" || code != exitOK {
		t.Fatalf("after the patch and reload: %s (exit %d), want ok\n%s", after.Code, code, stderr)
	}
	if after.Config == nil || after.Config.File != appConf || after.Config.Line != 8 {
		t.Errorf("--proxy-config auto: config %+v, want %s:8\n%s", after.Config, appConf, stderr)
	}

	// The idle timeout of /idle, 5 s, found within a second.
	start := time.Now()
	idle, code, stderr := probeRun(t, conf, "--idle", "10s", fmt.Sprintf("ws://127.0.0.1:%d/idle", proxyPort))
	if idle.Code != "idle_timeout" || code != exitNotOK || idle.Session == nil {
		t.Fatalf("--idle: %s (exit %d), want idle_timeout\n%s", idle.Code, code, stderr)
	}
	if d := idle.Session.DurationS; d < 5 || d > 6 {
		t.Errorf("--idle: session of %.3f s, want 5 s (proxy_read_timeout 5s) within a second", d)
	}
	if !strings.Contains(stderr, "closed after 5.") {
		t.Errorf("the client's own view does not say it was closed after 5 s:\n%s", stderr)
	}
	if el := time.Since(start); el > 9*time.Second {
		t.Errorf("--idle 10s took %s: it should end when the path closes", el)
	}
	if idle.Config == nil || idle.Config.Block != "location /idle" || !strings.Contains(idle.Fix, "proxy_read_timeout 5s") {
		t.Errorf("--idle: config %+v fix %q", idle.Config, idle.Fix)
	}
}

// TestProbeWSS: probe holds its own TLS keys, so the client leg through
// nginx's TLS is decrypted and paired exactly, not judged keyless.
func TestProbeWSS(t *testing.T) {
	nginx := requireE2E(t)
	bin := buildTestGen(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	cert, key := selfSigned(t, dir)
	proxyPort, backendPort := freePort(t), freePort(t)
	conf := nginxMain(dir, "warn", fmt.Sprintf(`    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:%[2]d ssl;
        ssl_certificate %[3]s;
        ssl_certificate_key %[4]s;
        location /ws {
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_pass http://127.0.0.1:%[5]d;
        }
    }
`, dir, proxyPort, cert, key, backendPort))
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	startProc(t, filepath.Join(dir, "backend.log"), bin+"/backend", "-addr", fmt.Sprintf("127.0.0.1:%d", backendPort))
	startProc(t, filepath.Join(dir, "nginx.log"), nginx, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	waitListen(t, backendPort)
	waitListen(t, proxyPort)
	var out, errb bytes.Buffer
	code := run([]string{"probe", "--format", "json", "--insecure", "--nginx-config", path, "--size", "1000", fmt.Sprintf("wss://127.0.0.1:%d/ws", proxyPort)}, nil, &out, &errb)
	s := out.String()
	if code != exitOK || !strings.Contains(s, `"code":"ok"`) || !strings.Contains(s, `"pair_confidence":"exact"`) || strings.Contains(s, "encrypted_leg") || !strings.Contains(s, `"block":"location /ws"`) {
		t.Fatalf("wss probe: exit %d\n%s\n%s", code, s, errb.String())
	}
	if !strings.Contains(s, `"frames_c2s":2`) {
		t.Errorf("the 1000-byte message and the close are not in the session: %s", s)
	}
}

// selfSigned writes a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile
}

// TestLiveProxyFiles: live with --nginx-config and --error-log names the
// location of each attempt and attaches the error-log lines nginx writes
// while the capture runs (the log is followed from its end).
func TestLiveProxyFiles(t *testing.T) {
	nginx := requireE2E(t)
	bin := buildTestGen(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	proxyPort, backendPort, deadPort := freePort(t), freePort(t), freePort(t)
	conf := nginxMain(dir, "warn", fmt.Sprintf(`    server {
        listen 127.0.0.1:%[2]d;
        location /ws {
            proxy_pass http://127.0.0.1:%[3]d;
        }
        location /down {
            proxy_pass http://127.0.0.1:%[4]d;
        }
    }
`, dir, proxyPort, backendPort, deadPort))
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	elog := filepath.Join(dir, "error.log")
	startProc(t, filepath.Join(dir, "backend.log"), bin+"/backend", "-addr", fmt.Sprintf("127.0.0.1:%d", backendPort))
	startProc(t, filepath.Join(dir, "nginx.log"), nginx, "-p", dir, "-c", path, "-e", elog, "-g", "daemon off;")
	waitListen(t, backendPort)
	waitListen(t, proxyPort)
	// an old line of the same client that must not be attached
	f, _ := os.OpenFile(elog, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	fmt.Fprintf(f, "%s [error] 1#1: *99 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: \"GET /down HTTP/1.1\", upstream: \"http://127.0.0.1:%d/down\", host: \"x\"\n", time.Now().Format("2006/01/02 15:04:05"), deadPort)
	f.Close()

	var out, errb bytes.Buffer
	exit := make(chan int, 1)
	filter := fmt.Sprintf("port %d or port %d or port %d", proxyPort, backendPort, deadPort)
	go func() {
		exit <- run([]string{"live", "-i", "lo", "-Z", "root", "--format", "json", "--duration", "5s", "--nginx-config", path, "--error-log", elog, filter}, nil, &out, &errb)
	}()
	time.Sleep(time.Second)
	for _, p := range []string{"/ws", "/down", "/down"} {
		cl := exec.Command(filepath.Join(bin, "client"), "-url", fmt.Sprintf("ws://127.0.0.1:%d%s", proxyPort, p), "-n", "1", "-msgs", "1")
		cl.Run()
		time.Sleep(300 * time.Millisecond)
	}
	<-exit
	var down, ws int
	seen := map[string]bool{}
	for _, l := range strings.Split(out.String(), "\n") {
		var v VerdictLine
		if json.Unmarshal([]byte(l), &v) != nil || v.Type != "verdict" {
			continue
		}
		p := v
		if v.Config == nil || v.Config.File != path {
			t.Errorf("%s: config %+v", p.Path, v.Config)
			continue
		}
		switch p.Path {
		case "/ws":
			ws++
			if v.Code != "upgrade_header_dropped" || v.Config.Line != 10 {
				t.Errorf("/ws: %s at line %d", v.Code, v.Config.Line)
			}
		case "/down":
			down++
			if v.Code != "upstream_connect_failed" || v.Config.Line != 13 || len(v.ErrorLog) != 1 || strings.Contains(v.ErrorLog[0], "*99 ") || seen[v.ErrorLog[0]] {
				t.Errorf("/down: %s at line %d, error_log %q", v.Code, v.Config.Line, v.ErrorLog)
			} else {
				seen[v.ErrorLog[0]] = true
			}
			if !strings.Contains(v.Fix, path+":13") {
				t.Errorf("/down: the fix does not name %s:13: %q", path, v.Fix)
			}
		}
	}
	if ws != 1 || down != 2 {
		t.Errorf("%d /ws and %d /down verdicts, want 1 and 2\n%s\n%s", ws, down, out.String(), errb.String())
	}
}
