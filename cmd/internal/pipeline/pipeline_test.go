package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/filter"
	"github.com/wsdiag/wsdiag/reassembly"
)

const captures = "../../../testdata/captures"

// judge runs files through a pipeline of workers goroutines and counts
// the verdicts by code.
func judge(t *testing.T, workers int, expr string, files ...string) (map[analyze.Code]int, reassembly.Stats) {
	t.Helper()
	var readers []*capture.Reader
	for _, f := range files {
		r, err := capture.Open(filepath.Join(captures, f))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		readers = append(readers, r)
	}
	var mu sync.Mutex // verdicts come from the analyzer goroutine with workers
	got := map[analyze.Code]int{}
	opt := analyze.DefaultOptions
	opt.WaitSession = true
	an := analyze.New(opt, func(v *analyze.Verdict) {
		mu.Lock()
		got[v.Code]++
		mu.Unlock()
	})
	p := New(an, reassembly.DefaultOptions, Config{Workers: workers})
	var sink Sink = p
	if expr != "" {
		m, err := filter.NewMatcher(expr)
		if err != nil {
			t.Fatal(err)
		}
		sink = &Filtered{Match: m, Next: p}
	}
	if w := Pump(readers, sink, PumpOptions{}); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
	st := p.Close()
	an.Finish()
	return got, st
}

// TestPipelineVerdicts: inline and over workers, the pipeline gives every
// attempt of a real capture its verdict.
func TestPipelineVerdicts(t *testing.T) {
	for _, workers := range []int{1, 3} {
		got, st := judge(t, workers, "", "concurrent-20.pcap")
		if fmt.Sprint(got) != "map[ok:10 upgrade_header_dropped:10]" {
			t.Errorf("%d workers: %v", workers, got)
		}
		if st.Connections == 0 || st.Open != 0 {
			t.Errorf("%d workers: %d connections, %d open after Close", workers, st.Connections, st.Open)
		}
	}
}

// TestPipelineFilter: a filter keeps the client leg alone.
func TestPipelineFilter(t *testing.T) {
	got, _ := judge(t, 2, "port 8080", "concurrent-20.pcap")
	if fmt.Sprint(got) != "map[ok:10 upgrade_header_dropped:10]" { // the broken attempts: gorilla's relayed refusal
		t.Errorf("client leg only: %v", got)
	}
}

// TestPumpMerges: two captures merge into one stream by time, so the
// attempts of both are judged.
func TestPumpMerges(t *testing.T) {
	got, _ := judge(t, 1, "", "correct.pcap", "nginx-defaults.pcap")
	if fmt.Sprint(got) != "map[ok:3 upgrade_header_dropped:3]" {
		t.Errorf("two files: %v", got)
	}
}

// repeated writes name's packets k times into one pcap, each copy a
// minute after the last (new connections, as after TIME_WAIT).
func repeated(t *testing.T, name string, k int) string {
	t.Helper()
	in, err := os.Open(filepath.Join(captures, name))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "repeated.pcap")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(out)
	w.WriteFileHeader(262144, r.LinkType())
	var pkts [][]byte
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkts, cis = append(pkts, append([]byte(nil), data...)), append(cis, ci)
	}
	for c := 0; c < k; c++ {
		for i, data := range pkts {
			ci := cis[i]
			ci.Timestamp = ci.Timestamp.Add(time.Duration(c) * time.Minute)
			if err := w.WritePacket(ci, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDecidesWhileReading: inline and over workers, the attempts are
// judged as capture time advances, not when the input ends: what is left
// to Finish is the last few copies of a capture repeated, however many
// copies there are.
func TestDecidesWhileReading(t *testing.T) {
	const copies = 12 // of 808 packets, 20 attempts each
	path := repeated(t, "concurrent-20.pcap", copies)
	var first int64
	for _, workers := range []int{1, 2} {
		r, err := capture.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var n atomic.Int64
		opt := analyze.DefaultOptions
		opt.WaitSession = true
		an := analyze.New(opt, func(*analyze.Verdict) { n.Add(1) })
		p := New(an, reassembly.DefaultOptions, Config{Workers: workers})
		Pump([]*capture.Reader{r}, p, PumpOptions{})
		p.Close()
		read := n.Load()
		an.Finish()
		r.Close()
		// decisions come at least decideEvery packets apart
		left := n.Load() - read
		if n.Load() != 20*copies || read == 0 || left > 20*(decideEvery/808+2) {
			t.Errorf("%d workers: %d verdicts while reading, %d left to Finish", workers, read, left)
		}
		if workers == 1 {
			first = read
		} else if read != first {
			t.Errorf("%d workers: %d verdicts while reading, one worker %d", workers, read, first)
		}
	}
}

// behind records what a pipeline is told of its input's order.
type behind struct {
	*Pipeline
	told []time.Duration
}

func (b *behind) Behind(d time.Duration) {
	b.told = append(b.told, d)
	b.Pipeline.Behind(d)
}

// TestPumpPcapngInterfaces: a pcapng of two interfaces holds decisions
// back (its interfaces' packets may come out of time order); a pcap does
// not.
func TestPumpPcapngInterfaces(t *testing.T) {
	for name, want := range map[string]string{"pcapng-mixed.pcapng": "[10s]", "correct.pcap": "[]"} {
		r, err := capture.Open(filepath.Join(captures, name))
		if err != nil {
			t.Fatal(err)
		}
		an := analyze.New(analyze.DefaultOptions, func(*analyze.Verdict) {})
		b := &behind{Pipeline: New(an, reassembly.DefaultOptions, Config{})}
		Pump([]*capture.Reader{r}, b, PumpOptions{})
		b.Close()
		r.Close()
		if got := fmt.Sprint(b.told); got != want {
			t.Errorf("%s: told %s, want %s", name, got, want)
		}
		if got := b.single.sched.behind; got != 0 && want == "[]" || got != interfaceSkew && want != "[]" {
			t.Errorf("%s: decisions %s behind", name, got)
		}
	}
}

func (f sinkFunc) Behind(time.Duration) {}
