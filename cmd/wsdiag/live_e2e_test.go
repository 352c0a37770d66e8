//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/cmd/internal/nginxrig"
)

// requireE2E returns the nginx binary, or skips (fails under CI, where
// .ci/run installs everything this needs).
func requireE2E(t *testing.T) string {
	t.Helper()
	why := ""
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx, why = "/usr/sbin/nginx", "nginx is not installed"
		if _, err := os.Stat(nginx); err == nil {
			why = ""
		}
	}
	if os.Geteuid() != 0 {
		why = "live capture needs root"
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("end-to-end test cannot run in CI: %s", why)
		}
		t.Skip(why)
	}
	return nginx
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

// startProc starts a process and stops it by PID when the test ends.
func startProc(t *testing.T, log string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
	return cmd
}

// buildTestGen builds the gorilla backend and client of testdata/gen into
// a temporary directory and returns it.
func buildTestGen(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin+"/", "./backend", "./client")
	build.Dir = "../../testdata/gen"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test backend and client: %v\n%s", err, out)
	}
	return bin
}

// writeNginxConf writes an nginx config into dir: listen on listen, a
// correct WebSocket location /ws/ok and one without the upgrade
// directives, /ws/broken, both to backend.
func writeNginxConf(t *testing.T, dir, listen, backend string) string {
	t.Helper()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(nginxrig.Conf(nginxrig.Options{Dir: dir, Listen: listen, Backend: backend})), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// nginxMain is a main nginx config that keeps its pid, error log (at
// level) and temp files in dir, with http holding the given blocks.
func nginxMain(dir, level, http string) string {
	return nginxrig.Main(nginxrig.Options{Dir: dir, Level: level}, http)
}

func waitListen(t *testing.T, port int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d", port)
}

// TestLiveNginxEndToEnd runs Debian's nginx with one correct WebSocket
// location and one without the upgrade directives, the gorilla backend and
// client of testdata/gen, and wsdiag live on lo; each handshake's verdict
// must arrive while the capture runs, within two seconds.
func TestLiveNginxEndToEnd(t *testing.T) {
	nginx := requireE2E(t)
	dir := t.TempDir()
	bin := buildTestGen(t)
	proxyPort, backendPort := freePort(t), freePort(t)
	conf := writeNginxConf(t, dir, fmt.Sprintf("127.0.0.1:%d", proxyPort), fmt.Sprintf("127.0.0.1:%d", backendPort))
	startProc(t, filepath.Join(dir, "backend.log"), filepath.Join(bin, "backend"), "-addr", fmt.Sprintf("127.0.0.1:%d", backendPort))
	startProc(t, filepath.Join(dir, "nginx.log"), nginx, "-c", conf, "-p", dir, "-g", "daemon off;")
	waitListen(t, backendPort)
	waitListen(t, proxyPort)

	// wsdiag live, in-process, its stdout read line by line as it comes.
	pr, pw := io.Pipe()
	type arrival struct {
		v  jsonVerdict
		at time.Time
	}
	arrivals := make(chan arrival, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var v jsonVerdict
			if json.Unmarshal(sc.Bytes(), &v) == nil {
				arrivals <- arrival{v, time.Now()}
			}
		}
		close(arrivals)
	}()
	const runFor = 7 * time.Second
	var stderr strings.Builder
	exit := make(chan int, 1)
	filter := fmt.Sprintf("port %d or port %d", proxyPort, backendPort)
	htmlReport := filepath.Join(dir, "live.html")
	go func() {
		exit <- run([]string{"live", "-i", "lo", "-Z", "root", "--format", "json", "--duration", runFor.String(), "--html", htmlReport, filter}, nil, pw, &stderr)
		pw.Close()
	}()
	time.Sleep(time.Second) // the ring is open before the first handshake

	started := map[string]time.Time{}
	for _, path := range []string{"/ws/ok", "/ws/broken"} {
		for i := 0; i < 3; i++ {
			url := fmt.Sprintf("ws://127.0.0.1:%d%s", proxyPort, path)
			cl := exec.Command(filepath.Join(bin, "client"), "-url", url, "-n", "1", "-msgs", "1", "-ua", fmt.Sprintf("e2e-%s-%d", path, i))
			t0 := time.Now()
			if out, err := cl.CombinedOutput(); err != nil {
				t.Fatalf("client: %v\n%s", err, out)
			}
			started[fmt.Sprintf("%s#%d", path, i)] = t0
			time.Sleep(300 * time.Millisecond)
		}
	}
	end := time.Now()
	// --html is rewritten as verdicts arrive (every 2 s), before the end.
	time.Sleep(2500 * time.Millisecond)
	if page, err := os.ReadFile(htmlReport); err != nil || !regexp.MustCompile(`id="n-attempts">[1-6]<`).Match(page) {
		t.Errorf("--html during the run: %v, no attempts in it", err)
	}
	code := <-exit
	if page, err := os.ReadFile(htmlReport); err != nil || !strings.Contains(string(page), `id="n-attempts">6<`) {
		t.Errorf("--html at the end: %v, not the 6 attempts", err)
	}
	runEnded := time.Now()
	var got []arrival
	for a := range arrivals {
		if a.v.Type == "verdict" {
			got = append(got, a)
		}
	}
	if code != exitNotOK {
		t.Errorf("exit %d, want 1 (some attempts not ok); stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), " 0 dropped by kernel") {
		t.Errorf("kernel drops, or no summary on stderr:\n%s", stderr.String())
	}
	counts := map[string]int{}
	var maxLag time.Duration
	for _, a := range got {
		counts[a.v.Path+" "+a.v.Code]++
		ts, err := time.Parse(time.RFC3339Nano, a.v.TS)
		if err != nil {
			t.Fatalf("ts %q: %v", a.v.TS, err)
		}
		lag := a.at.Sub(ts)
		if lag > 2*time.Second || lag < 0 {
			t.Errorf("%s %s: verdict arrived %s after the handshake started", a.v.Path, a.v.Code, lag)
		}
		maxLag = max(maxLag, lag)
		if !a.at.Before(runEnded.Add(-runFor/10)) && a.at.After(end.Add(2*time.Second)) {
			t.Errorf("%s: verdict only at the end of the run", a.v.Path)
		}
		if a.v.Path == "/ws/broken" && (a.v.Hop != "proxy" || deref(a.v.StatusBackend) != 400) {
			t.Errorf("broken: hop %s backend status %d", a.v.Hop, deref(a.v.StatusBackend))
		}
		if a.v.PairConfidence != "exact" {
			t.Errorf("%s: pairing %s", a.v.Path, a.v.PairConfidence)
		}
	}
	t.Logf("slowest verdict: %s after its handshake started", maxLag.Round(time.Millisecond))
	if counts["/ws/ok ok"] != 3 || counts["/ws/broken upgrade_header_dropped"] != 3 || len(got) != 6 {
		t.Errorf("verdicts %v, want 3 ok on /ws/ok and 3 upgrade_header_dropped on /ws/broken", counts)
	}
}
