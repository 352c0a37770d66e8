package capture_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wsdiag/wsdiag/capture"
)

// capturesDir holds the real captures the seeds and table tests start from.
const capturesDir = "../testdata/captures"

// realCaptures returns the paths of every real capture.
func realCaptures(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join(capturesDir, pat))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) == 0 {
		tb.Fatalf("no captures in %s", capturesDir)
	}
	return out
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// le32 appends little-endian uint32s.
func le32(b []byte, v ...uint32) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

// pcapHeader is a little-endian pcap file header.
func pcapHeader(snaplen, linkType uint32) []byte {
	return le32(nil, 0xa1b2c3d4, 2|4<<16, 0, 0, snaplen, linkType)
}

// handMadeSeeds are small pcap/pcapng files and header fragments.
func handMadeSeeds() [][]byte {
	var seeds [][]byte
	eth := pcapHeader(65535, 1)
	seeds = append(seeds,
		nil,
		[]byte{0xd4},
		[]byte{0x1f, 0x8b},
		[]byte{0x0a, 0x0d, 0x0d, 0x0a},
		eth,
		pcapHeader(0, 1),
		pcapHeader(1<<31, 1),
		pcapHeader(65535, 147),
		pcapHeader(65535, 276),
		pcapHeader(65535, 101),
		pcapHeader(65535, 0),
		// a record claiming 4 GiB
		le32(append([]byte(nil), eth...), 0, 0, 0xffffffff, 0xffffffff),
		// captured length > original length
		le32(append([]byte(nil), eth...), 0, 0, 60, 40),
		// big-endian nanosecond magic
		binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(
			binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil,
				0xa1b23c4d), 2<<16|4), 0), 0), 65535), 1),
	)
	// pcapng: SHB (little endian) + IDB (Ethernet) + EPB of a 0 byte packet
	shb := le32(nil, 0x0a0d0d0a, 28, 0x1a2b3c4d, 1, 0xffffffff, 0xffffffff, 28)
	idb := le32(nil, 1, 20, 1, 0, 20) // link type 1, reserved 0, snaplen 0
	epb := le32(nil, 6, 32, 0, 0, 0, 0, 0, 32)
	ng := append(append(append([]byte(nil), shb...), idb...), epb...)
	seeds = append(seeds, shb, ng)
	// the same with an EPB whose captured length is 0xffffffff
	seeds = append(seeds, append(append(append([]byte(nil), shb...), idb...), le32(nil, 6, 32, 0, 0, 0, 0xffffffff, 0xffffffff, 32)...))
	// an SHB with a block length shorter than the header
	seeds = append(seeds, le32(nil, 0x0a0d0d0a, 4, 0x1a2b3c4d, 1, 0xffffffff, 0xffffffff, 4))
	return seeds
}

func FuzzReader(f *testing.F) {
	for _, p := range realCaptures(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)])
		if strings.HasSuffix(p, "correct.pcap") {
			f.Add(gzipBytes(f, b[:min(len(b), 4096)]))
		}
	}
	for _, s := range handMadeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReader(t, data)
	})
}

// checkReader drains a reader over data and checks the reader's contract:
// no panic, errors are one-line FileErrors that name the file, a bounded
// number of packets, and memory bounded by the input (or, for gzip, by its
// decompressed size).
func checkReader(t *testing.T, data []byte) {
	t.Helper()
	const name = "fuzz"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := drain(name, data)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if err == nil {
		t.Fatalf("drain returned nil error")
	}
	if err != io.EOF {
		checkFileError(t, err, name)
	}
	// Every pcap record takes 16 bytes and every pcapng block 12 (a
	// simple packet block), so a reader cannot honestly yield more packets
	// than that from the (decompressed) input.
	size := len(data)
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		size = gunzipLen(data)
	}
	if n > size/12+1 {
		t.Fatalf("%d packets from %d bytes", n, size)
	}
	// Two 1 MiB bufio buffers (plain and after gzip), gzip state, pcapgo's
	// own buffers and eager-read packet buffer (<= 256 KiB): a few MiB, plus
	// at most a few times what the input (decompressed) holds.
	if limit := uint64(8<<20) + 4*uint64(size); alloc > limit {
		// TotalAlloc counts the whole process (the fuzzing engine too):
		// measure again before blaming the reader.
		runtime.ReadMemStats(&before)
		drain(name, data)
		runtime.ReadMemStats(&after)
		alloc = min(alloc, after.TotalAlloc-before.TotalAlloc)
	}
	if limit := uint64(8<<20) + 4*uint64(size); alloc > limit {
		t.Fatalf("reading %d bytes (%d decompressed) allocated %d bytes (limit %d)", len(data), size, alloc, limit)
	}
}

// gunzipLen returns how many bytes data decompresses to (what a gzip
// reader yields before its first error), capped at 64 MiB.
func gunzipLen(data []byte) int {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return len(data)
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, 64<<20))
	return int(n) + len(data)
}

// drain reads every packet; it returns how many came out and the error
// that ended the read (io.EOF at a clean end).
func drain(name string, data []byte) (int, error) {
	r, err := capture.NewReader(name, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	n := 0
	// Plaintext records count as packets (the bound below holds them too).
	r.SetPlaintext(func(p *capture.Plaintext) {
		if len(p.Data) > len(data) {
			panic("plaintext longer than the file")
		}
		n++
	})
	for {
		p, err := r.Next()
		if err != nil {
			return n, err
		}
		if p == nil || p.TCP == nil {
			return n, errors.New("Next returned a nil packet (or nil TCP) without an error")
		}
		n++
		if n > 10_000_000 {
			return n, errors.New("more than 10M packets: a loop?")
		}
	}
}

// checkFileError asserts err is a *capture.FileError naming the file in a
// single line.
func checkFileError(t *testing.T, err error, name string) {
	t.Helper()
	var fe *capture.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) is not a *capture.FileError", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, name+": ") {
		t.Fatalf("error %q does not start with %q", msg, name+": ")
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("error %q is not one line", msg)
	}
	if fe.Name != name {
		t.Fatalf("FileError.Name = %q, want %q", fe.Name, name)
	}
	if len(msg) > 300 {
		t.Fatalf("error message is %d bytes long: %q", len(msg), msg)
	}
}
