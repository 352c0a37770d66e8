package tlsrec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzKeyLog: any bytes give a key log or an error naming a line, never a
// panic; what parses can be merged.
func FuzzKeyLog(f *testing.F) {
	logs, _ := filepath.Glob("../../testdata/captures/*.keylog")
	for _, p := range logs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("# comment\nCLIENT_RANDOM 00 11\n"))
	f.Add([]byte("CLIENT_TRAFFIC_SECRET_0 " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		k, err := ParseKeyLog(bytes.NewReader(data))
		if err != nil {
			if !strings.Contains(err.Error(), "line") {
				t.Fatalf("error names no line: %v", err)
			}
			return
		}
		all := NewKeyLog()
		all.Add(k)
		if all.Len() != k.Len() {
			t.Fatalf("merge: %d then %d", k.Len(), all.Len())
		}
	})
}
