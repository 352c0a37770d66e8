//go:build linux && amd64

package tlsplain

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCheckNotRoot: without root the probes say why in one line, and
// Open says the same.
func TestCheckNotRoot(t *testing.T) {
	if os.Getenv("TLSPLAIN_CHECK_CHILD") != "" {
		_, err := Open(Options{})
		fmt.Print(err)
		return
	}
	if os.Geteuid() != 0 {
		err := Check()
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "needs root") {
			t.Fatalf("not root: %v", err)
		}
		return
	}
	// As root: run this test again as nobody, from a copy of the binary
	// nobody may execute.
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // (the test's own directory is 0700)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "tlsplain.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	io.Copy(dst, src)
	src.Close()
	dst.Close()
	cmd := exec.Command(bin, "-test.run", "^TestCheckNotRoot$")
	cmd.Env = append(os.Environ(), "TLSPLAIN_CHECK_CHILD=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	msg := strings.SplitN(string(out), "PASS", 2)[0]
	if msg != "TLS plaintext capture is not available: it needs root (CAP_BPF and CAP_PERFMON)" {
		t.Errorf("as nobody: %q", msg)
	}
}
