package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzPipeline: capture bytes through the whole read pipeline (container,
// link layers, reassembly, HTTP, frames, TLS, pairing, verdicts, JSON)
// end with exit 0, 1 or 2, never a panic, and errors on one line.
func FuzzPipeline(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(capturesDir, "*.pcap*"))
	// Seeds are the captures' first 8 KiB (handshakes and their answers):
	// the engine minimises every new input, and large ones stall it.
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f.Add(b[:min(len(b), 8<<10)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		var stderr strings.Builder
		code := run([]string{"read", "--format", "json", "--progress", "never", "--workers", "1", "-"}, bytes.NewReader(data), io.Discard, &stderr)
		if code != exitOK && code != exitNotOK && code != exitTrouble {
			t.Fatalf("exit %d", code)
		}
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if line != "" && !strings.HasPrefix(line, "wsdiag: ") {
				t.Fatalf("stray stderr line %q", line)
			}
		}
	})
}
