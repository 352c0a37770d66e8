package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wsdiag/wsdiag/capture/synth"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"256M", 256 << 20}, {"512M", 512 << 20}, {"1G", 1 << 30}, {"300000000", 300000000}, {"64MiB", 64 << 20}, {"1.5G", 3 << 29}, {"100k", 100 << 10}} {
		if got, err := parseSize(c.in); err != nil || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "M", "-1M", "12X", "lots"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
	var stderr strings.Builder
	if code := run([]string{"read", "--max-memory", "16M", "x.pcap"}, nil, &strings.Builder{}, &stderr); code != exitTrouble || !strings.Contains(stderr.String(), "--max-memory: 16M is below 32M") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestMaxMemorySlowloris reads a flood of 40 000 connections that each sent
// half a request (some 55 MB of state by the budget's estimates) with
// --max-memory 32M: connections are evicted, counted in the summary, and
// the well-formed attempts mixed into the flood keep their verdicts.
func TestMaxMemorySlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("200 000 packets")
	}
	f, _ := synth.FloodByName("slowloris")
	var pcap bytes.Buffer
	want, err := synth.WriteFlood(&pcap, f, 40000, 1)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := run([]string{"read", "--max-memory", "32M", "--format", "json", "--progress", "never", "-"}, &pcap, &stdout, &stderr)
	if code != exitNotOK { // the broken attempts
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--max-memory=32M reached") {
		t.Errorf("no warning: %q", stderr.String())
	}
	got := map[string]int{}
	o := decodeOutput(t, []byte(stdout.String()))
	for _, v := range o.verdicts {
		if v.Path == "/ws" {
			got[v.Code]++
		}
	}
	sum := o.summary
	if got["ok"] != want["ok"] || got["upgrade_header_dropped"] != want["upgrade_header_dropped"] || len(got) != 2 {
		t.Errorf("verdicts of the mixed-in attempts %v, want ok %d and upgrade_header_dropped %d", got, want["ok"], want["upgrade_header_dropped"])
	}
	if sum.EvictedBytes < 10<<20 || sum.MemEvicted["conns"] < 10000 {
		t.Errorf("summary: evicted_bytes %d, mem_evicted %v", sum.EvictedBytes, sum.MemEvicted)
	}
}
