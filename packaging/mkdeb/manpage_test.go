package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestManPage builds wsdiag, makes its man page and has groff set it 80
// columns wide, as man does on an 80-column terminal: no line is wider,
// groff has nothing to warn about, and each subcommand has its section
// with its flags (probe's too).
func TestManPage(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("groff is not installed")
		}
		t.Skip("groff is not installed")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "wsdiag")
	build := exec.Command("go", "build", "-o", bin, "./cmd/wsdiag")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	z, err := manPage(bin, "1.2.3", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	src, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{".SH SYNOPSIS", ".SH READ", ".SH LIVE", ".SH PROBE", ".SH VERDICT CODES"} {
		if !bytes.Contains(src, []byte("\n"+sec+"\n")) {
			t.Errorf("no %s section", sec)
		}
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-rLL=80n", "-ww", "-P-cbou")
	cmd.Stdin = bytes.NewReader(src)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, stderr.String())
	}
	page := out.String()
	for i, l := range strings.Split(page, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, l)
		}
	}
	// Each section's own flags, as the reader sees them.
	probe := page[strings.Index(page, "\nPROBE\n"):strings.Index(page, "\nVERDICT CODES\n")]
	for _, want := range []string{"wsdiag probe [flags] ws://HOST[:PORT]/PATH", "--idle duration", "--size int", "--count int",
		"--no-capture", "--subprotocol string", "--header stringArray", "-i, --interface string"} {
		if !strings.Contains(probe, want) {
			t.Errorf("PROBE lacks %q:\n%s", want, probe)
		}
	}
	for sec, want := range map[string]string{"READ": "-r, --read stringArray", "LIVE": "-D, --list-interfaces", "VERDICT CODES": "upgrade_header_dropped"} {
		if i := strings.Index(page, "\n"+sec+"\n"); i < 0 || !strings.Contains(page[i:], want) {
			t.Errorf("%s lacks %q", sec, want)
		}
	}
	if !strings.Contains(page, "sudo wsdiag live [flags] [EXPR]\n") {
		t.Errorf("the synopsis does not set the live command on its own:\n%s", page[:strings.Index(page, "\nDESCRIPTION\n")])
	}
}
