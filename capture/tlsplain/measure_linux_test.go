//go:build linux && amd64

package tlsplain

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/reassembly"
)

// TestMeasureNginx makes the README's figures: nginx (two workers, TLS)
// under wrk, without the probes, with every connection captured, and
// with the default budget; what the probes counted, the ring's drops, and
// the memory of the reading process. It is slow and wants a quiet
// machine, so it runs only when asked:
//
//	sudo WSDIAG_MEASURE=1 go test -run TestMeasureNginx -v -timeout 30m ./capture/tlsplain
//
// (WSDIAG_MEASURE_FOR: each wrk run, default 10s; WSDIAG_MEASURE_ROUNDS:
// rounds, default 3; WSDIAG_MEASURE_OUT: a file for the table.)
func TestMeasureNginx(t *testing.T) {
	if os.Getenv("WSDIAG_MEASURE") == "" {
		t.Skip("WSDIAG_MEASURE is not set")
	}
	nginx := requireProbes(t, "nginx")
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	cert, key := selfSigned(t, dir)
	os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("0123456789abcdef"), 1<<16), 0o644)
	port := freePort(t)
	master := startNginx(t, nginx, dir, fmt.Sprintf(`    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s; ssl_certificate_key %s;
        keepalive_requests 1000000;
        location / { return 200 "hello\n"; }
        location = /big { root %s; }
    }
`, port, cert, key, dir))
	waitListen(t, port)
	dur := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("WSDIAG_MEASURE_FOR")); err == nil {
		dur = d
	}
	loads := []struct {
		name string
		args []string
	}{
		{"17 B GET, keep-alive, 8 connections", []string{"-t2", "-c8", fmt.Sprintf("https://127.0.0.1:%d/", port)}},
		{"17 B GET, a new TLS connection each", []string{"-t2", "-c8", "-H", "Connection: close", fmt.Sprintf("https://127.0.0.1:%d/", port)}},
		{"1 MiB GET, keep-alive, 4 connections", []string{"-t2", "-c4", fmt.Sprintf("https://127.0.0.1:%d/big", port)}},
	}
	modes := []struct {
		name   string
		budget float64 // 0: no probes
	}{{"no probes", 0}, {"every connection captured", -1}, {"budget 5 %", DefaultBudget}}
	reqRE := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("WSDIAG_MEASURE_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	var table strings.Builder
	// The modes take turns, round after round, so that the machine's
	// other load falls on all of them alike; the median counts.
	for _, l := range loads {
		rps := make([][]float64, len(modes))
		last := make([]string, len(modes))
		for r := 0; r < rounds; r++ {
			for i, m := range modes {
				var stop func() (Stats, reassembly.Stats)
				if m.budget != 0 {
					stop = consume(t, master, m.budget)
				}
				args := append([]string{"-d", dur.String()}, l.args...)
				out, err := exec.Command(wrk, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("wrk: %v\n%s", err, out)
				}
				if s := reqRE.FindSubmatch(out); s != nil {
					v, _ := strconv.ParseFloat(string(s[1]), 64)
					rps[i] = append(rps[i], v)
				}
				if stop != nil {
					st, ast := stop()
					rss, hwm := memory()
					last[i] = fmt.Sprintf("calls %d (%d skipped), traps %d, conns %d (%d skipped), %d MB captured, drops %d (%d MB), keep %.3f, est. cost %.1f %% of a CPU (peak %.1f %%), pauses %d (%s), per call %s + %.3f ns/B, skip %s; plaintext lost %d MB; reader RSS %d MiB (peak %d MiB)",
						st.Calls, st.SkippedCalls, st.Traps, st.Conns, st.SkippedConns, st.Bytes>>20, st.Drops, st.DropBytes>>20, st.Keep, 100*st.Cost, 100*st.Peak,
						st.Pauses, st.PausedFor.Round(time.Second), st.Costs.Call, st.Costs.Byte, st.Costs.Skip, ast.PlainLost>>20, rss>>20, hwm>>20)
				}
			}
		}
		for i, m := range modes {
			sort.Float64s(rps[i])
			med := 0.0
			if len(rps[i]) > 0 {
				med = rps[i][len(rps[i])/2]
			}
			line := fmt.Sprintf("%-38s %-26s median %9.0f req/s of %v  %s", l.name, m.name, med, rps[i], last[i])
			t.Log(line)
			table.WriteString(line + "\n")
		}
	}
	if p := os.Getenv("WSDIAG_MEASURE_OUT"); p != "" {
		os.WriteFile(p, []byte(table.String()), 0o644)
	}
}

// consume attaches to nginx and reads its plaintext through a Source into
// an Assembler (no packets: each connection opens with its plaintext), as
// live does, until the returned func is called.
func consume(t *testing.T, master int, budget float64) func() (Stats, reassembly.Stats) {
	p, err := Open(Options{PIDs: []uint32{uint32(master)}, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	src := NewSource(p, 0)
	asm := reassembly.New(nopSink{}, reassembly.DefaultOptions)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		feed := func(pt *capture.Plaintext) { asm.Plaintext((*reassembly.Plain)(pt)) }
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			now := time.Now()
			src.Due(now.Add(-20*time.Millisecond), feed)
			asm.Flush(now)
		}
	}()
	return func() (Stats, reassembly.Stats) {
		close(done)
		<-stopped
		st := p.Stats()
		src.Close()
		p.Close()
		asm.Close()
		return st, asm.Stats()
	}
}

type nopSink struct{}

func (nopSink) Request(*reassembly.Request)   {}
func (nopSink) Response(*reassembly.Response) {}
func (nopSink) ConnEnd(*reassembly.ConnEnd)   {}

// memory is this process's resident set and its peak, in bytes.
func memory() (rss, hwm uint64) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		var v uint64
		if n, _ := fmt.Sscanf(l, "VmRSS: %d kB", &v); n == 1 {
			rss = v << 10
		}
		if n, _ := fmt.Sscanf(l, "VmHWM: %d kB", &v); n == 1 {
			hwm = v << 10
		}
	}
	return rss, hwm
}
