package main

import (
	"path/filepath"
	"testing"
)

// TestHostRewrittenWhereItMatters: nginx's default Host (the upstream's
// address, or $host without the port) differs from the client's on every
// attempt of these captures; host_rewritten and its two Host lines are a
// finding only where the backend did not accept the upgrade (it may be
// why: an Origin check, another virtual host), and everywhere with -vv.
func TestHostRewrittenWhereItMatters(t *testing.T) {
	for _, c := range []struct {
		capture string
		vv      bool
		want    bool
	}{
		{"correct.pcap", false, false},         // 101 on every leg
		{"correct.pcap", true, true},           // -vv: everything
		{"backend-timeout.pcap", false, false}, // the backend never answered
		{"nginx-defaults.pcap", false, true},   // the backend's 400
		{"origin-check.pcap", false, true},     // the backend's 403: the likely cause
	} {
		args := []string{filepath.Join(capturesDir, c.capture)}
		if c.vv {
			args = append([]string{"-vv"}, args...)
		}
		vs, _, _, _ := readJSON(t, args...)
		if len(vs) == 0 {
			t.Fatalf("%s: no verdicts", c.capture)
		}
		for _, v := range vs {
			if got := contains(v.Findings, "host_rewritten"); got != c.want {
				t.Errorf("%s (-vv %v): %s findings %v, host_rewritten %v, want %v", c.capture, c.vv, v.Code, v.Findings, got, c.want)
			}
		}
	}
}
