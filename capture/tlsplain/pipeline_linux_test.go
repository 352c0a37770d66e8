//go:build linux && amd64

package tlsplain

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"
)

// What live --tls-plaintext does, assembled here from the packages: the
// packets of lo and the probes' plaintext in time order through one
// Assembler into an Analyzer, every packet and piece also written to a
// pcapng as -w writes them.

var analyzeOpt = analyze.Options{Grace: time.Second, MaxPending: 100000, All: true}

type livePipeline struct {
	live  *capture.Live
	probe *Probe
	src   *Source
	asm   *reassembly.Assembler
	an    *analyze.Analyzer
	w     *capture.Writer
	out   []*analyze.Verdict
	stop  atomic.Bool
	done  chan struct{}
	err   error
}

func startLive(t *testing.T, pids []uint32, ports []int, wpath string) *livePipeline {
	t.Helper()
	probe, err := Open(Options{PIDs: pids})
	if err != nil {
		t.Fatal(err)
	}
	var f []string
	for _, p := range ports {
		f = append(f, fmt.Sprintf("port %d", p))
	}
	live, err := capture.OpenLive("lo", capture.LiveOptions{Filter: strings.Join(f, " or "), Timeout: 100 * time.Millisecond})
	if err != nil {
		probe.Close()
		t.Fatal(err)
	}
	w, err := capture.CreateWriter(wpath, live.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	lp := &livePipeline{live: live, probe: probe, w: w, done: make(chan struct{})}
	lp.an = analyze.New(analyzeOpt, func(v *analyze.Verdict) { lp.out = append(lp.out, v) })
	lp.asm = reassembly.New(lp.an, reassembly.DefaultOptions)
	lp.src = NewSource(probe, 0)
	go lp.run()
	return lp
}

func (lp *livePipeline) feed(p *capture.Plaintext) {
	if err := lp.w.WritePlaintext(p); err != nil && lp.err == nil {
		lp.err = err
	}
	lp.asm.Plaintext((*reassembly.Plain)(p))
}

func (lp *livePipeline) run() {
	defer close(lp.done)
	for !lp.stop.Load() {
		p, err := lp.live.Next()
		switch {
		case err == nil:
			lp.src.Due(p.CI.Timestamp, lp.feed)
			if err := lp.w.WritePacket(p.CI, lp.live.Raw()); err != nil && lp.err == nil {
				lp.err = err
			}
			lp.asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
		case errors.Is(err, capture.ErrTimeout):
			// No packet for a while: every packet before now has come
			// (the ring hands over its blocks within 20 ms).
			lp.src.Due(time.Now().Add(-50*time.Millisecond), lp.feed)
		default:
			lp.err = err
			return
		}
	}
}

// finish ends the capture and returns the verdicts.
func (lp *livePipeline) finish(t *testing.T) ([]*analyze.Verdict, Stats, reassembly.Stats) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	lp.stop.Store(true)
	<-lp.done
	lp.src.Due(time.Now(), lp.feed)
	st := lp.probe.Stats()
	lp.src.Close()
	lp.probe.Close()
	lp.live.Close()
	lp.asm.Close()
	lp.an.Finish()
	if err := lp.w.Close(); err != nil || lp.err != nil {
		t.Errorf("live: %v %v", err, lp.err)
	}
	return lp.out, st, lp.asm.Stats()
}

// readFile judges a capture file: with keys when given, with the
// plaintext records it holds otherwise.
func readFile(t *testing.T, path string, keys *tlsrec.KeyLog) []*analyze.Verdict {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*analyze.Verdict
	an := analyze.New(analyzeOpt, func(v *analyze.Verdict) { out = append(out, v) })
	opt := reassembly.DefaultOptions
	opt.KeyLog = keys
	asm := reassembly.New(an, opt)
	r.SetPlaintext(func(p *capture.Plaintext) { asm.Plaintext((*reassembly.Plain)(p)) })
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
	}
	asm.Close()
	an.Finish()
	return out
}

// tcpdump records the ports on lo into path until the returned func is
// called.
func tcpdump(t *testing.T, path string, ports []int) func() {
	t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tcpdump is not installed")
		}
		t.Skip("tcpdump is not installed")
	}
	var f []string
	for _, p := range ports {
		f = append(f, fmt.Sprintf("port %d", p))
	}
	cmd := exec.Command(bin, "-i", "lo", "-Z", "root", "-U", "-s", "0", "-w", path, strings.Join(f, " or "))
	errf, _ := os.Create(path + ".err")
	cmd.Stderr = errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(path + ".err"); strings.Contains(string(b), "listening on") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stopIt := func() {
		if stopped {
			return
		}
		stopped = true
		time.Sleep(2 * time.Second) // tcpdump hands packets over in blocks
		stop(cmd)
		errf.Close()
	}
	t.Cleanup(stopIt)
	return stopIt
}

// The times in evidence ("at 17:36:14.385") and the durations measured
// ("for 3.00s") come from the proxy's calls in one run and from the
// packets in the other: they are compared without their digits.
var (
	clockRE    = regexp.MustCompile(`\d\d:\d\d:\d\d\.\d{3}`)
	durationRE = regexp.MustCompile(`\d+(\.\d+)?(s|ms|µs)\b`)
)

// describe is what must agree between two runs.
func describe(v *analyze.Verdict) string {
	ev := make([]string, len(v.Evidence))
	for i, e := range v.Evidence {
		ev[i] = durationRE.ReplaceAllString(clockRE.ReplaceAllString(e, "hh:mm:ss.mmm"), "D")
	}
	return fmt.Sprintf("%s %s %s hop %s status client %d backend %d pairing %s\n  findings %v\n  evidence:\n    %s\n  fix: %s",
		v.Client, v.Path, v.Code, v.Hop, v.StatusClient, v.StatusBackend, v.PairConfidence, v.Findings,
		strings.Join(ev, "\n    "), durationRE.ReplaceAllString(v.Fix, "D"))
}

func describeAll(vs []*analyze.Verdict) map[string]string {
	m := map[string]string{}
	for _, v := range vs {
		k := v.Client.String()
		for m[k] != "" {
			k += "+" // another attempt on the connection (HTTP/2)
		}
		m[k] = describe(v)
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func loadKeys(t *testing.T, path string) *tlsrec.KeyLog {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := tlsrec.ParseKeyLog(f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeTable writes the verdicts side by side for the note.
func writeTable(t *testing.T, name string, live, keyed map[string]string) {
	dir := os.Getenv("TLSPLAIN_TABLE")
	if dir == "" {
		return
	}
	var b strings.Builder
	for _, k := range sortedKeys(keyed) {
		l := strings.SplitN(live[k], "\n", 2)[0]
		kk := strings.SplitN(keyed[k], "\n", 2)[0]
		fmt.Fprintf(&b, "%s\n  live --tls-plaintext: %s\n  read --keylog:        %s\n", k, l, kk)
	}
	os.WriteFile(filepath.Join(dir, name+".txt"), []byte(b.String()), 0o644)
}
