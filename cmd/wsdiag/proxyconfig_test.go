package main

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/analyze/nginxconf"
	"github.com/wsdiag/wsdiag/reassembly"
)

func readConf(t *testing.T, args ...string) ([]VerdictLine, int, string) {
	t.Helper()
	vs, _, code, stderr := readJSON(t, args...)
	return vs, code, stderr
}

// TestConfigMulti: through one nginx whose config is in six files
// (testdata/gen/configs.sh), every attempt is placed in the server and
// location nginx chose, by file and line. The table follows the script's
// ATTEMPTS, in capture order; the lines were read off its heredocs.
func TestConfigMulti(t *testing.T) {
	const dir = "/tmp/wsdiag-configs.gen/"
	want := []struct {
		path, code, file string
		line             int
		block, server    string
		trap             bool // config_headers_not_inherited
	}{
		{"/ws/a", "ok", "sites/app.conf", 8, "location /ws/", "server app.test", false},
		{"/ws/trap", "upgrade_header_dropped", "sites/app.conf", 11, "location /ws/trap", "server app.test", true},
		{"/ws/static/app.js", "ok", "sites/app.conf", 15, "location ^~ /ws/static/", "server app.test", false},
		{"/ws/b.js", "upgrade_header_dropped", "sites/app.conf", 18, `location ~ \.js$`, "server app.test", true},
		{"/ws/rx/42", "ok", "sites/app.conf", 22, "location ~ ^/ws/rx/", "server app.test", false},
		{"/ws/nest/deep", "upgrade_header_dropped", "sites/app.conf", 30, "location /ws/nest/deep", "server app.test", true},
		{"/ws/exact", "upstream_http10", "sites/app.conf", 35, "location = /ws/exact", "server app.test", false},
		{"/ws/a", "upgrade_header_dropped", "sites/other.conf", 4, "location /ws/", "server other.test", false},
		{"/ws/a", "upgrade_header_dropped", "sites/other.conf", 4, "location /ws/", "server other.test", false},
		{"/ws/a", "ok", "sites/app.conf", 8, "location /ws/", "server app.test", false},
		{"/ws/a", "ok", "sites/regex.conf", 4, "location /ws/", `server ~^re\d+\.test$`, false},
		{"/ws/a", "proxy_rejected", "sites/regex.conf", 12, "location /", "server fallback.test", false},
	}
	vs, _, stderr := readConf(t, "--nginx-config", filepath.Join(capturesDir, "configs-multi.nginx-T.txt"), filepath.Join(capturesDir, "configs-multi.pcap"))
	if len(vs) != len(want) {
		t.Fatalf("%d verdicts, want %d\n%s", len(vs), len(want), stderr)
	}
	for i, w := range want {
		v := vs[i]
		c := v.Config
		if v.Path != w.path || v.Code != w.code || c == nil {
			t.Errorf("attempt %d: %s %s config %v, want %s %s", i+1, v.Path, v.Code, c, w.path, w.code)
			continue
		}
		if c.File != dir+w.file || c.Line != w.line || c.Block != w.block || c.Server != w.server {
			t.Errorf("attempt %d %s: %s:%d %q in %q, want %s:%d %q in %q", i+1, w.path, c.File, c.Line, c.Block, c.Server, dir+w.file, w.line, w.block, w.server)
		}
		if got := contains(v.Findings, "config_headers_not_inherited"); got != w.trap {
			t.Errorf("attempt %d %s: config_headers_not_inherited %v, want %v (findings %v)", i+1, w.path, got, w.trap, v.Findings)
		}
		if v.Code != "ok" && v.Code != "proxy_rejected" && !strings.Contains(v.Fix, c.File+":"+strconv.Itoa(c.Line)) {
			t.Errorf("attempt %d %s: the fix does not name %s:%d:\n%s", i+1, w.path, c.File, c.Line, v.Fix)
		}
	}
	// The nested location's Connection "" comes from a snippet: named there.
	if p := strings.Join(vs[5].Config.Problems, "; "); !strings.Contains(p, dir+"snippets/keepalive.conf:2") {
		t.Errorf("/ws/nest/deep: problems do not name snippets/keepalive.conf:2: %s", p)
	}
}

// TestConfigGenCaptures: the gen.sh captures with their configs (written
// by gen.sh --configs-only) name the scenario's location for every attempt.
func TestConfigGenCaptures(t *testing.T) {
	dumps, _ := filepath.Glob(filepath.Join(capturesDir, "*.nginx-T.txt"))
	n := 0
	for _, d := range dumps {
		name := strings.TrimSuffix(filepath.Base(d), ".nginx-T.txt")
		if name == "configs-multi" || name == "haproxy-chain" {
			continue // their own tests
		}
		pcap := filepath.Join(capturesDir, name+".pcap")
		if _, err := os.Stat(pcap); err != nil {
			pcap += "ng"
		}
		vs, _, stderr := readConf(t, "--nginx-config", d, pcap)
		if len(vs) == 0 {
			t.Errorf("%s: no verdicts: %s", name, stderr)
		}
		for _, v := range vs {
			c := v.Config
			if c == nil || c.File != "/tmp/wsdiag-gen.configs/"+name+"/nginx.conf" || !strings.HasPrefix(c.Block, "location /") || c.Line < 20 || c.Line > 21 {
				t.Errorf("%s %s: config %+v, want the scenario's location at nginx.conf:20", name, v.Path, c)
			}
			if !strings.HasPrefix(v.Path, strings.TrimPrefix(c.Block, "location ")) {
				t.Errorf("%s: path %s in %q", name, v.Path, c.Block)
			}
		}
		n++
	}
	if n < 25 {
		t.Errorf("only %d gen.sh captures have a saved nginx -T (run testdata/gen/gen.sh --configs-only)", n)
	}
}

// TestConfigOtherProxies: HAProxy, Apache and Caddy attempts name the
// config file and the frontend, virtual host (ProxyPass) or site; in the
// haproxy → nginx chain the blamed nginx's location is named.
func TestConfigOtherProxies(t *testing.T) {
	cases := []struct {
		name, flag, file string
		line             int
		block, problem   string
	}{
		{"haproxy-correct", "haproxy", "haproxy-correct.haproxy.cfg", 9, "frontend fe", ""},
		{"haproxy-backend-down", "haproxy", "haproxy-backend-down.haproxy.cfg", 9, "frontend fe", ""},
		{"apache-no-upgrade", "apache", "apache-no-upgrade.apache2.conf", 14, "ProxyPass /ws http://127.0.0.1:9001/ws", "no upgrade=websocket"},
		{"apache-correct", "apache", "apache-correct.apache2.conf", 14, "ProxyPass /ws http://127.0.0.1:9001/ws", ""},
		{"caddy-correct", "caddy", "caddy-correct.Caddyfile", 5, "site http://127.0.0.1:8080", ""},
		{"caddy-backend-down", "caddy", "caddy-backend-down.Caddyfile", 5, "site http://127.0.0.1:8080", ""},
	}
	for _, c := range cases {
		file := filepath.Join(capturesDir, c.file)
		vs, _, stderr := readConf(t, "--proxy-config", c.flag+":"+file, filepath.Join(capturesDir, c.name+".pcap"))
		if len(vs) == 0 {
			t.Errorf("%s: no verdicts: %s", c.name, stderr)
		}
		for _, v := range vs {
			if v.Config == nil || v.Config.File != file || v.Config.Line != c.line || v.Config.Block != c.block {
				t.Errorf("%s: config %+v, want %s:%d %s", c.name, v.Config, file, c.line, c.block)
				continue
			}
			if p := strings.Join(v.Config.Problems, "; "); c.problem != "" && !strings.Contains(p, c.problem) || c.problem == "" && p != "" {
				t.Errorf("%s: problems %q, want %q", c.name, p, c.problem)
			}
		}
	}
	vs, _, _ := readConf(t, "--proxy-config", "haproxy:"+filepath.Join(capturesDir, "haproxy-chain.haproxy.cfg"),
		"--nginx-config", filepath.Join(capturesDir, "haproxy-chain.nginx-T.txt"), filepath.Join(capturesDir, "haproxy-chain.pcap"))
	for _, v := range vs {
		if v.Code != "upgrade_header_dropped" || v.Config == nil || v.Config.File != "/tmp/wsdiag-proxies.configs/haproxy-chain/nginx.conf" || v.Config.Block != "location /" {
			t.Errorf("haproxy-chain: %s config %+v, want nginx's location /", v.Code, v.Config)
		}
	}
}

// TestPatchNginxDefaults: --patch on the nginx-defaults capture writes
// the diff below; it applies with patch -p0 to the files of the dump, and
// the patched config then passes the upgrade.
func TestPatchNginxDefaults(t *testing.T) {
	dump := filepath.Join(capturesDir, "nginx-defaults.nginx-T.txt")
	out := filepath.Join(t.TempDir(), "fix.patch")
	var stdout, stderr bytes.Buffer
	code := run([]string{"read", "--nginx-config", dump, "--patch", out, filepath.Join(capturesDir, "nginx-defaults.pcap")}, nil, &stdout, &stderr)
	if code != exitNotOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "cd /tmp/wsdiag-gen.configs/nginx-defaults && patch -p0 < "+out+" && nginx -t") {
		t.Errorf("stdout does not say how to apply it:\n%s", stdout.String())
	}
	diff, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	const want = `--- nginx.conf
+++ nginx.conf
@@ -17,7 +17,12 @@
     server {
         listen 127.0.0.1:8080;
         server_name localhost;
-        location /ws { proxy_pass http://127.0.0.1:9001; }
+        location /ws {
+            proxy_http_version 1.1;
+            proxy_set_header Upgrade $http_upgrade;
+            proxy_set_header Connection $connection_upgrade;
+            proxy_pass http://127.0.0.1:9001;
+        }
         location = /health { proxy_pass http://127.0.0.1:9001; }
     }
 }
`
	if string(diff) != want {
		t.Errorf("patch:\n%s\nwant:\n%s", diff, want)
	}
	// Apply it to the dump's files, as the user would on the proxy host.
	f, _ := os.Open(dump)
	cfg, err := nginxconf.ParseDump(f, dump)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for name, text := range cfg.Files {
		rel, _ := filepath.Rel(cfg.Prefix, name)
		os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755)
		os.WriteFile(filepath.Join(root, rel), text, 0o644)
	}
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch is not installed")
	}
	p := exec.Command("patch", "-p0", "-i", out)
	p.Dir = root
	if o, err := p.CombinedOutput(); err != nil {
		t.Fatalf("patch -p0: %v\n%s", err, o)
	}
	fixed, err := nginxconf.Load(filepath.Join(root, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := fixed.Find(netip.MustParseAddrPort("127.0.0.1:8080"), "127.0.0.1:8080", "/ws")
	if !ok || m.Leaf() == nil {
		t.Fatal("patched config: no location for /ws")
	}
	u := m.Effective()
	if ps := u.Problems(m.Leaf()); len(ps) > 0 {
		t.Errorf("patched config still has problems: %v", ps)
	}
}

// TestErrorLogAttached: each attempt of backend-down gets its own nginx
// error-log line (three attempts from one client address in one second,
// told apart by nginx's connection numbers in order); a file that is no
// nginx error log is a warning, not an error.
func TestErrorLogAttached(t *testing.T) {
	pcap := filepath.Join(capturesDir, "backend-down.pcap")
	vs, code, stderr := readConf(t, "--error-log", filepath.Join(capturesDir, "backend-down.nginx-error.log"), pcap)
	if code != exitNotOK || stderr != "" || len(vs) != 3 {
		t.Fatalf("exit %d, %d verdicts, stderr %q", code, len(vs), stderr)
	}
	seen := map[string]bool{}
	for _, v := range vs {
		if len(v.ErrorLog) != 1 || !strings.Contains(v.ErrorLog[0], "connect() failed (111: Connection refused) while connecting to upstream") {
			t.Errorf("%s: error_log %q, want its one connect() failed line", v.Code, v.ErrorLog)
			continue
		}
		conn := strings.Fields(v.ErrorLog[0])[4]
		if seen[conn] {
			t.Errorf("connection %s's line attached twice", conn)
		}
		seen[conn] = true
	}
	// A line about another client or another moment is not attached.
	vs, _, _ = readConf(t, "--error-log", filepath.Join(capturesDir, "backend-down.nginx-error.log"), filepath.Join(capturesDir, "nginx-defaults.pcap"))
	for _, v := range vs {
		if len(v.ErrorLog) > 0 {
			t.Errorf("nginx-defaults got backend-down's lines: %q", v.ErrorLog)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk.log")
	os.WriteFile(junk, []byte("this is not\nan nginx error log\n"), 0o644)
	vs, code, stderr = readConf(t, "--error-log", junk, pcap)
	if code != exitNotOK || len(vs) != 3 || !strings.Contains(stderr, "warning: --error-log "+junk+": not an nginx error log") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("junk log: exit %d, %d verdicts, stderr %q", code, len(vs), stderr)
	}
	if _, code, stderr = readConf(t, "--error-log", junk+".missing", pcap); code != exitTrouble || strings.Count(stderr, "\n") != 1 {
		t.Errorf("missing log: exit %d, stderr %q", code, stderr)
	}
}

// FuzzErrorLog: any bytes as an error log, parsed and matched, without a
// panic and within the bounds.
func FuzzErrorLog(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join(capturesDir, "backend-down.nginx-error.log"))
	f.Add(b)
	f.Add([]byte("2026/11/21 13:34:11 [error] 1#1: *1 x, client: 1.2.3.4, upstream: \"http://[::1]:80/\", request: \"GET\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		el := &errorLog{name: "fuzz"}
		for _, l := range bytes.Split(data, []byte("\n")) {
			el.add(l)
		}
		for _, e := range el.entries {
			if len(e.line) > maxLogLine+4 {
				t.Fatalf("line of %d bytes kept", len(e.line))
			}
		}
		// Matched against attempts of each kind, each line goes under one
		// at most.
		at := time.Date(2026, 11, 21, 13, 34, 11, 0, time.Local)
		c := netip.MustParseAddrPort("127.0.0.1:5000")
		seen := map[string]int{}
		for _, st := range []int{101, 502, 403, 504, 0} {
			v := &analyze.Verdict{Time: at, End: at.Add(time.Second), Client: c, Legs: []analyze.Leg{
				{Client: c, RequestLine: "GET /ws HTTP/1.1", Status: st, Times: analyze.LegTimes{Request: at}}}}
			for _, l := range el.match(v) {
				seen[l]++
			}
		}
		for l, n := range seen {
			if n > 1 && strings.Count(string(data), l) < n {
				t.Fatalf("line %q under %d attempts", l, n)
			}
		}
		for _, w := range el.close() {
			if strings.Contains(w, "\n") {
				t.Fatalf("multi-line warning %q", w)
			}
		}
	})
}

// TestErrorLogFollow: live follows the log from its end, reads what is
// appended (a partial last line waits for its end), and starts over when
// the file is rotated.
func TestErrorLogFollow(t *testing.T) {
	name := filepath.Join(t.TempDir(), "error.log")
	os.WriteFile(name, []byte("2026/11/21 13:34:10 [error] 1#1: *9 old line, client: 127.0.0.1, server: x, request: \"GET /ws HTTP/1.1\", host: \"h\"\n"), 0o644)
	el, err := openErrorLog(name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer el.close()
	at := time.Date(2026, 11, 21, 13, 34, 11, 0, time.Local)
	client := netip.MustParseAddrPort("127.0.0.1:5000")
	v := &analyze.Verdict{Time: at, End: at, Client: client, Path: "/ws", StatusClient: 502, Legs: []analyze.Leg{{
		Client: client, RequestLine: "GET /ws HTTP/1.1", RequestHeaders: reassembly.Headers{{Name: "Host", Value: "h"}}, Status: 502,
		Times: analyze.LegTimes{Request: at, Response: at}}}}
	line := "2026/11/21 13:34:11 [error] 1#1: *10 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: x, request: \"GET /ws HTTP/1.1\", host: \"h\"\n"
	f, _ := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(line[:40])
	if got := el.match(v); len(got) != 0 {
		t.Fatalf("old or partial lines attached: %q", got)
	}
	f.WriteString(line[40:])
	f.Close()
	if got := el.match(v); len(got) != 1 || !strings.Contains(got[0], "*10 connect() failed") {
		t.Fatalf("appended line: %q", got)
	}
	// rotated: a new file under the name
	os.Rename(name, name+".1")
	os.WriteFile(name, []byte(strings.Replace(line, "*10", "*11", 1)), 0o644)
	if got := el.match(v); len(got) != 1 || !strings.Contains(got[0], "*11") {
		t.Fatalf("after rotation: %q", got)
	}
}

// TestConfigReadTimeoutShort: in idle-one-direction the backend never
// writes for 8 s while the client talks every second; nginx keeps the
// tunnel only because of the client. With the config (proxy_read_timeout
// 5s) that is a warning the wire alone does not give; idle-timeout's fix
// names the directive.
func TestConfigReadTimeoutShort(t *testing.T) {
	c := func(name string) []VerdictLine {
		vs, _, _ := readConf(t, "--nginx-config", filepath.Join(capturesDir, name+".nginx-T.txt"), filepath.Join(capturesDir, name+".pcap"))
		if len(vs) != 1 {
			t.Fatalf("%s: %d verdicts", name, len(vs))
		}
		return vs
	}
	if v := c("idle-one-direction")[0]; v.Code != "config_read_timeout_short" || !strings.Contains(v.Fix, "nginx.conf:20") {
		t.Errorf("idle-one-direction: %s, fix %q", v.Code, v.Fix)
	}
	if v := c("idle-timeout")[0]; v.Code != "idle_timeout" || contains(v.Findings, "config_read_timeout_short") || !strings.Contains(v.Fix, "proxy_read_timeout 5s") {
		t.Errorf("idle-timeout: %s %v, fix %q", v.Code, v.Findings, v.Fix)
	}
	for _, name := range []string{"correct", "backend-close-4000", "big-message-nginx"} {
		if v := c2(t, name); contains(v, "config_read_timeout_short") {
			t.Errorf("%s (60 s default timeout): %v", name, v)
		}
	}
}

func c2(t *testing.T, name string) []string {
	vs, _, _ := readConf(t, "--nginx-config", filepath.Join(capturesDir, name+".nginx-T.txt"), filepath.Join(capturesDir, name+".pcap"))
	var fs []string
	for _, v := range vs {
		fs = append(fs, v.Findings...)
	}
	return fs
}

// TestErrorLogOtherZone: a log written in UTC read where local time is
// UTC-3 matches nothing, and the warning names the zone to use.
func TestErrorLogOtherZone(t *testing.T) {
	saved := time.Local
	time.Local = time.FixedZone("UTC-3", -3*3600)
	defer func() { time.Local = saved }()
	vs, _, stderr := readConf(t, "--error-log", filepath.Join(capturesDir, "backend-down.nginx-error.log"), filepath.Join(capturesDir, "backend-down.pcap"))
	for _, v := range vs {
		if len(v.ErrorLog) > 0 {
			t.Errorf("lines three hours off attached: %q", v.ErrorLog)
		}
	}
	if !strings.Contains(stderr, "3h0m0s off the capture's") || !strings.Contains(stderr, "TZ=UTC") {
		t.Errorf("no time-zone hint: %q", stderr)
	}
}
