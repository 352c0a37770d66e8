//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadStopsOnSignal: SIGINT stops read where it is, with the verdicts
// decided and the summary, though its input (a pipe left open) has not
// ended. The test binary runs wsdiag in a child process of its own.
func TestReadStopsOnSignal(t *testing.T) {
	if os.Getenv("WSDIAG_TEST_CHILD") == "1" {
		os.Exit(run([]string{"read", "--format", "json", "--progress", "never", "--workers", "1", "-"}, os.Stdin, os.Stdout, os.Stderr))
	}
	pcap, err := os.ReadFile(filepath.Join(capturesDir, "concurrent-20.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadStopsOnSignal$")
	cmd.Env = append(os.Environ(), "WSDIAG_TEST_CHILD=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	half := len(pcap) / 2
	in.Write(pcap[:half])
	time.Sleep(time.Second) // the child is reading, and waits for more
	cmd.Process.Signal(syscall.SIGINT)
	in.Write(pcap[half:])
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// It stops at the next packet: more packets keep coming (the capture's
	// records again) and the pipe stays open.
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-done:
		case <-time.After(100 * time.Millisecond):
			if time.Now().Before(deadline) {
				in.Write(pcap[24:]) // a pcap's records, after its 24-byte header
				continue
			}
			cmd.Process.Kill()
			t.Fatalf("read still runs 10 s after SIGINT; stderr:\n%s", errb.String())
		}
		break
	}
	if code := cmd.ProcessState.ExitCode(); code != exitOK && code != exitNotOK {
		t.Errorf("exit %d (%s), want 0 or 1; stderr:\n%s", code, cmd.ProcessState, errb.String())
	}
	o := decodeOutput(t, out.Bytes())
	if len(o.types) == 0 || o.types[len(o.types)-1] != "summary" || o.summary.Attempts != uint64(len(o.verdicts)) {
		t.Errorf("output does not end with its summary: %d verdicts, summary %+v\n%s", len(o.verdicts), o.summary, strings.TrimSpace(out.String()))
	}
}
