package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain pins the text output's zone: the goldens are in UTC, and the
// TIME column follows TZ.
func TestMain(m *testing.M) {
	time.Local = time.UTC
	os.Exit(m.Run())
}

// runArgs runs wsdiag with args and returns exit status, stdout, stderr.
func runArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// A trailing filter after "read FILE" without "--" is
// taken as a filter when it is not a file, as tcpdump takes it after -r.
func TestReadTrailingFilterWithoutDash(t *testing.T) {
	f := filepath.Join(capturesDir, "concurrent-20.pcap")
	code, out, stderr := runArgs("read", "--format", "json", f, "port 8080")
	if code != exitNotOK || !strings.Contains(out, `"by_code":{"ok":10,"upgrade_header_dropped":10}`) {
		t.Errorf("read FILE 'port 8080': exit %d, stderr %q, output %q", code, stderr, out[max(0, len(out)-200):])
	}
	// words, unquoted, as a shell passes them
	code, out, _ = runArgs("read", "--format", "json", f, "tcp", "and", "port", "9001")
	if code != exitNotOK || !strings.Contains(out, `"by_code":{"ok":10,"upgrade_header_dropped":10}`) {
		t.Errorf("read FILE tcp and port 9001: exit %d, output %q", code, out[max(0, len(out)-200):])
	}
	// a missing second capture stays an error naming it, with a hint at --
	code, _, stderr = runArgs("read", f, "nothere.pcap")
	if code != exitTrouble || !strings.Contains(stderr, "nothere.pcap") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
}

// Flags before -r, as tcpdump users type them.
func TestFlagsBeforeRead(t *testing.T) {
	f := filepath.Join(capturesDir, "correct.pcap")
	for _, args := range [][]string{
		{"-v", "-r", f},
		{"-v", "--color", "never", "-r", f},
		{"--format", "json", "--read", f},
	} {
		code, out, stderr := runArgs(args...)
		if code != exitOK || !strings.Contains(out, "3 WebSocket attempts") && !strings.Contains(out, `"attempts":3`) {
			t.Errorf("%v: exit %d, stderr %q, out %q", args, code, stderr, out)
		}
	}
	if code, _, stderr := runArgs("-v", "nothere"); code != exitTrouble || !strings.Contains(stderr, "unknown command") {
		t.Errorf("-v alone: exit %d, stderr %q", code, stderr)
	}
}

// With --upstream naming its server, a lone backend leg
// is a proxy's upstream leg whose client leg is missing: unpaired, and
// the proxy's upstream socket is not shown as the client.
func TestLoneUpstreamLegUnpaired(t *testing.T) {
	f := filepath.Join(capturesDir, "concurrent-20.pcap")
	vs, _, code, stderr := readJSON(t, "--upstream", "127.0.0.1:9001", f, "--", "tcp and port 9001")
	if code != exitNotOK || stderr != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	n := map[string]int{}
	for _, v := range vs {
		n[v.Code]++
		if v.Client != nil {
			t.Errorf("%s: client %s: the proxy's upstream socket is not a client", v.Code, *v.Client)
		}
		if v.Code == "unpaired" && (v.PairConfidence != "none" || v.Proxy == nil || deref(v.StatusBackend) != 101) {
			t.Errorf("unpaired: pairing %s proxy %v backend status %d", v.PairConfidence, v.Proxy, deref(v.StatusBackend))
		}
	}
	if fmt.Sprint(n) != "map[unpaired:10 upgrade_header_dropped:10]" {
		t.Errorf("verdicts %v, want 10 unpaired and 10 upgrade_header_dropped", n)
	}
}

// Usage errors name the bad value only.
func TestFlagErrors(t *testing.T) {
	f := filepath.Join(capturesDir, "correct.pcap")
	code, _, stderr := runArgs("read", "--max-header-bytes", "100", f)
	if code != exitTrouble || !strings.Contains(stderr, "--max-header-bytes") || strings.Contains(stderr, "--max-flows") ||
		strings.Contains(stderr, "--max-pending") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("--max-header-bytes 100: exit %d, stderr %q", code, stderr)
	}
	for _, args := range [][]string{{"live", "-c", "-1"}, {"read", "-c", "-1", f}} {
		code, _, stderr = runArgs(args...)
		if code != exitTrouble || !strings.Contains(stderr, "--count") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// read --help lists no live-only flags.
func TestReadHelpHasNoLiveFlags(t *testing.T) {
	code, out, stderr := runArgs("read", "--help")
	help := out + stderr
	if code != exitOK || !strings.Contains(help, "--workers") {
		t.Fatalf("exit %d, help %q", code, help)
	}
	for _, live := range []string{"--client-ports", "--interface", "--write", "--snaplen", "--user", "live:"} {
		if strings.Contains(help, live) {
			t.Errorf("read --help lists %s", live)
		}
	}
	_, out, stderr = runArgs("live", "--help")
	if !strings.Contains(out+stderr, "--client-ports") {
		t.Errorf("live --help lacks --client-ports")
	}
}

// One attempt is "1 WebSocket attempt".
func TestSummarySingular(t *testing.T) {
	code, out, _ := runArgs("read", "--color", "never", filepath.Join(capturesDir, "idle-timeout.pcap"))
	if code != exitNotOK || !strings.Contains(out, "\n1 WebSocket attempt: 1 idle_timeout\n") {
		t.Errorf("exit %d, output %q", code, out)
	}
}

// The TIME column follows the local zone (TZ) and says
// which zone it is when it is not UTC; JSON stays UTC.
func TestTimeColumnZone(t *testing.T) {
	saved := time.Local
	defer func() { time.Local = saved }()
	time.Local = time.FixedZone("XYZ", 2*3600)
	f := filepath.Join(capturesDir, "correct.pcap")
	_, local, _ := runArgs("read", "--color", "never", f)
	time.Local = time.UTC
	_, utc, _ := runArgs("read", "--color", "never", f)
	lines := func(s string) []string { return strings.Split(s, "\n") }
	l, u := lines(local), lines(utc)
	if !strings.HasPrefix(u[0], "TIME  ") || !strings.HasPrefix(l[0], "TIME XYZ") {
		t.Errorf("headers %q / %q", l[0], u[0])
	}
	tu, err1 := time.Parse("15:04:05.000", u[1][:12])
	tl, err2 := time.Parse("15:04:05.000", l[1][:12])
	if err1 != nil || err2 != nil || tl.Sub(tu) != 2*time.Hour && tl.Sub(tu) != -22*time.Hour {
		t.Errorf("first row UTC %q, XYZ %q", u[1], l[1])
	}
}

// --log-format json: wsdiag's own warnings and errors are JSON lines.
func TestLogFormatJSON(t *testing.T) {
	code, _, stderr := runArgs("read", "--log-format", "json", "nothere.pcap")
	var e struct{ Level, Message string }
	if code != exitTrouble || json.Unmarshal([]byte(stderr), &e) != nil || e.Level != "error" || !strings.Contains(e.Message, "nothere.pcap") {
		t.Errorf("error: exit %d, stderr %q", code, stderr)
	}
	f := filepath.Join(capturesDir, "concurrent-20.pcap")
	_, _, stderr = runArgs("read", "--log-format", "json", "--max-pending", "100", "--format", "json", f, "port", "9")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if json.Unmarshal([]byte(l), &e) != nil || e.Level == "" || e.Message == "" {
			t.Errorf("not a JSON log line: %q", l)
		}
	}
	if !strings.Contains(stderr, `"level":"info"`) || !strings.Contains(stderr, "no WebSocket handshake attempts") {
		t.Errorf("stderr %q", stderr)
	}
}

// TestJSONKeyOrder: the verdict and summary lines keep the key order
// README shows.
func TestJSONKeyOrder(t *testing.T) {
	var out bytes.Buffer
	r := newRenderer("json", &out, 0, false, false)
	r.verdict(secretVerdict())
	r.summary(newSummaryLine())
	keys := func(line string) string {
		var ks []string
		dec := json.NewDecoder(strings.NewReader(line))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			ks = append(ks, k.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		return strings.Join(ks, ",")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if got := keys(lines[0]); got != "type,ts,code,severity,hop,findings,client,proxy,backend,path,status_backend,status_client,pair_confidence,evidence,fix,legs" {
		t.Errorf("verdict keys %s", got)
	}
	if got := keys(lines[1]); got != "type,attempts,by_code,by_severity,packets,tcp_packets,connections,http_exchanges,evicted,evicted_flows,warnings" {
		t.Errorf("summary keys %s", got)
	}
	if !strings.Contains(lines[1], `"by_severity":{"ok":0,"info":0,"warn":0,"error":0}`) {
		t.Errorf("summary %s", lines[1])
	}
}

// Offline, read -c N gives N verdicts, also when the
// verdicts come from the sharded pipeline's analyzer goroutine.
func TestReadCountExact(t *testing.T) {
	for _, workers := range []string{"1", "2"} {
		vs, sum, code, stderr := readJSON(t, "-c", "3", "--workers", workers, filepath.Join(capturesDir, "concurrent-20.pcap"))
		if len(vs) != 3 || sum.Attempts != 3 || code == exitTrouble || stderr != "" {
			t.Errorf("--workers %s: %d verdicts, summary %d, exit %d, stderr %q", workers, len(vs), sum.Attempts, code, stderr)
		}
	}
}
