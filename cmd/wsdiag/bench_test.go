package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsdiag/wsdiag/capture/synth"
)

// BenchmarkRead runs the whole pipeline (decode, reassembly, HTTP,
// frames, pairing, verdicts, JSON) on a synthetic 200k-packet capture with
// one and with two workers, and reports packets/s. Profile with
// -cpuprofile (the capture is generated once, before the timer).
func BenchmarkRead(b *testing.B) {
	var buf bytes.Buffer
	counts, err := synth.Write(&buf, 200000, 1)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "synth.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, w := range []string{"1", "2"} {
		b.Run("workers="+w, func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			for i := 0; i < b.N; i++ {
				if code := run([]string{"read", "--format", "json", "--progress", "never", "--workers", w, path}, nil, io.Discard, io.Discard); code != exitNotOK {
					b.Fatalf("exit %d", code)
				}
			}
			b.ReportMetric(float64(counts["packets"])*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// TestSyntheticVerdicts: on the synthetic capture wsdiag gives exactly the
// verdicts the generator scripted, so the benchmark measures real work.
func TestSyntheticVerdicts(t *testing.T) {
	var buf bytes.Buffer
	counts, err := synth.Write(&buf, 50000, 7)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "synth.pcap")
	os.WriteFile(path, buf.Bytes(), 0o600)
	_, sum, code, stderr := readJSON(t, path)
	if code != exitNotOK || stderr != "" {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	ok, bad := uint64(counts["ok"]), uint64(counts["upgrade_header_dropped"])
	if sum.ByCode["ok"] != ok || sum.ByCode["upgrade_header_dropped"] != bad || sum.Attempts != ok+bad {
		t.Fatalf("verdicts %v, generator scripted %v", sum.ByCode, counts)
	}
}
