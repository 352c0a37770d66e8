//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/capture"
)

// rig is Debian's nginx in front of the gorilla backend of testdata/gen,
// on free ports, with /ws/ok and /ws/broken (no upgrade directives).
type rig struct {
	bin                    string
	conf, backend          string // nginx's configuration file, the backend's HOST:PORT
	proxyPort, backendPort int
}

func startRig(t *testing.T) *rig {
	t.Helper()
	requireE2E(t)
	bin := buildTestGen(t)
	r := startRigWith(t, filepath.Join(bin, "backend"))
	r.bin = bin
	return r
}

// startRigWith is the rig with another backend: its command and
// arguments, to which -addr HOST:PORT is added.
func startRigWith(t *testing.T, backend ...string) *rig {
	t.Helper()
	nginx := requireE2E(t)
	dir := t.TempDir()
	r := &rig{proxyPort: freePort(t), backendPort: freePort(t)}
	r.backend = fmt.Sprintf("127.0.0.1:%d", r.backendPort)
	r.conf = writeNginxConf(t, dir, fmt.Sprintf("127.0.0.1:%d", r.proxyPort), r.backend)
	startProc(t, filepath.Join(dir, "backend.log"), backend[0], append(backend[1:], "-addr", r.backend)...)
	startProc(t, filepath.Join(dir, "nginx.log"), nginx, "-c", r.conf, "-p", dir, "-g", "daemon off;")
	waitListen(t, r.backendPort)
	waitListen(t, r.proxyPort)
	return r
}

func (r *rig) filter() string { return fmt.Sprintf("port %d or port %d", r.proxyPort, r.backendPort) }

// clients runs n attempts on path, conc of them at once.
func (r *rig) clients(t *testing.T, path string, n, conc int) {
	t.Helper()
	url := fmt.Sprintf("ws://127.0.0.1:%d%s", r.proxyPort, path)
	cl := exec.Command(filepath.Join(r.bin, "client"), "-url", url, "-n", fmt.Sprint(n), "-c", fmt.Sprint(conc), "-msgs", "1")
	if out, err := cl.CombinedOutput(); err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
}

// liveRun is wsdiag live running in-process.
type liveRun struct {
	stdout, stderr syncBuffer
	exit           chan int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func startLive(args ...string) *liveRun {
	l := &liveRun{exit: make(chan int, 1)}
	go func() {
		l.exit <- run(append([]string{"live", "-i", "lo", "-Z", "root", "--progress", "never"}, args...), nil, &l.stdout, &l.stderr)
	}()
	time.Sleep(time.Second) // the ring is open before the first packet
	return l
}

func (l *liveRun) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case c := <-l.exit:
		return c
	case <-time.After(within):
		t.Fatalf("wsdiag live still runs after %s; stderr:\n%s", within, l.stderr.String())
		return 0
	}
}

// readBack judges a capture wsdiag wrote, returning its verdicts.
func readBack(t *testing.T, pcap []byte) ([]jsonVerdict, string) {
	t.Helper()
	var out, errb bytes.Buffer
	run([]string{"read", "--format", "json", "--workers", "1", "-"}, bytes.NewReader(pcap), &out, &errb)
	var vs []jsonVerdict
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if v, ok := decodeVerdictLine(t, line); ok {
			vs = append(vs, v)
		}
	}
	return vs, errb.String()
}

func countCodes(vs []jsonVerdict) string {
	m := map[string]int{}
	for _, v := range vs {
		m[v.Code]++
	}
	return fmt.Sprint(m)
}

// packetsOf returns every packet of a pcapng, as "timestamp bytes".
func packetsOf(t *testing.T, pcap []byte) []string {
	t.Helper()
	r, err := capture.OpenStdin("-", bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading back: %v", err)
		}
		out = append(out, fmt.Sprintf("%s %x %x", p.CI.Timestamp, p.TCP.Contents, p.TCP.Payload))
	}
}

// With -w -, stdout carries the pcapng alone; the
// verdicts go to stderr, as tcpdump's text does.
func TestLiveWriteStdout(t *testing.T) {
	r := startRig(t)
	l := startLive("-w", "-", "--duration", "5s", r.filter())
	r.clients(t, "/ws/ok", 1, 1)
	r.clients(t, "/ws/broken", 1, 1)
	if code := l.wait(t, 15*time.Second); code != exitNotOK {
		t.Errorf("exit %d; stderr:\n%s", code, l.stderr.String())
	}
	vs, stderr := readBack(t, l.stdout.Bytes())
	if got := countCodes(vs); got != "map[ok:1 upgrade_header_dropped:1]" || stderr != "" {
		t.Errorf("stdout read back: %s, stderr %q", got, stderr)
	}
	if e := l.stderr.String(); !strings.Contains(e, "TIME") || !strings.Contains(e, "upgrade_header_dropped") || !strings.Contains(e, "2 WebSocket attempts") {
		t.Errorf("verdicts not on stderr:\n%s", e)
	}
}

// --write-failing writes the packets of the failing
// attempts only, each once.
func TestLiveWriteFailing(t *testing.T) {
	r := startRig(t)
	file := filepath.Join(t.TempDir(), "failing.pcapng")
	l := startLive("-w", file, "--write-failing", "--format", "json", "--duration", "6s", r.filter())
	r.clients(t, "/ws/ok", 2, 1)
	r.clients(t, "/ws/broken", 2, 1)
	r.clients(t, "/ws/ok", 2, 2)
	if code := l.wait(t, 15*time.Second); code != exitNotOK {
		t.Errorf("exit %d; stderr:\n%s", code, l.stderr.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	vs, stderr := readBack(t, b)
	if got := countCodes(vs); got != "map[upgrade_header_dropped:2]" || stderr != "" {
		t.Errorf("read back: %s, stderr %q", got, stderr)
	}
	seen := map[string]bool{}
	pk := packetsOf(t, b)
	for _, p := range pk {
		if seen[p] {
			t.Errorf("packet written twice: %.80s", p)
		}
		seen[p] = true
	}
	if len(pk) == 0 {
		t.Error("no packets written")
	}
}

// -c N prints N verdicts, even when a burst of attempts
// is decided at once.
func TestLiveCountExact(t *testing.T) {
	r := startRig(t)
	for _, n := range []int{1, 3} {
		l := startLive("-c", fmt.Sprint(n), "--format", "json", "--duration", "8s", r.filter())
		r.clients(t, "/ws/broken", 6, 6)
		if code := l.wait(t, 15*time.Second); code != exitNotOK {
			t.Errorf("-c %d: exit %d; stderr:\n%s", n, code, l.stderr.String())
		}
		got, sum := 0, 0
		for _, line := range strings.Split(strings.TrimSpace(l.stdout.String()), "\n") {
			if v, ok := decodeVerdictLine(t, line); ok {
				got++
				_ = v
			} else if s, ok := decodeSummaryLine(t, line); ok {
				sum = int(s.Attempts)
			}
		}
		if got != n || sum != n {
			t.Errorf("-c %d: %d verdicts, summary says %d attempts", n, got, sum)
		}
	}
}

// --upstream alone narrows the kernel filter to those
// ports and 80/443: say so.
func TestLiveUpstreamWarning(t *testing.T) {
	requireE2E(t)
	l := startLive("--upstream", "127.0.0.1:9", "--duration", "1s")
	l.wait(t, 10*time.Second)
	if e := l.stderr.String(); !strings.Contains(e, "warning") || !strings.Contains(e, "--client-ports") || !strings.Contains(e, "80, 443") {
		t.Errorf("no warning about the ports captured:\n%s", e)
	}
	l = startLive("--upstream", "127.0.0.1:9", "--client-ports", "8080", "--duration", "1s")
	l.wait(t, 10*time.Second)
	if e := l.stderr.String(); strings.Contains(e, "warning") {
		t.Errorf("warning with --client-ports given:\n%s", e)
	}
}

// Errors writing -w FILE are reported, with exit 2.
func TestLiveWriteErrors(t *testing.T) {
	requireE2E(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	l := startLive("-w", "/dev/full", "--duration", "2s", fmt.Sprintf("port %d", port))
	for i := 0; i < 50; i++ {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Write(bytes.Repeat([]byte("x"), 2000))
			c.Close()
		}
	}
	code := l.wait(t, 10*time.Second)
	if e := l.stderr.String(); code != exitTrouble || !strings.Contains(e, "/dev/full") || !strings.Contains(e, "no space left") {
		t.Errorf("exit %d, stderr:\n%s", code, e)
	}
}
