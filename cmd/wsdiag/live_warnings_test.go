//go:build linux

package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLiveWarnsAsRead: live gives the warnings read gives on the same
// packets (one runner says them for both): TLS it could not decrypt with
// the key log given, header blocks the snap length cut, exchanges decided
// unpaired past --max-pending. The capture live wrote (-w) is read back
// with the same flags for the comparison.
func TestLiveWarnsAsRead(t *testing.T) {
	requireE2E(t)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer secure.Close()
	dir := t.TempDir()
	keys := filepath.Join(dir, "other.keylog") // another connection's secret
	if err := os.WriteFile(keys, []byte("CLIENT_RANDOM "+strings.Repeat("ab", 32)+" "+strings.Repeat("cd", 48)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "live.pcapng")
	flags := []string{"--keylog", keys, "--max-pending", "100", "--format", "json"}
	expr := fmt.Sprintf("port %s or port %s", portOf(plain.URL), portOf(secure.URL))
	l := startLive(append(flags, "-s", "400", "-w", file, "--duration", "4s", expr)...)
	// X25519 alone keeps the ClientHello, and its client random, within
	// the snap length
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519}}}}
	pad := strings.Repeat("x", 600) // past the snap length: the header block is cut
	for i := 0; i < 150; i++ {
		req, _ := http.NewRequest("GET", plain.URL+"/", nil)
		req.Header.Set("X-Pad", pad)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if resp, err := client.Get(secure.URL + "/"); err == nil {
		resp.Body.Close()
	}
	if code := l.wait(t, 15*time.Second); code == exitTrouble {
		t.Fatalf("live: exit %d; stderr:\n%s", code, l.stderr.String())
	}
	var out, errb strings.Builder
	run(append([]string{"read", "--progress", "never", file}, flags...), nil, &out, &errb)
	for _, want := range []string{"TLS connections could not be decrypted", "the capture kept only the first 400 bytes of each packet", "--max-pending=100"} {
		if !strings.Contains(l.stderr.String(), want) || !strings.Contains(errb.String(), want) {
			t.Errorf("warning %q: live said\n%s\nread said\n%s", want, l.stderr.String(), errb.String())
		}
	}
}

func portOf(url string) string { return url[strings.LastIndexByte(url, ':')+1:] }
