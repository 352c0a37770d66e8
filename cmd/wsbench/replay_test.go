package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayNeedsTcpreplay: replay.sh without tcpreplay stops with a
// message and a failing status, not a table of empty rows. Its PATH holds
// the few tools it needs and stubs for the ones that would act (ip, go,
// tcpdump), so nothing is built and no namespace is made.
func TestReplayNeedsTcpreplay(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"bash", "mktemp", "dirname", "grep", "wc", "sleep", "cat", "rm"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, stub := range []string{"ip", "go", "tcpdump"} {
		if err := os.WriteFile(filepath.Join(bin, stub), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(bin, "bash"), "replay.sh", "../../testdata/captures/correct.pcap", "1000")
	cmd.Env = []string{"PATH=" + bin}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "tcpreplay") {
		t.Errorf("replay.sh without tcpreplay: err %v, output:\n%s", err, out)
	}
}
