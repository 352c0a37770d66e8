//go:build linux && amd64

package tlsplain

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// The cost the probes add to one call of the traced process, and what the
// ring carries. They need root and BPF (as the tests); run them with
//
//	sudo go test -run '^$' -bench . -benchtime 20000x ./capture/tlsplain
//
// BenchmarkCall times calibTarget (an SSL_write in this binary, the
// function the calibration probes) without the probes, captured with 64
// bytes and 16 KiB, and on a connection sampling left out; its ns/op less
// the plain one is the cost per call on this kernel. BenchmarkRing moves
// 16 KiB records through the ring from one and two threads as fast as
// they go, with one reader decoding them: read-MB/s is what the reader
// took, drops/op the share of records lost for a full ring.

// benchProbe opens a Probe that traces nothing but this process's
// calibTarget, and reads its ring on a goroutine until the benchmark ends;
// the bytes read are counted in *read.
func benchProbe(b *testing.B, read *atomic.Uint64) *Probe {
	requireProbes(b, "")
	p, err := Open(Options{PIDs: []uint32{}, Costs: &Costs{}})
	if err != nil {
		b.Fatal(err)
	}
	detach, err := p.selfProbe()
	if err != nil {
		p.Close()
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			// The calibration's records (this process's) are what Read
			// skips: decode them here instead, as Read decodes a
			// proxy's.
			if err := p.rd.ReadInto(&p.raw); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					p.rd.SetDeadline(time.Now().Add(poll))
					continue
				}
				return
			}
			var r Record
			if r.Decode(p.raw.RawSample) == nil && read != nil {
				read.Add(uint64(len(r.Data)))
			}
		}
	}()
	b.Cleanup(func() {
		detach()
		p.Close()
		wg.Wait()
	})
	return p
}

func BenchmarkCall(b *testing.B) {
	buf := make([]byte, MaxChunk)
	base := uintptr(unsafe.Pointer(&buf[0]))
	b.Run("plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			calibCall(1, base, 64)
		}
	})
	for _, c := range []struct {
		name string
		n    int
		keep float64
	}{{"captured-64B", 64, 1}, {"captured-16KiB", MaxChunk, 1}, {"skipped", 64, 0}} {
		b.Run(c.name, func(b *testing.B) {
			p := benchProbe(b, nil)
			p.setKeep(c.keep)
			calibCall(1, base, c.n) // the connection is drawn at its first call
			b.SetBytes(int64(c.n))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				calibCall(1, base, c.n)
			}
			b.StopTimer()
			st := p.Stats()
			b.ReportMetric(float64(st.Drops)/float64(b.N), "drops/op")
		})
	}
}

func BenchmarkRing(b *testing.B) {
	for _, writers := range []int{1, 2} {
		b.Run(fmt.Sprintf("writers-%d", writers), func(b *testing.B) {
			var read atomic.Uint64
			p := benchProbe(b, &read)
			buf := make([]byte, MaxChunk)
			base := uintptr(unsafe.Pointer(&buf[0]))
			b.SetBytes(MaxChunk)
			b.ResetTimer()
			t := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(ssl uintptr) {
					defer wg.Done()
					for i := 0; i < b.N/writers; i++ {
						calibCall(ssl, base, MaxChunk)
					}
				}(uintptr(w + 1))
			}
			wg.Wait()
			time.Sleep(2 * poll) // the reader's last look
			el := time.Since(t)
			b.StopTimer()
			st := p.Stats()
			b.ReportMetric(float64(st.Drops)/float64(b.N), "drops/op")
			b.ReportMetric(float64(read.Load())/el.Seconds()/1e6, "read-MB/s")
		})
	}
}
