package capture_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/capture"
)

// The tests here build every bad input from a real capture
// (testdata/captures/correct.pcap, link type Ethernet, little endian,
// microseconds) by cutting or patching it.

const name = "bad.pcap"

// pkt is what the tests compare of one delivered segment.
type pkt struct {
	rec     uint64 // records read when it came out (1-based)
	ts      time.Time
	net     string
	sport   uint16
	dport   uint16
	seq     uint32
	flags   string
	payload int
}

func (p pkt) String() string {
	return fmt.Sprintf("#%d %s %s:%d>%d seq=%d %s len=%d", p.rec, p.ts.Format("15:04:05.000000"), p.net, p.sport, p.dport, p.seq, p.flags, p.payload)
}

// readAll drains a reader, returning the segments, the error that ended
// it (io.EOF for a clean end) and the reader (nil when NewReader failed).
func readAll(tb testing.TB, nm string, data []byte) ([]pkt, *capture.Reader, error) {
	tb.Helper()
	r, err := capture.NewReader(nm, bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var out []pkt
	for {
		p, err := r.Next()
		if err != nil {
			return out, r, err
		}
		t := p.TCP
		fl := ""
		for _, f := range []struct {
			on bool
			c  string
		}{{t.SYN, "S"}, {t.ACK, "."}, {t.FIN, "F"}, {t.RST, "R"}, {t.PSH, "P"}} {
			if f.on {
				fl += f.c
			}
		}
		out = append(out, pkt{rec: r.Packets, ts: p.CI.Timestamp, net: p.Net.String(), sport: uint16(t.SrcPort),
			dport: uint16(t.DstPort), seq: t.Seq, flags: fl, payload: len(t.Payload)})
		if len(out) > 1_000_000 {
			tb.Fatal("too many packets")
		}
	}
}

func readCapture(tb testing.TB, base string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(capturesDir, base))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// pcapRecord is one record of a pcap file: [start,end) in the file.
type pcapRecord struct {
	start, end int
	sec, usec  uint32
	data       []byte
}

// pcapRecords splits a little-endian pcap file into its records.
func pcapRecords(tb testing.TB, b []byte) []pcapRecord {
	tb.Helper()
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		tb.Fatalf("not a little-endian microsecond pcap")
	}
	var out []pcapRecord
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			tb.Fatalf("record header at %d runs past the end", off)
		}
		caplen := int(binary.LittleEndian.Uint32(b[off+8:]))
		end := off + 16 + caplen
		if end > len(b) {
			tb.Fatalf("record at %d runs past the end", off)
		}
		out = append(out, pcapRecord{start: off, end: end, sec: binary.LittleEndian.Uint32(b[off:]),
			usec: binary.LittleEndian.Uint32(b[off+4:]), data: b[off+16 : end]})
		off = end
	}
	return out
}

// wantPrefix checks that got is the first packets of ref whose records lie
// within the first nrec records.
func wantPrefix(t *testing.T, got, ref []pkt, nrec uint64) {
	t.Helper()
	var want []pkt
	for _, p := range ref {
		if p.rec <= nrec {
			want = append(want, p)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d packets, want the %d of the first %d records", len(got), len(want), nrec)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("packet %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func checkOneLine(t *testing.T, err error, nm string) {
	t.Helper()
	checkFileError(t, err, nm)
}

func TestCorrectCaptureReference(t *testing.T) {
	b := readCapture(t, "correct.pcap")
	ref, r, err := readAll(t, name, b)
	if err != io.EOF {
		t.Fatalf("reading the real capture: %v", err)
	}
	recs := pcapRecords(t, b)
	if r.Packets != uint64(len(recs)) || len(ref) != len(recs) {
		t.Fatalf("records %d, read %d, TCP %d", len(recs), r.Packets, len(ref))
	}
}

// lessGC makes the garbage collector run less often (every reader
// allocates a 1 MiB buffer: at the default GOGC the every-offset tests
// spend most of their time collecting) and returns the undo.
func lessGC() func() {
	old := debug.SetGCPercent(300)
	return func() { debug.SetGCPercent(old) }
}

// TestTruncatedEveryOffset cuts correct.pcap at every byte offset.
func TestTruncatedEveryOffset(t *testing.T) {
	t.Parallel()
	defer lessGC()()
	b := readCapture(t, "correct.pcap")
	ref, _, err := readAll(t, name, b)
	if err != io.EOF {
		t.Fatal(err)
	}
	recs := pcapRecords(t, b)
	boundary := map[int]bool{24: true}
	headerOnly := map[int]bool{}
	for _, r := range recs {
		boundary[r.end] = true
		headerOnly[r.start+16] = true
	}
	var bugCuts []int
	for cut := 0; cut < len(b); cut++ {
		got, r, err := readAll(t, name, b[:cut])
		if r == nil {
			// Only a cut inside the file header may fail at open.
			if cut >= 24 {
				t.Fatalf("cut %d: open failed: %v", cut, err)
			}
			checkOneLine(t, err, name)
			var want string
			switch {
			case cut == 0:
				want = name + ": empty file"
			case cut < 4:
				want = name + ": not a pcap or pcapng capture (file too short)"
			default:
				want = name + ": pcap: file ends inside its header"
			}
			if err.Error() != want {
				t.Fatalf("cut %d: error %q, want %q", cut, err, want)
			}
			continue
		}
		if cut < 24 {
			t.Fatalf("cut %d inside the file header: open succeeded", cut)
		}
		complete := uint64(0)
		for _, rc := range recs {
			if rc.end <= cut {
				complete++
			}
		}
		if boundary[cut] {
			if err != io.EOF {
				t.Fatalf("cut %d on a record boundary: %v, want io.EOF", cut, err)
			}
		} else {
			if !errors.Is(err, capture.ErrTruncated) {
				t.Fatalf("cut %d inside a record: %v, want ErrTruncated", cut, err)
			}
			checkOneLine(t, err, name)
			if want := name + ": " + capture.ErrTruncated.Error(); err.Error() != want {
				t.Fatalf("cut %d: %q, want %q", cut, err, want)
			}
		}
		if r.Packets != complete {
			t.Fatalf("cut %d: %d records read, want %d", cut, r.Packets, complete)
		}
		wantPrefix(t, got, ref, complete)
	}
	if len(bugCuts) > 0 {
		t.Fatalf("a pcap cut right after a record header (16 bytes, none of the packet data) ends with io.EOF, "+
			"not ErrTruncated: the truncation goes unreported (capture/reader.go Next: pcapgo's io.ReadFull of the data "+
			"returns io.EOF when it reads 0 bytes, and Next treats every io.EOF as a clean end); %d cuts, e.g. %v",
			len(bugCuts), bugCuts[:min(5, len(bugCuts))])
	}
}

// TestTruncatedPcapngEveryOffset cuts the real pcapng capture at (nearly)
// every byte offset: packets of complete blocks, then io.EOF on a block
// boundary or ErrTruncated inside a block.
func TestTruncatedPcapngEveryOffset(t *testing.T) {
	t.Parallel()
	defer lessGC()()
	b := readCapture(t, "pcapng-mixed.pcapng")
	ref, _, err := readAll(t, name, b)
	if err != io.EOF {
		t.Fatal(err)
	}
	type blk struct {
		typ        uint32
		start, end int
	}
	var blocks []blk
	for off := 0; off < len(b); {
		l := int(binary.LittleEndian.Uint32(b[off+4:]))
		blocks = append(blocks, blk{binary.LittleEndian.Uint32(b[off:]), off, off + l})
		off += l
	}
	shbEnd := blocks[0].end
	// Every offset in the first 2 KiB and within 24 bytes of a block
	// boundary, every 7th elsewhere: every reader allocates a 1 MiB buffer,
	// and this runs in every "go test".
	nearBoundary := func(cut int) bool {
		for _, bl := range blocks {
			if cut >= bl.start-24 && cut <= bl.start+24 {
				return true
			}
		}
		return false
	}
	for cut := 0; cut < len(b); cut++ {
		if cut > 2048 && cut%7 != 0 && !nearBoundary(cut) {
			continue
		}
		got, r, err := readAll(t, name, b[:cut])
		if r == nil {
			if cut >= shbEnd {
				t.Fatalf("cut %d after the section header: open failed: %v", cut, err)
			}
			checkOneLine(t, err, name)
			continue
		}
		if cut < shbEnd {
			t.Fatalf("cut %d inside the section header: open succeeded", cut)
		}
		complete := uint64(0)
		onBoundary := false
		for _, bl := range blocks {
			if bl.end == cut || bl.start == cut {
				onBoundary = true
			}
			if bl.end <= cut && (bl.typ == 6 || bl.typ == 3) {
				complete++
			}
		}
		if onBoundary {
			if err != io.EOF {
				t.Fatalf("cut %d on a block boundary: %v, want io.EOF", cut, err)
			}
		} else if !errors.Is(err, capture.ErrTruncated) {
			t.Fatalf("cut %d inside a block: %v, want ErrTruncated", cut, err)
		}
		if err != io.EOF {
			checkOneLine(t, err, name)
		}
		if r.Packets != complete {
			t.Fatalf("cut %d: %d records read, want %d", cut, r.Packets, complete)
		}
		wantPrefix(t, got, ref, complete)
	}
}

func TestOpenErrors(t *testing.T) {
	b := readCapture(t, "correct.pcap")
	lt147 := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(lt147[20:], 147)
	lt0 := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(lt0[20:], 0xffff)
	badVersion := append([]byte(nil), b...)
	binary.LittleEndian.PutUint16(badVersion[4:], 3)
	for _, tc := range []struct {
		desc string
		data []byte
		want string // exact text, or a prefix when it ends in "…"
	}{
		{"empty", nil, name + ": empty file"},
		{"one byte", []byte{0xd4}, name + ": not a pcap or pcapng capture (file too short)"},
		{"garbage", []byte("GARBAGE, not a capture at all\n"), name + ": not a pcap or pcapng capture (magic 47 41 52 42)"},
		{"text file", []byte("#!/bin/sh\necho hello\n"), name + ": not a pcap or pcapng capture (magic 23 21 2f 62)"},
		{"binary garbage", bytes.Repeat([]byte{0xff}, 4096), name + ": not a pcap or pcapng capture (magic ff ff ff ff)"},
		{"gzip of nothing", gzipBytes(t, nil), name + ": empty file (after gzip)"},
		{"gzip of garbage", gzipBytes(t, []byte("GARBAGE")), name + ": not a pcap or pcapng capture (magic 47 41 52 42)"},
		{"gzip header only", gzipBytes(t, nil)[:5], name + ": gzip: …"},
		{"pcap header cut", b[:20], name + ": pcap: file ends inside its header"},
		{"unknown link type 147", lt147, name + ": unsupported link type 147 …"},
		{"unknown link type 65535", lt0, name + ": unsupported link type 65535 …"},
		{"pcap version 3", badVersion, name + ": pcap: …"},
		{"pcapng magic only", []byte{0x0a, 0x0d, 0x0d, 0x0a}, name + ": pcapng: file ends inside its header"},
		{"pcapng bad byte-order magic", le32(nil, 0x0a0d0d0a, 28, 0x11223344, 1, 0, 0, 28), name + ": pcapng: …"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, r, err := readAll(t, name, tc.data)
			if r != nil {
				t.Fatalf("open succeeded (%d packets, then %v)", len(got), err)
			}
			checkOneLine(t, err, name)
			if p, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(err.Error(), p) {
					t.Fatalf("error %q, want prefix %q", err, p)
				}
			} else if err.Error() != tc.want {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

// TestSnaplen: a header declaring snap length 0 or 2^31 reads like the
// original.
func TestSnaplen(t *testing.T) {
	b := readCapture(t, "correct.pcap")
	ref, _, _ := readAll(t, name, b)
	for _, sl := range []uint32{0, 1, 1 << 31, 0xffffffff} {
		m := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(m[16:], sl)
		got, r, err := readAll(t, name, m)
		if r == nil || err != io.EOF {
			t.Fatalf("snaplen %d: %v", sl, err)
		}
		wantPrefix(t, got, ref, uint64(len(ref)))
	}
}

// patchRecord returns a copy of correct.pcap with record i's captured and
// original lengths set.
func patchRecord(t *testing.T, i int, caplen, origlen uint32) ([]byte, []pkt) {
	t.Helper()
	b := readCapture(t, "correct.pcap")
	ref, _, _ := readAll(t, name, b)
	recs := pcapRecords(t, b)
	m := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(m[recs[i].start+8:], caplen)
	binary.LittleEndian.PutUint32(m[recs[i].start+12:], origlen)
	return m, ref
}

func TestCaptureLengthAboveOriginal(t *testing.T) {
	const i = 4
	b := readCapture(t, "correct.pcap")
	recs := pcapRecords(t, b)
	cl := uint32(len(recs[i].data))
	m, ref := patchRecord(t, i, cl, cl-1)
	got, r, err := readAll(t, name, m)
	if r == nil {
		t.Fatal(err)
	}
	// Either the record is refused with a clear error after the good ones,
	// or it is read; never a panic or garbage after it.
	if err == io.EOF {
		wantPrefix(t, got, ref, uint64(len(recs)))
		return
	}
	checkOneLine(t, err, name)
	want := fmt.Sprintf("%s: after %d packets: capture length exceeds original packet length: %d > %d", name, i, cl, cl-1)
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	wantPrefix(t, got, ref, i)
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHugeRecordLength: a record claiming 4 GiB (or 2 GiB) must be refused
// without allocating it.
func TestHugeRecordLength(t *testing.T) {
	const i = 4
	for _, tc := range []struct {
		caplen, origlen uint32
	}{
		{0xffffffff, 0xffffffff},
		{0xffffffff, 60},
		{0x7fffffff, 0x7fffffff},
		{0x80000000, 0x80000000},
		{262145, 262145},
	} {
		t.Run(fmt.Sprintf("%#x", tc.caplen), func(t *testing.T) {
			m, ref := patchRecord(t, i, tc.caplen, tc.origlen)
			r, err := capture.NewReader(name, bytes.NewReader(m))
			if err != nil {
				t.Fatal(err)
			}
			var got []pkt
			var end error
			alloc := allocDuring(func() {
				for {
					p, err := r.Next()
					if err != nil {
						end = err
						return
					}
					got = append(got, pkt{rec: r.Packets, ts: p.CI.Timestamp, net: p.Net.String(), sport: uint16(p.TCP.SrcPort),
						dport: uint16(p.TCP.DstPort), seq: p.TCP.Seq, payload: len(p.TCP.Payload)})
				}
			})
			if alloc >= 1<<20 {
				t.Errorf("reading allocated %d bytes, want < 1 MiB", alloc)
			}
			if end == io.EOF {
				t.Fatalf("a %d byte record in a %d byte file read to a clean end", tc.caplen, len(m))
			}
			checkOneLine(t, end, name)
			if len(got) != i {
				t.Fatalf("%d packets before the bad record, want %d", len(got), i)
			}
			for k := range got {
				if got[k].seq != ref[k].seq || !got[k].ts.Equal(ref[k].ts) {
					t.Fatalf("packet %d: %v, want %v", k, got[k], ref[k])
				}
			}
			t.Logf("%v", end)
		})
	}
}

// TestPcapngHugePacketLength: the same in an enhanced packet block.
func TestPcapngHugePacketLength(t *testing.T) {
	b := readCapture(t, "correct.pcap")
	recs := pcapRecords(t, b)
	for _, caplen := range []uint32{0xffffffff, 0x7fffffff, 0x80000000, 300000} {
		t.Run(fmt.Sprintf("%#x", caplen), func(t *testing.T) {
			e := &ngEnc{bo: binary.LittleEndian}
			e.shb()
			e.idb(1, 262144)
			for _, rc := range recs[:3] {
				e.epb(0, rc)
			}
			// an EPB whose header claims caplen bytes, with 64 bytes of body
			body := make([]byte, 20+64)
			binary.LittleEndian.PutUint32(body[12:], caplen)
			binary.LittleEndian.PutUint32(body[16:], caplen)
			e.block(6, body)
			r, err := capture.NewReader(name, bytes.NewReader(e.buf))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			var end error
			alloc := allocDuring(func() {
				for {
					if _, err := r.Next(); err != nil {
						end = err
						return
					}
					n++
				}
			})
			if alloc >= 1<<20 {
				t.Errorf("reading allocated %d bytes, want < 1 MiB", alloc)
			}
			if n != 3 {
				t.Errorf("%d packets, want 3", n)
			}
			if end == io.EOF {
				t.Fatalf("clean end after a block claiming %d bytes", caplen)
			}
			checkOneLine(t, end, name)
			t.Logf("%v", end)
		})
	}
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// ngEnc writes pcapng blocks in either byte order.
type ngEnc struct {
	bo  byteOrder
	buf []byte
}

func (e *ngEnc) block(typ uint32, body []byte) {
	pad := (4 - len(body)%4) % 4
	total := uint32(12 + len(body) + pad)
	e.buf = e.bo.AppendUint32(e.buf, typ)
	e.buf = e.bo.AppendUint32(e.buf, total)
	e.buf = append(e.buf, body...)
	e.buf = append(e.buf, make([]byte, pad)...)
	e.buf = e.bo.AppendUint32(e.buf, total)
}

func (e *ngEnc) shb() {
	var body []byte
	body = e.bo.AppendUint32(body, 0x1a2b3c4d)
	body = e.bo.AppendUint16(body, 1)
	body = e.bo.AppendUint16(body, 0)
	body = e.bo.AppendUint64(body, 0xffffffffffffffff)
	e.block(0x0a0d0d0a, body)
}

func (e *ngEnc) idb(linkType uint16, snaplen uint32) {
	var body []byte
	body = e.bo.AppendUint16(body, linkType)
	body = e.bo.AppendUint16(body, 0)
	body = e.bo.AppendUint32(body, snaplen)
	e.block(1, body)
}

// epb writes an enhanced packet block for a pcap record (microseconds).
func (e *ngEnc) epb(iface uint32, rc pcapRecord) { e.epbData(iface, rc, rc.data) }

func (e *ngEnc) epbData(iface uint32, rc pcapRecord, data []byte) {
	ts := uint64(rc.sec)*1e6 + uint64(rc.usec)
	var body []byte
	body = e.bo.AppendUint32(body, iface)
	body = e.bo.AppendUint32(body, uint32(ts>>32))
	body = e.bo.AppendUint32(body, uint32(ts))
	body = e.bo.AppendUint32(body, uint32(len(data)))
	body = e.bo.AppendUint32(body, uint32(len(data)))
	body = append(body, data...)
	e.block(6, body)
}

// ngFromPcap converts correct.pcap into a pcapng section in byte order bo.
func ngFromPcap(t *testing.T, bo byteOrder, recs []pcapRecord) *ngEnc {
	t.Helper()
	e := &ngEnc{bo: bo}
	e.shb()
	e.idb(1, 262144)
	for _, rc := range recs {
		e.epb(0, rc)
	}
	return e
}

func TestPcapng(t *testing.T) {
	b := readCapture(t, "correct.pcap")
	ref, _, _ := readAll(t, name, b)
	recs := pcapRecords(t, b)
	half := len(recs) / 2

	t.Run("little endian", func(t *testing.T) {
		e := ngFromPcap(t, binary.LittleEndian, recs)
		got, _, err := readAll(t, name, e.buf)
		if err != io.EOF {
			t.Fatal(err)
		}
		wantPrefix(t, got, ref, uint64(len(recs)))
	})
	t.Run("big endian", func(t *testing.T) {
		e := ngFromPcap(t, binary.BigEndian, recs)
		got, _, err := readAll(t, name, e.buf)
		if err != io.EOF {
			t.Fatal(err)
		}
		wantPrefix(t, got, ref, uint64(len(recs)))
	})
	t.Run("second section in the other byte order", func(t *testing.T) {
		e := ngFromPcap(t, binary.LittleEndian, recs[:half])
		e2 := ngFromPcap(t, binary.BigEndian, recs[half:])
		data := append(e.buf, e2.buf...)
		got, _, err := readAll(t, name, data)
		if err != io.EOF {
			t.Fatal(err)
		}
		wantPrefix(t, got, ref, uint64(len(recs)))
		// and back again
		e3 := ngFromPcap(t, binary.BigEndian, recs[:half])
		e4 := ngFromPcap(t, binary.LittleEndian, recs[half:])
		got, _, err = readAll(t, name, append(e3.buf, e4.buf...))
		if err != io.EOF {
			t.Fatal(err)
		}
		wantPrefix(t, got, ref, uint64(len(recs)))
	})
	t.Run("second section with another link type", func(t *testing.T) {
		// Concatenated pcapng files (cat a.pcapng b.pcapng, or a capture
		// tool restarting): section 2 numbers its interfaces from 0 again,
		// and its interface 0 is raw IP, not Ethernet.
		e := ngFromPcap(t, binary.LittleEndian, recs[:half])
		e2 := &ngEnc{bo: binary.BigEndian}
		e2.shb()
		e2.idb(101, 262144) // LINKTYPE_RAW
		for _, rc := range recs[half:] {
			e2.epbData(0, rc, rc.data[14:]) // strip the Ethernet header
		}
		got, r, err := readAll(t, name, append(e.buf, e2.buf...))
		if err != io.EOF {
			t.Fatal(err)
		}
		if len(got) != len(ref) {
			t.Fatalf("capture.Reader keeps the link types of the first pcapng section: "+
				"after a second section header whose interface 0 is LINKTYPE_RAW it still decodes interface 0 as Ethernet; "+
				"%d of %d TCP segments came out (records read %d, skipped %d)", len(got), len(ref), r.Packets, r.Skipped)
		}
		for i := range got {
			if got[i].seq != ref[i].seq || got[i].payload != ref[i].payload {
				t.Fatalf("packet %d: %v, want %v", i, got[i], ref[i])
			}
		}
	})
	t.Run("unknown block type is skipped", func(t *testing.T) {
		e := &ngEnc{bo: binary.LittleEndian}
		e.shb()
		e.idb(1, 262144)
		for i, rc := range recs {
			if i == 3 {
				e.block(0x00000bad, []byte("unknown block body"))
				e.block(0x80000001, nil) // a local-use block type, empty
			}
			e.epb(0, rc)
		}
		got, _, err := readAll(t, name, e.buf)
		if err != io.EOF {
			t.Fatal(err)
		}
		wantPrefix(t, got, ref, uint64(len(recs)))
	})
	t.Run("unknown link type", func(t *testing.T) {
		e := &ngEnc{bo: binary.LittleEndian}
		e.shb()
		e.idb(147, 262144)
		for _, rc := range recs {
			e.epb(0, rc)
		}
		got, r, err := readAll(t, name, e.buf)
		if r == nil {
			// refusing at open is fine too, with a clear error naming it
			checkOneLine(t, err, name)
			if !strings.Contains(err.Error(), "147") {
				t.Fatalf("error %q does not name link type 147", err)
			}
			return
		}
		if err != io.EOF {
			t.Fatal(err)
		}
		if len(got) != 0 || r.Skipped != uint64(len(recs)) {
			t.Fatalf("%d packets, %d skipped; want 0 and %d skipped", len(got), r.Skipped, len(recs))
		}
	})
	t.Run("packet for an interface that does not exist", func(t *testing.T) {
		e := &ngEnc{bo: binary.LittleEndian}
		e.shb()
		e.idb(1, 262144)
		for i, rc := range recs[:6] {
			iface := uint32(0)
			if i == 4 {
				iface = 7
			}
			e.epb(iface, rc)
		}
		got, _, err := readAll(t, name, e.buf)
		checkOneLine(t, err, name)
		wantPrefix(t, got, ref, 4)
	})
}

// TestPcapngWrongBlockLength damages the length of one packet block.
func TestPcapngWrongBlockLength(t *testing.T) {
	b := readCapture(t, "correct.pcap")
	ref, _, _ := readAll(t, name, b)
	recs := pcapRecords(t, b)
	const i = 4
	base := ngFromPcap(t, binary.LittleEndian, recs)
	// offset of EPB i: SHB (28) + IDB (20) + the EPBs before
	off := 28 + 20
	for _, rc := range recs[:i] {
		off += 32 + (len(rc.data)+3)/4*4
	}
	if binary.LittleEndian.Uint32(base.buf[off:]) != 6 {
		t.Fatalf("no EPB at %d", off)
	}
	orig := binary.LittleEndian.Uint32(base.buf[off+4:])
	for _, l := range []uint32{0, 4, 8, 12, 28, 31, orig - 4, orig + 4, orig + 4096, 1 << 20, 0x7ffffffc, 0xfffffffc, 0xffffffff} {
		t.Run(fmt.Sprint(l), func(t *testing.T) {
			m := append([]byte(nil), base.buf...)
			binary.LittleEndian.PutUint32(m[off+4:], l)
			var got []pkt
			var err error
			var r *capture.Reader
			alloc := allocDuring(func() { got, r, err = readAll(t, name, m) })
			if alloc > 4<<20 {
				t.Errorf("allocated %d bytes for a %d byte file", alloc, len(m))
			}
			if r == nil {
				t.Fatalf("open failed: %v", err)
			}
			if len(got) < i {
				t.Fatalf("%d packets before the damaged block, want %d", len(got), i)
			}
			wantPrefix(t, got[:i], ref, i)
			if err != io.EOF {
				checkOneLine(t, err, name)
			}
			t.Logf("length %d: %d packets, then %v", l, len(got), err)
		})
	}
}

// TestGzip: a gzip of the real capture reads like it; one damaged half-way
// yields the packets before the damage, then a FileError.
func TestGzip(t *testing.T) {
	b := readCapture(t, "correct.pcap")
	ref, _, _ := readAll(t, name, b)
	z := gzipBytes(t, b)

	got, _, err := readAll(t, name, z)
	if err != io.EOF {
		t.Fatal(err)
	}
	wantPrefix(t, got, ref, uint64(len(ref)))

	t.Run("truncated half-way", func(t *testing.T) {
		got, r, err := readAll(t, name, z[:len(z)/2])
		if r == nil {
			t.Fatal(err)
		}
		if !errors.Is(err, capture.ErrTruncated) {
			t.Fatalf("%v, want ErrTruncated", err)
		}
		checkOneLine(t, err, name)
		if len(got) == 0 {
			t.Fatal("no packets before the cut")
		}
		wantPrefix(t, got, ref, got[len(got)-1].rec)
	})
	t.Run("corrupt half-way", func(t *testing.T) {
		for _, pos := range []int{len(z) / 2, len(z) / 3, 2 * len(z) / 3} {
			m := append([]byte(nil), z...)
			for k := pos; k < pos+16 && k < len(m); k++ {
				m[k] ^= 0x5a
			}
			got, r, err := readAll(t, name, m)
			if r == nil {
				t.Fatal(err)
			}
			if err == io.EOF {
				t.Fatalf("corrupt at %d: clean end after %d packets", pos, len(got))
			}
			checkOneLine(t, err, name)
			if len(got) < 3 {
				t.Fatalf("corrupt at %d: %d packets before the damage", pos, len(got))
			}
			wantPrefix(t, got[:3], ref, 3)
			t.Logf("corrupt at %d: %d packets, then %v", pos, len(got), err)
		}
	})
	t.Run("bad checksum", func(t *testing.T) {
		m := append([]byte(nil), z...)
		m[len(m)-6] ^= 0xff // CRC-32 in the trailer
		got, _, err := readAll(t, name, m)
		if err == io.EOF {
			t.Fatalf("a gzip with a wrong CRC read to a clean end (%d packets)", len(got))
		}
		checkOneLine(t, err, name)
		wantPrefix(t, got, ref, uint64(len(got)))
		t.Logf("%d packets, then %v", len(got), err)
	})
	t.Run("trailing garbage after the gzip member", func(t *testing.T) {
		m := append(append([]byte(nil), z...), []byte("garbage after the end")...)
		got, _, err := readAll(t, name, m)
		if err != io.EOF {
			checkOneLine(t, err, name)
		}
		wantPrefix(t, got, ref, uint64(len(ref)))
		t.Logf("%d packets, then %v", len(got), err)
	})
}

// TestTruncatedAllCaptures cuts every real capture inside its last record
// and inside the record (or pcapng block) that holds its middle byte: the
// reader must deliver the packets of the records before the cut, then
// report the truncation in one line, never a clean end.
func TestTruncatedAllCaptures(t *testing.T) {
	for _, p := range realCaptures(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		nm := filepath.Base(p)
		ref, _, err := readAll(t, nm, b)
		if err != io.EOF {
			t.Fatalf("%s: reading it whole: %v", nm, err)
		}
		spans := recordSpans(t, nm, b)
		mid := spans[0]
		for _, sp := range spans {
			if sp.start <= len(b)/2 && len(b)/2 < sp.end {
				mid = sp
			}
		}
		for _, cut := range []int{len(b) - 1, mid.start + (mid.end-mid.start)/2} {
			got, r, err := readAll(t, nm, b[:cut])
			if r == nil {
				t.Fatalf("%s cut at %d: open failed: %v", nm, cut, err)
			}
			if !errors.Is(err, capture.ErrTruncated) {
				t.Fatalf("%s cut at %d of %d bytes, inside a record: %v, want ErrTruncated", nm, cut, len(b), err)
			}
			checkOneLine(t, err, nm)
			complete := uint64(0)
			for _, sp := range spans {
				if sp.packet && sp.end <= cut {
					complete++
				}
			}
			if r.Packets != complete {
				t.Fatalf("%s cut at %d: %d packet records read, want %d", nm, cut, r.Packets, complete)
			}
			wantPrefix(t, got, ref, complete)
		}
	}
}

// span is one record of a pcap file, or one block of a pcapng file:
// [start,end) in the file; packet: it holds a packet.
type span struct {
	start, end int
	packet     bool
}

// recordSpans splits a pcap file into its records (the file header left
// out) or a pcapng file into its blocks, in either byte order.
func recordSpans(tb testing.TB, nm string, b []byte) []span {
	tb.Helper()
	var out []span
	add := func(start, end int, packet bool) {
		if end <= start || end > len(b) {
			tb.Fatalf("%s: record at %d runs to %d, past the end (%d)", nm, start, end, len(b))
		}
		out = append(out, span{start, end, packet})
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch m := binary.LittleEndian.Uint32(b); m {
	case 0x0a0d0d0a: // pcapng: the section header says the byte order
		for off := 0; off < len(b); off = out[len(out)-1].end {
			typ := bo.Uint32(b[off:])
			if typ == 0x0a0d0d0a && binary.BigEndian.Uint32(b[off+8:]) == 0x1a2b3c4d {
				bo = binary.BigEndian
			} else if typ == 0x0a0d0d0a {
				bo = binary.LittleEndian
			}
			add(off, off+int(bo.Uint32(b[off+4:])), typ == 6 || typ == 3) // enhanced or simple packet block
		}
	case 0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1: // pcap, µs or ns
		if m == 0xd4c3b2a1 || m == 0x4d3cb2a1 {
			bo = binary.BigEndian
		}
		for off := 24; off < len(b); off = out[len(out)-1].end {
			add(off, off+16+int(bo.Uint32(b[off+8:])), true)
		}
	default:
		tb.Fatalf("%s: neither pcap nor pcapng (magic %08x)", nm, m)
	}
	if len(out) == 0 {
		tb.Fatalf("%s: no records", nm)
	}
	return out
}
