package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// repeatCapture writes src k times into one pcap, each copy a minute after
// the last (so its connections are new ones, as after TIME_WAIT): a real
// capture's attempts many times over, with the analyzer deciding as
// capture time passes, as on a long capture.
func repeatCapture(tb testing.TB, src string, k int) string {
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		tb.Fatal(err)
	}
	type pkt struct {
		data []byte
		ts   time.Time
		n    int
	}
	var pkts []pkt
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		pkts = append(pkts, pkt{append([]byte(nil), data...), ci.Timestamp, ci.Length})
	}
	path := filepath.Join(tb.TempDir(), "repeated.pcap")
	out, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := pcapgo.NewWriter(out)
	w.WriteFileHeader(262144, r.LinkType())
	for i := 0; i < k; i++ {
		shift := time.Duration(i) * time.Minute
		for _, p := range pkts {
			ci := gopacket.CaptureInfo{Timestamp: p.ts.Add(shift), CaptureLength: len(p.data), Length: p.n}
			if err := w.WritePacket(ci, p.data); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkReadReal runs the whole pipeline on real nginx traffic —
// concurrent-20 (20 attempts, 20 keep-alive GETs, both legs) repeated 50
// times, and the file in $WSDIAG_BENCH_PCAP if set (cmd/wsbench/realwork.sh
// records one) — and reports time and allocations per attempt and per
// connection, the costs the per-packet figure hides.
func BenchmarkReadReal(b *testing.B) {
	files := map[string]string{"concurrent20x50": repeatCapture(b, "../../testdata/captures/concurrent-20.pcap", 50)}
	if f := os.Getenv("WSDIAG_BENCH_PCAP"); f != "" {
		files["env"] = f
	}
	for name, path := range files {
		sum := benchSummary(b, path)
		if sum.Attempts == 0 {
			b.Fatalf("%s: no attempts", path)
		}
		for _, w := range []string{"1", "2"} {
			b.Run(name+"/workers="+w, func(b *testing.B) {
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if code := run([]string{"read", "--format", "json", "--progress", "never", "--workers", w, path}, nil, io.Discard, io.Discard); code != exitNotOK && code != exitOK {
						b.Fatalf("exit %d", code)
					}
				}
				b.StopTimer()
				runtime.ReadMemStats(&m1)
				n := float64(b.N)
				ns := float64(b.Elapsed().Nanoseconds()) / n
				allocs := float64(m1.Mallocs-m0.Mallocs) / n
				bytes := float64(m1.TotalAlloc-m0.TotalAlloc) / n
				b.ReportMetric(ns/float64(sum.Attempts), "ns/attempt")
				b.ReportMetric(ns/float64(sum.Connections), "ns/conn")
				b.ReportMetric(allocs/float64(sum.Attempts), "allocs/attempt")
				b.ReportMetric(allocs/float64(sum.Connections), "allocs/conn")
				b.ReportMetric(bytes/float64(sum.Attempts), "B/attempt")
				b.ReportMetric(float64(sum.Packets)*n/b.Elapsed().Seconds(), "packets/s")
			})
		}
	}
}

// benchSummary reads path once and returns its summary line.
func benchSummary(tb testing.TB, path string) SummaryLine {
	var out bytes.Buffer
	run([]string{"read", "--format", "json", "--progress", "never", path}, nil, &out, io.Discard)
	var sum SummaryLine
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &sum); err != nil {
		tb.Fatalf("%s: summary: %v", path, err)
	}
	return sum
}

// BenchmarkDecodeOnly is `wsdiag read FILE -- port 1` on the file in
// $WSDIAG_BENCH_PCAP: reading and decoding every packet, analysing none
// (the figure held against tcpdump's bare read).
func BenchmarkDecodeOnly(b *testing.B) {
	path := os.Getenv("WSDIAG_BENCH_PCAP")
	if path == "" {
		b.Skip("WSDIAG_BENCH_PCAP is not set")
	}
	for i := 0; i < b.N; i++ {
		run([]string{"read", "--format", "json", "--progress", "never", "--workers", "1", path, "--", "port", "1"}, nil, io.Discard, io.Discard)
	}
}
