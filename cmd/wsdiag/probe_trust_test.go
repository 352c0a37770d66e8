//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestProbeHealthyEndpoint: probe against real nginx in front of a
// healthy backend says ok, exit 0, as root and as a normal user: its own
// client ends with the close handshake, and judges its own side from what
// it sent (it said abnormal_close, "the client closed the connection (FIN)
// without a close frame", every time as a normal user). As root, while
// other clients hammer the proxy and another port, it captures only its
// own connections and the proxy's upstream ones (the backend's port from
// --upstream or from nginx's configuration): a few dozen packets, not the
// thousands around it. As a normal user, its advice about the upstream
// leg is to run it as root, not about unix sockets.
func TestProbeHealthyEndpoint(t *testing.T) {
	r := startRig(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv is not installed")
	}
	proxyPort, backend, conf, otherPort := r.proxyPort, r.backend, r.conf, freePort(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755) // nobody runs the binary from here
	}
	wsdiag := filepath.Join(dir, "wsdiag")
	if out, err := exec.Command("go", "build", "-o", wsdiag, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws/ok", proxyPort)

	noise, stop := noiseAround(t, fmt.Sprintf("127.0.0.1:%d", proxyPort), otherPort)
	defer stop()

	type probeOut struct {
		code, packets int
		verdict       VerdictLine
		stderr        string
	}
	probe := func(asNobody bool, args ...string) probeOut {
		t.Helper()
		cmd := exec.Command(wsdiag, append(append([]string{"probe", "--format", "json"}, args...), url)...)
		if asNobody {
			cmd = exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", wsdiag, "probe", "--format", "json"}, append(args, url)...)...)
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var o probeOut
		o.stderr = errb.String()
		if ee, ok := err.(*exec.ExitError); ok {
			o.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var x struct {
				Type    string `json:"type"`
				Packets int    `json:"packets"`
			}
			if json.Unmarshal([]byte(l), &x) == nil {
				switch x.Type {
				case "verdict":
					json.Unmarshal([]byte(l), &o.verdict)
				case "summary":
					o.packets = x.Packets
				}
			}
		}
		return o
	}

	for _, args := range [][]string{{"--upstream", backend}, {"--nginx-config", conf}} {
		before := noise()
		o := probe(false, args...)
		if o.code != exitOK || o.verdict.Code != "ok" {
			t.Errorf("root %v: %s, exit %d\n%s", args, o.verdict.Code, o.code, o.stderr)
		}
		// The probe's connection and the proxy's upstream one, with the
		// close handshake: about twenty packets each.
		if n := noise() - before; o.packets == 0 || o.packets > 60 || n < 50 {
			t.Errorf("root %v: %d packets captured while %d other connections ran", args, o.packets, n)
		}
	}
	for i := 0; i < 3; i++ {
		o := probe(true)
		if o.code != exitOK || o.verdict.Code != "ok" {
			t.Errorf("nobody, attempt %d: %s (%v), exit %d, fix %q\n%s", i+1, o.verdict.Code, o.verdict.Findings, o.code, o.verdict.Fix, o.stderr)
		}
		if !strings.Contains(o.stderr, "not root") || !strings.Contains(o.stderr, "as root") {
			t.Errorf("nobody: stderr %q does not say to run as root", o.stderr)
		}
	}
	// A failing endpoint as a normal user: the advice is root, not unix sockets.
	url = fmt.Sprintf("ws://127.0.0.1:%d/ws/broken", proxyPort)
	o := probe(true, "-v")
	if o.code != exitNotOK || strings.Contains(o.verdict.Fix, "unix") || !strings.Contains(o.verdict.Fix, "as root") {
		t.Errorf("nobody, broken: %s exit %d, fix %q", o.verdict.Code, o.code, o.verdict.Fix)
	}
}

// TestProbeHostileAnswer: probe's own lines on stderr quote the answer's
// status line, and its verdict the answer's headers and body: through
// real nginx, a backend (testdata/gen/hostile) whose reason phrase, header
// and body carry ESC sequences, C1 and bidi controls; both outputs show
// them escaped.
func TestProbeHostileAnswer(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-buildvcs=false", "-o", dir+"/", "./hostile")
	build.Dir = "../../testdata/gen"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building hostile: %v\n%s", err, out)
	}
	proxyPort := startRigWith(t, filepath.Join(dir, "hostile"), "serve").proxyPort
	// /ws/ok/… is a correct location of that config; the backend refuses
	// any path with "reject" in it.
	for _, format := range []string{"text", "json"} {
		var out, errb bytes.Buffer
		code := run([]string{"probe", "-vv", "--no-capture", "--format", format, fmt.Sprintf("ws://127.0.0.1:%d/ws/ok/reject", proxyPort)}, nil, &out, &errb)
		if code != exitNotOK {
			t.Errorf("%s: exit %d\n%s%s", format, code, out.String(), errb.String())
		}
		terminalSafe(t, format+" stdout", out.String(), false)
		terminalSafe(t, format+" stderr", errb.String(), false)
		if !strings.Contains(errb.String(), `HTTP/1.1 400 Bad \x1b[2J\x1b]0;owned\x07`) {
			t.Errorf("%s: stderr does not quote the status line escaped: %q", format, errb.String())
		}
		if format == "text" && !strings.Contains(out.String(), `< X-Evil: \x1b[2J`) {
			t.Errorf("text: no escaped X-Evil header:\n%s", out.String())
		}
	}
}

// noiseAround makes other traffic while a probe runs: plain GETs to proxy
// (each answered on a connection of its own) and connections to another
// port, which answers 4 KiB and closes. noise counts the connections made.
func noiseAround(t *testing.T, proxy string, otherPort int) (noise func() int64, stop func()) {
	t.Helper()
	other, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", otherPort))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			c.Write(bytes.Repeat([]byte("x"), 4096))
			c.Close()
		}
	}()
	var done atomic.Bool
	var wg sync.WaitGroup
	var n atomic.Int64
	for _, addr := range []string{proxy, other.Addr().String()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				if c, err := net.Dial("tcp", addr); err == nil {
					fmt.Fprintf(c, "GET /noise HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
					c.SetReadDeadline(time.Now().Add(time.Second))
					buf := make([]byte, 8192)
					for {
						if _, err := c.Read(buf); err != nil {
							break
						}
					}
					c.Close()
					n.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return n.Load, func() { done.Store(true); wg.Wait(); other.Close() }
}
