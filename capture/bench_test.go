package capture_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/synth"
)

// BenchmarkReader reads and decodes a synthetic capture (Ethernet, IPv4,
// TCP; shaped like the nginx captures) from memory: one op is one packet.
// Per packet it allocates nothing; opening the reader again at the end of
// the capture is the only allocation.
func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, 100000, 1); err != nil {
		b.Fatal(err)
	}
	open := func() *capture.Reader {
		r, err := capture.NewReader("synth.pcap", bytes.NewReader(buf.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	r := open()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.SetBytes(int64(buf.Len()) / 100000)
	b.ResetTimer()
	opens := 0
	for i := 0; i < b.N; i++ {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			r, opens = open(), opens+1
			i--
			continue
		}
		if err != nil || p.TCP == nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	if opens == 0 {
		if n := after.Mallocs - before.Mallocs; n > 10 {
			b.Errorf("%d allocations for %d packets", n, b.N)
		}
	}
}
