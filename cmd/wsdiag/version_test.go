package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &out); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	// a test binary has no module version and, built with -buildvcs=false
	// or not, may lack the revision: the fallbacks must show
	if s := out.String(); !strings.HasPrefix(s, "wsdiag ") || !strings.Contains(s, "(revision ") {
		t.Errorf("wsdiag version printed %q", s)
	}
	version, revision = "1.2.3", "abcdef012345"
	defer func() { version, revision = "", "" }()
	out.Reset()
	run([]string{"--version"}, nil, &out, &out)
	if s := out.String(); s != "wsdiag 1.2.3 (revision abcdef012345)\n" {
		t.Errorf("with -X main.version and main.revision: %q", s)
	}
}

// TestLiveMetricsBadAddress: a wrong --metrics address is a one-line error
// and exit 2 before any capture starts (so it needs no root).
func TestLiveMetricsBadAddress(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"live", "--metrics", "127.0.0.1:notaport"}, nil, &out, &errb)
	if code != exitTrouble {
		t.Errorf("exit %d, want 2", code)
	}
	if s := errb.String(); !strings.HasPrefix(s, "wsdiag: --metrics: ") || strings.Count(s, "\n") != 1 {
		t.Errorf("stderr %q, want one line naming --metrics", s)
	}
}
