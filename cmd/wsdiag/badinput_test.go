package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input on the command line: every case runs the command in-process
// and checks the exit status, that errors are one line on stderr naming
// the file, and that nothing ever mentions a panic.

const capDir = "../../testdata/captures"

type result struct {
	code           int
	stdout, stderr string
}

func runRead(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"read", "--color", "never", "--progress", "never"}, args...), nil, &out, &errb)
	r := result{code, out.String(), errb.String()}
	for _, s := range []string{r.stdout, r.stderr} {
		low := strings.ToLower(s)
		if strings.Contains(low, "panic") || strings.Contains(low, "goroutine") {
			t.Fatalf("output mentions a panic:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
	}
	return r
}

func readCap(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(capDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// wantOneLineError checks a "could not run" result: exit 2, nothing on
// stdout, exactly one line on stderr, "wsdiag: " + the file + ": " + want.
func wantOneLineError(t *testing.T, r result, file, want string) {
	t.Helper()
	if r.code != exitTrouble {
		t.Errorf("exit %d, want %d", r.code, exitTrouble)
	}
	if r.stdout != "" {
		t.Errorf("stdout not empty:\n%s", r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("stderr is not exactly one line:\n%q", r.stderr)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	prefix := "wsdiag: " + file + ": "
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("stderr %q does not start with %q", line, prefix)
	}
	if !strings.Contains(line, want) {
		t.Fatalf("stderr %q does not say %q", line, want)
	}
}

// verdictLines returns the per-attempt lines of the text output (the table
// rows, without the header and the summary).
func verdictLines(out string) []string {
	var v []string
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 12 && l[2] == ':' && l[5] == ':' && l[8] == '.' {
			v = append(v, l)
		}
	}
	return v
}

// pcapRecordEnds returns the end offset of every record of a
// little-endian pcap.
func pcapRecordEnds(t *testing.T, b []byte) []int {
	t.Helper()
	var ends []int
	for off := 24; off+16 <= len(b); {
		off += 16 + int(binary.LittleEndian.Uint32(b[off+8:]))
		ends = append(ends, off)
	}
	return ends
}

func TestBadInputOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nothere.pcap")
	lt := readCap(t, "correct.pcap")
	lt = append([]byte(nil), lt...)
	binary.LittleEndian.PutUint32(lt[20:], 147)
	for _, tc := range []struct {
		desc string
		path string
		want string
	}{
		{"missing file", missing, "no such file or directory"},
		{"a directory", dir, "is a directory"},
		{"empty file", writeTemp(t, "empty.pcap", nil), "empty file"},
		{"garbage", writeTemp(t, "garbage.pcap", []byte("this is not a capture\n\x00\x01\x02")), "not a pcap or pcapng capture"},
		{"text with newlines", writeTemp(t, "notes.txt", []byte("line one\nline two\nline three\n")), "not a pcap or pcapng capture"},
		{"header only, cut", writeTemp(t, "cut.pcap", readCap(t, "correct.pcap")[:10]), "file ends inside its header"},
		{"unknown link type", writeTemp(t, "lt147.pcap", lt), "unsupported link type 147"},
		{"gzip of garbage", writeTemp(t, "garbage.pcap.gz", gz(t, []byte("garbage garbage"))), "not a pcap or pcapng capture"},
		{"name with a newline", writeTemp(t, "evil\nname.pcap", nil), "empty file"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := runRead(t, tc.path)
			file := tc.path
			if strings.Contains(file, "\n") {
				// the name must not break the one-line rule
				if strings.Count(r.stderr, "\n") != 1 {
					t.Fatalf("a file name containing a newline is printed raw, so the error takes %d lines:\n%q",
						strings.Count(r.stderr, "\n"), r.stderr)
				}
				if r.code != exitTrouble {
					t.Fatalf("exit %d", r.code)
				}
				return
			}
			wantOneLineError(t, r, file, tc.want)
		})
	}
	t.Run("second file bad", func(t *testing.T) {
		r := runRead(t, filepath.Join(capDir, "correct.pcap"), missing)
		wantOneLineError(t, r, missing, "no such file or directory")
	})
}

// A real capture cut in the middle of a packet record: a warning on stderr
// and the verdicts of the attempts before the cut, exit 0 or 1.
func TestBadInputTruncated(t *testing.T) {
	for _, name := range []string{"nginx-defaults.pcap", "correct.pcap"} {
		t.Run(name, func(t *testing.T) {
			full := readCap(t, name)
			whole := runRead(t, filepath.Join(capDir, name))
			wantVerdicts := verdictLines(whole.stdout)
			if len(wantVerdicts) == 0 {
				t.Fatalf("no verdicts from the whole file:\n%s", whole.stdout)
			}
			ends := pcapRecordEnds(t, full)
			// cut in the middle of the last record, and of a record half-way
			for _, i := range []int{len(ends) - 1, len(ends) / 2} {
				start := 24
				if i > 0 {
					start = ends[i-1]
				}
				cut := start + (ends[i]-start)/2
				p := writeTemp(t, "cut-"+name, full[:cut])
				r := runRead(t, p)
				if r.code != exitOK && r.code != exitNotOK {
					t.Fatalf("cut at %d: exit %d, want 0 or 1\nstderr:\n%s", cut, r.code, r.stderr)
				}
				var warn string
				for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
					if !strings.HasPrefix(l, "wsdiag: ") {
						t.Errorf("stderr line %q lacks the wsdiag: prefix", l)
					}
					if strings.Contains(l, "warning") && strings.Contains(l, p) {
						warn = l
					}
				}
				if warn == "" || !strings.Contains(warn, "truncated") {
					t.Fatalf("cut at %d: no one-line truncation warning naming the file:\n%s", cut, r.stderr)
				}
				got := verdictLines(r.stdout)
				if i == len(ends)-1 {
					// only the last packet is missing: every attempt is still judged
					if len(got) != len(wantVerdicts) {
						t.Fatalf("cut in the last record: %d verdicts, want %d\n%s", len(got), len(wantVerdicts), r.stdout)
					}
				}
				if len(got) == 0 {
					t.Fatalf("cut at %d (record %d of %d): no verdicts for the attempts before the cut\n%s\n%s", cut, i, len(ends), r.stdout, r.stderr)
				}
				// The first attempt was complete well before the cut.
				if got[0] != wantVerdicts[0] {
					t.Errorf("first verdict\n got %q\nwant %q", got[0], wantVerdicts[0])
				}
			}
		})
	}
}

// A pcapng with a damaged block: a warning, the verdicts before it.
func TestBadInputCorruptPcapng(t *testing.T) {
	full := readCap(t, "pcapng-mixed.pcapng")
	// find the block that starts past 3/4 of the file and damage its length
	off := 0
	for off < len(full)*3/4 {
		off += int(binary.LittleEndian.Uint32(full[off+4:]))
	}
	for _, l := range []uint32{0xfffffff0, 3, 0x00100000} {
		m := append([]byte(nil), full...)
		binary.LittleEndian.PutUint32(m[off+4:], l)
		p := writeTemp(t, "corrupt.pcapng", m)
		r := runRead(t, p)
		if r.code != exitOK && r.code != exitNotOK {
			t.Fatalf("length %#x: exit %d\n%s", l, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "wsdiag: warning: "+p+": ") {
			t.Fatalf("length %#x: no warning naming the file:\n%s", l, r.stderr)
		}
		for _, line := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
			if !strings.HasPrefix(line, "wsdiag: ") {
				t.Errorf("stderr line %q lacks the prefix", line)
			}
		}
		if len(verdictLines(r.stdout)) == 0 {
			t.Errorf("length %#x: no verdicts for the attempts before the damage:\n%s\n%s", l, r.stdout, r.stderr)
		}
	}
	// The file header itself damaged: an error, exit 2.
	m := append([]byte(nil), full...)
	binary.LittleEndian.PutUint32(m[8:], 0x11223344) // byte-order magic
	p := writeTemp(t, "badshb.pcapng", m)
	wantOneLineError(t, runRead(t, p), p, "pcapng")
}

// A gzip of a real capture (and the capture on stdin) gives the same
// verdicts as the file.
func TestBadInputGzipAndStdin(t *testing.T) {
	for _, name := range []string{"correct.pcap", "nginx-defaults.pcap", "pcapng-mixed.pcapng"} {
		t.Run(name, func(t *testing.T) {
			plain := runRead(t, filepath.Join(capDir, name))
			if len(verdictLines(plain.stdout)) == 0 {
				t.Fatalf("no verdicts:\n%s", plain.stdout)
			}
			zp := writeTemp(t, name+".gz", gz(t, readCap(t, name)))
			z := runRead(t, zp)
			if z.code != plain.code || z.stdout != plain.stdout || z.stderr != plain.stderr {
				t.Fatalf("gzip differs from plain:\nplain (exit %d):\n%s%s\ngzip (exit %d):\n%s%s", plain.code, plain.stdout, plain.stderr, z.code, z.stdout, z.stderr)
			}
			for _, in := range []string{filepath.Join(capDir, name), zp} {
				s := runStdin(t, in)
				if s.code != plain.code || s.stdout != plain.stdout {
					t.Fatalf("stdin (%s) differs from the file:\nfile (exit %d):\n%s\nstdin (exit %d):\n%s%s", in, plain.code, plain.stdout, s.code, s.stdout, s.stderr)
				}
			}
		})
	}
	t.Run("garbage on stdin", func(t *testing.T) {
		r := runStdin(t, writeTemp(t, "g", []byte("garbage")))
		wantOneLineError(t, r, "(stdin)", "not a pcap or pcapng capture")
	})
	t.Run("empty stdin", func(t *testing.T) {
		r := runStdin(t, writeTemp(t, "e", nil))
		wantOneLineError(t, r, "(stdin)", "empty file")
	})
	t.Run("truncated gzip", func(t *testing.T) {
		z := gz(t, readCap(t, "nginx-defaults.pcap"))
		p := writeTemp(t, "cut.pcap.gz", z[:len(z)*3/4])
		r := runRead(t, p)
		if r.code != exitOK && r.code != exitNotOK {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "wsdiag: warning: "+p+": ") {
			t.Fatalf("no warning naming the file:\n%s", r.stderr)
		}
	})
}

// runStdin runs "wsdiag read -" with the file as standard input. The
// command reads os.Stdin itself (run's stdin argument is not passed to
// read), so the test swaps os.Stdin.
func runStdin(t *testing.T, path string) result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	return runRead(t, "-")
}

// testdata/malformed/sniff-panic.pcap: six packets on one connection, the
// client's request in segments "G", "ET /ws HTTP/1.1\n\nX", "Y" (see
// reassembly TestSniffedBytesHoldWholeBlock). It must not crash wsdiag.
func TestBadInputCraftedSegments(t *testing.T) {
	p := filepath.Join("..", "..", "testdata", "malformed", "sniff-panic.pcap")
	var r result
	var panicked any
	func() {
		defer func() { panicked = recover() }()
		r = runRead(t, p)
	}()
	if panicked != nil {
		t.Fatalf("wsdiag read %s panics: %v (reassembly/stream.go feed, case stHeader)", p, panicked)
	}
	if r.code == exitTrouble {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
}
