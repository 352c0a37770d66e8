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

// TestLiveMassCloseEvent: in live, the mass_close event line comes out as
// soon as the burst is over. Six busy tunnels through nginx lose their
// backend (stopped by PID); the event names the backend as the closer.
func TestLiveMassCloseEvent(t *testing.T) {
	nginx := requireE2E(t)
	dir := t.TempDir()
	bin := buildTestGen(t)
	proxyPort, backendPort := freePort(t), freePort(t)
	conf := writeNginxConf(t, dir, fmt.Sprintf("127.0.0.1:%d", proxyPort), fmt.Sprintf("127.0.0.1:%d", backendPort))
	be := startProc(t, filepath.Join(dir, "backend.log"), filepath.Join(bin, "backend"), "-addr", fmt.Sprintf("127.0.0.1:%d", backendPort))
	startProc(t, filepath.Join(dir, "nginx.log"), nginx, "-c", conf, "-p", dir, "-g", "daemon off;")
	waitListen(t, backendPort)
	waitListen(t, proxyPort)

	pr, pw := io.Pipe()
	events := make(chan time.Time, 10)
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e EventLine
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "event" {
				lines = append(lines, sc.Text())
				if e.Code == "mass_close" && e.Count == 6 && e.ClosedBy == "backend" && e.Server == fmt.Sprintf("127.0.0.1:%d", backendPort) {
					events <- time.Now()
				}
			}
		}
	}()
	var stderr strings.Builder
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"live", "-i", "lo", "-Z", "root", "--format", "json", "--duration", "7s",
			fmt.Sprintf("port %d or port %d", proxyPort, backendPort)}, nil, pw, &stderr)
		pw.Close()
	}()
	time.Sleep(time.Second) // the ring is open before the first handshake

	cl := exec.Command(filepath.Join(bin, "client"), "-url", fmt.Sprintf("ws://127.0.0.1:%d/ws/ok", proxyPort),
		"-n", "6", "-c", "6", "-stagger", "20ms", "-msgs", "40", "-interval", "200ms")
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	stopped := time.Now()
	be.Process.Signal(os.Interrupt) // Go exits at once: the kernel FINs its sockets
	cl.Wait()
	<-exit
	<-done
	select {
	case at := <-events:
		// burstGap (1 s) to know the burst is over, plus the 100 ms decide tick
		d := at.Sub(stopped)
		if d > 2500*time.Millisecond {
			t.Errorf("event %s after the backend stopped, want it as soon as the burst is over", d.Round(time.Millisecond))
		}
		t.Logf("event %s after the backend stopped", d.Round(time.Millisecond))
	default:
		t.Errorf("no mass_close event closed by the backend; events: %v\nstderr: %s", lines, stderr.String())
	}
}
