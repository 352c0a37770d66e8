package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// captureFlags is how every capture in testdata/captures is read: with
// the key log, the nginx configuration and the error log beside it, when
// there are.
func captureFlags(t *testing.T) map[string][]string {
	t.Helper()
	files, err := os.ReadDir(capturesDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, f := range files {
		name := f.Name()
		base, _, ok := strings.Cut(name, ".pcap")
		if !ok || !(strings.HasSuffix(name, ".pcap") || strings.HasSuffix(name, ".pcapng") || strings.HasSuffix(name, ".pcap.gz")) {
			continue
		}
		var args []string
		for _, x := range []struct{ flag, ext string }{{"--keylog", ".keylog"}, {"--nginx-config", ".nginx-T.txt"}, {"--error-log", ".nginx-error.log"}} {
			if st, err := os.Stat(filepath.Join(capturesDir, base+x.ext)); err == nil && st.Size() > 0 {
				args = append(args, x.flag, filepath.Join(capturesDir, base+x.ext))
			}
		}
		out[name] = append(args, filepath.Join(capturesDir, name))
	}
	return out
}

// TestWorkersSameOutput: read gives the same output, byte for byte, with
// 1, 2 and 4 workers on every capture: verdicts, their order, warnings and
// summary (the pipeline applies every worker's events in the order one
// worker gives, and decides at the same packets).
func TestWorkersSameOutput(t *testing.T) {
	caps := captureFlags(t)
	if len(caps) < 50 {
		t.Fatalf("only %d captures", len(caps))
	}
	for name, args := range caps {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var first string
			for _, w := range []string{"1", "2", "4"} {
				var out, errb bytes.Buffer
				run(append([]string{"read", "--format", "json", "-vv", "--progress", "never", "--workers", w}, args...), nil, &out, &errb)
				got := out.String() + "\nstderr:\n" + errb.String()
				if w == "1" {
					first = got
					continue
				}
				if got != first {
					t.Errorf("--workers %s differs from --workers 1:\n%s", w, firstDiff(first, got))
				}
			}
		})
	}
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n- " + x + "\n+ " + y
		}
	}
	return ""
}
