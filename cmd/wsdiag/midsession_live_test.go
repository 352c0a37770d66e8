//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLiveMidSession: wsdiag live started while two sessions through nginx
// are open (their handshakes before the capture) reports each when nginx
// cuts it on proxy_read_timeout, while the capture still runs: the same
// path as reading a file.
func TestLiveMidSession(t *testing.T) {
	nginx := requireE2E(t)
	dir := t.TempDir()
	bin := buildTestGen(t)
	proxyPort, backendPort := freePort(t), freePort(t)
	conf := nginxMain(dir, "warn", fmt.Sprintf(`    server {
    listen 127.0.0.1:%[2]d;
    location /ws {
      proxy_pass http://127.0.0.1:%[3]d;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection upgrade;
      proxy_read_timeout 2s;
    }
  }
`, dir, proxyPort, backendPort))
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProc(t, filepath.Join(dir, "backend.log"), filepath.Join(bin, "backend"), "-addr", fmt.Sprintf("127.0.0.1:%d", backendPort))
	startProc(t, filepath.Join(dir, "nginx.log"), nginx, "-c", confPath, "-p", dir, "-g", "daemon off;")
	waitListen(t, backendPort)
	waitListen(t, proxyPort)

	// The sessions: six messages 500 ms apart, then silence until nginx
	// closes both legs 2 s after the last one.
	cl := exec.Command(filepath.Join(bin, "client"), "-url", fmt.Sprintf("ws://127.0.0.1:%d/ws", proxyPort),
		"-n", "2", "-c", "2", "-msgs", "6", "-interval", "500ms", "-hold", "8s", "-hold-read")
	clientOut, err := os.Create(filepath.Join(dir, "client.log"))
	if err != nil {
		t.Fatal(err)
	}
	cl.Stdout, cl.Stderr = clientOut, clientOut
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Wait()
	time.Sleep(700 * time.Millisecond) // handshakes and the first messages: not captured

	pr, pw := io.Pipe()
	type arrival struct {
		v  jsonVerdict
		at time.Time
	}
	arrivals := make(chan arrival, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var v jsonVerdict
			if json.Unmarshal(sc.Bytes(), &v) == nil {
				arrivals <- arrival{v, time.Now()}
			}
		}
		close(arrivals)
	}()
	const runFor = 10 * time.Second
	var stderr strings.Builder
	exit := make(chan int, 1)
	started := time.Now()
	go func() {
		exit <- run([]string{"live", "-i", "lo", "-Z", "root", "--format", "json", "--duration", runFor.String(),
			fmt.Sprintf("port %d or port %d", proxyPort, backendPort)}, nil, pw, &stderr)
		pw.Close()
	}()
	code := <-exit
	var got []arrival
	for a := range arrivals {
		if a.v.Type == "verdict" {
			got = append(got, a)
		}
	}
	if code != exitNotOK {
		t.Errorf("exit %d, want 1 (idle timeouts); stderr:\n%s", code, stderr.String())
	}
	if len(got) != 2 {
		log, _ := os.ReadFile(filepath.Join(dir, "client.log"))
		t.Fatalf("%d verdicts, want 2; stderr:\n%s\nclient:\n%s", len(got), stderr.String(), log)
	}
	for _, a := range got {
		v := a.v
		if v.Code != "idle_timeout" || v.Hop != "session" || v.PairConfidence != "high" || !contains(v.Findings, "handshake_not_captured") ||
			v.Backend == nil || *v.Backend != fmt.Sprintf("127.0.0.1:%d", backendPort) {
			t.Errorf("%s %s %s %v backend %v", v.Code, v.Hop, v.PairConfidence, v.Findings, v.Backend)
		}
		// nginx cuts the sessions about 5 s in; the verdict comes within
		// a few seconds of that, not only when the run ends
		if lag := a.at.Sub(started); lag > runFor-time.Second {
			t.Errorf("verdict %s after the capture started, at the end of the run", lag.Round(time.Millisecond))
		}
	}
}
