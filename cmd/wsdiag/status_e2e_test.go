//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLiveStatusLineCleared: live on a terminal draws its status line on
// stderr and prints verdicts on stdout, both the same terminal. Through
// real nginx, attempts more than a second apart (the line is drawn
// between them): each verdict, warning and the summary starts on a line
// of its own, the status line taken away first ("\r\x1b[K"), never after
// it on the same row ("… 0 kernel drops13:34:11.000 …").
func TestLiveStatusLineCleared(t *testing.T) {
	r := startRig(t)
	bin, proxyPort, backendPort := r.bin, r.proxyPort, r.backendPort

	// One terminal: stdout and stderr into the same buffer.
	var mu sync.Mutex
	var term bytes.Buffer
	tty := lockedWriter{&mu, &term}
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"live", "-i", "lo", "-Z", "root", "--progress", "always", "--duration", "6s",
			fmt.Sprintf("port %d or port %d", proxyPort, backendPort)}, nil, tty, tty)
	}()
	time.Sleep(1500 * time.Millisecond) // the status line is drawn
	for i := 0; i < 3; i++ {
		cl := exec.Command(filepath.Join(bin, "client"), "-url", fmt.Sprintf("ws://127.0.0.1:%d/ws/ok", proxyPort), "-n", "1", "-msgs", "1")
		if out, err := cl.CombinedOutput(); err != nil {
			t.Fatalf("client: %v\n%s", err, out)
		}
		time.Sleep(1200 * time.Millisecond)
	}
	<-exit
	mu.Lock()
	out := term.String()
	mu.Unlock()
	if n := strings.Count(out, "/ws/ok"); n != 3 || !strings.Contains(out, "kernel drops") {
		t.Fatalf("%d verdicts, status line drawn: %v\n%q", n, strings.Contains(out, "kernel drops"), out)
	}
	if m := regexp.MustCompile(`kernel drops[^\r]`).FindString(out); m != "" {
		t.Errorf("something printed on the status line's row: %q in\n%q", m, out)
	}
}
