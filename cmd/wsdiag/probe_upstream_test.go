//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProbeUpstreamFromConfig: probe in front of HAProxy and of Apache
// httpd, as root, given only the proxy's configuration (--proxy-config
// KIND:FILE): the kernel filter names the backend it reads there (HAProxy:
// the servers of the backends the frontend names; Apache: the target of
// the ProxyPass that takes the path), so that while other clients hammer
// the proxy and another port it captures a few dozen packets and pairs the
// upstream leg. Before, only nginx's configuration named upstreams: with
// HAProxy's or Apache's it took all TCP but the proxy's other clients,
// the other port's thousands of packets too.
func TestProbeUpstreamFromConfig(t *testing.T) {
	r := startRig(t) // the backend (nginx in front of it is not used)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	type proxy struct {
		kind  string
		start func(port int) string // writes the config, starts the proxy, returns the file
	}
	haproxy := func(port int) string {
		bin := requireBin(t, "haproxy")
		f := filepath.Join(dir, "haproxy.cfg")
		os.WriteFile(f, []byte(fmt.Sprintf(`defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:%d
    use_backend ws if { path_beg /ws }
    default_backend web
backend ws
    server b1 %s
backend web
    http-request return status 404
`, port, r.backend)), 0o644)
		startProc(t, filepath.Join(dir, "haproxy.log"), bin, "-db", "-f", f)
		return f
	}
	apache := func(port int) string {
		bin := requireBin(t, "apache2")
		return startApache(t, bin, filepath.Join(dir, "apache"), port, "", fmt.Sprintf("ProxyPass /ws http://%s/ws upgrade=websocket\n", r.backend))
	}
	for _, p := range []proxy{{kind: "haproxy", start: haproxy}, {kind: "apache", start: apache}} {
		t.Run(p.kind, func(t *testing.T) {
			port := freePort(t)
			file := p.start(port)
			waitListen(t, port)
			noise, stop := noiseAround(t, fmt.Sprintf("127.0.0.1:%d", port), freePort(t))
			defer stop()
			before := noise()
			var out, errb bytes.Buffer
			code := run([]string{"probe", "--format", "json", "--proxy-config", p.kind + ":" + file,
				fmt.Sprintf("ws://127.0.0.1:%d/ws/ok", port)}, nil, &out, &errb)
			o := decodeOutput(t, out.Bytes())
			if code != exitOK || len(o.verdicts) != 1 || o.verdicts[0].Code != "ok" || len(o.verdicts[0].Legs) != 2 {
				t.Fatalf("exit %d, %+v\n%s", code, o.verdicts, errb.String())
			}
			// The probe's connection and the proxy's upstream one, with
			// the close handshake: about twenty packets each.
			if n := noise() - before; o.summary.Packets == 0 || o.summary.Packets > 60 || n < 50 {
				t.Errorf("%d packets captured while %d other connections ran", o.summary.Packets, n)
			}
		})
	}
}

// requireBin returns the path of a proxy's binary, or skips (fails under
// CI, where .ci/run installs it).
func requireBin(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startApache writes an apache2.conf in dir (Debian's apache2, event MPM,
// mod_proxy_http and the extra modules named, workers as www-data,
// listening on 127.0.0.1:port) ending in body, starts apache2 on it in the
// foreground until the test ends, and returns the file.
func startApache(t *testing.T, bin, dir string, port int, modules, body string) string {
	t.Helper()
	for _, d := range []string{"logs", "run"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	m := "/usr/lib/apache2/modules"
	var b strings.Builder
	fmt.Fprintf(&b, "ServerRoot %q\nPidFile %q\nMutex file:%s default\n", dir, filepath.Join(dir, "run", "apache2.pid"), filepath.Join(dir, "run"))
	for _, mod := range append([]string{"mpm_event_module", "authz_core_module", "proxy_module", "proxy_http_module"}, strings.Fields(modules)...) {
		fmt.Fprintf(&b, "LoadModule %s %s/mod_%s.so\n", mod, m, strings.TrimSuffix(mod, "_module"))
	}
	fmt.Fprintf(&b, "User www-data\nGroup www-data\nServerName 127.0.0.1\nListen 127.0.0.1:%d\nErrorLog %q\nLogLevel warn\n%s", port, filepath.Join(dir, "logs", "error.log"), body)
	f := filepath.Join(dir, "apache2.conf")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	startProc(t, filepath.Join(dir, "apache2.log"), bin, "-f", f, "-DFOREGROUND")
	return f
}
