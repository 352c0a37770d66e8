package pipeline

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

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
