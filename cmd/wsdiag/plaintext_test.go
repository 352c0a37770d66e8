package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// plaintextKeyed maps tcpdump's recording of a --tls-plaintext run (read
// with the clients' key log) to live's -w file of the same run, which
// holds the proxy's plaintext (testdata/gen/tlsplain.sh).
var plaintextKeyed = map[string]string{
	"tls-plaintext-nginx-tcpdump":   "tls-plaintext-nginx.pcapng",
	"tls-plaintext-haproxy-tcpdump": "tls-plaintext-haproxy.pcapng",
	"tls-plaintext-apache-tcpdump":  "tls-plaintext-apache.pcapng",
}

// plaintextWants are what the --tls-plaintext captures hold (each run's
// two files alike); TestPlaintextAsKeyLogFiles holds the rest.
var plaintextWants = map[string][]want{
	"tls-plaintext-nginx": {{code: "ok", hop: "-", n: 2}, {code: "upgrade_header_dropped", hop: "proxy", n: 2}, {code: "proxy_rejected", hop: "proxy", n: 2},
		{code: "headers_too_large", hop: "proxy", n: 1}, {code: "idle_timeout", hop: "session", n: 1}},
	"tls-plaintext-haproxy": {{code: "ok", hop: "-", n: 2}, {code: "proxy_rejected", hop: "proxy", n: 1}},
	"tls-plaintext-apache":  {{code: "ok", hop: "-", n: 1}, {code: "upgrade_header_dropped", hop: "proxy", n: 1}, {code: "proxy_rejected", hop: "proxy", n: 2}},
}

func init() {
	plaintextWants["tls-plaintext-nginx-tcpdump"] = plaintextWants["tls-plaintext-nginx"]
	plaintextWants["tls-plaintext-haproxy-tcpdump"] = plaintextWants["tls-plaintext-haproxy"]
	plaintextWants["tls-plaintext-apache-tcpdump"] = plaintextWants["tls-plaintext-apache"]
}

// TestPlaintextAsKeyLogFiles: the file live --tls-plaintext wrote, read
// without keys, judges every attempt as tcpdump's recording of the same
// run read with the clients' key log (times and durations aside; the
// session open before the attach is seen from its middle, so code and hop
// only); and the recording without keys says how many TLS connections the
// proxy answered itself, unread.
func TestPlaintextAsKeyLogFiles(t *testing.T) {
	for keyed, plain := range plaintextKeyed {
		t.Run(keyed, func(t *testing.T) {
			kv, kerr := readAll(t, "--workers", "1", "--keylog", filepath.Join(capturesDir, keyed+".keylog"), filepath.Join(capturesDir, keyed+".pcap"))
			pv, perr := readAll(t, "--workers", "1", filepath.Join(capturesDir, plain))
			if kerr != "" || perr != "" {
				t.Errorf("stderr: %q %q", kerr, perr)
			}
			partial := map[string]string{}
			for _, v := range pv {
				for _, f := range v.Findings {
					if f == "handshake_not_captured" {
						partial[deref2(v.Client)] = "open before the attach"
					}
				}
				for _, e := range v.Evidence {
					if strings.Contains(e, "refused it before reading the rest") {
						partial[deref2(v.Client)] = "refused before nginx read it all"
					}
				}
			}
			comparePlain(t, keyed, pv, kv, pv, partial)
			_, sum, _, _ := readJSON(t, "--all", filepath.Join(capturesDir, keyed+".pcap"))
			want := map[string]uint64{"tls-plaintext-nginx-tcpdump": 5, "tls-plaintext-haproxy-tcpdump": 2, "tls-plaintext-apache-tcpdump": 2}[keyed]
			if sum.TLSSelfAnswered != want {
				t.Errorf("without keys: %d TLS connections answered by the proxy itself, want %d", sum.TLSSelfAnswered, want)
			}
		})
	}
}

// The times in evidence ("at 17:36:14.385") and the durations measured
// ("for 3.00s") come from the proxy's calls in one run and from the
// packets in the other: they are compared without their digits.
var (
	clockRE    = regexp.MustCompile(`\d\d:\d\d:\d\d\.\d{3}`)
	durationRE = regexp.MustCompile(`\d+(\.\d+)?(s|ms|µs)\b`)
)

// plainDescribe is what must agree between two runs.
func plainDescribe(v VerdictLine) string {
	ev := make([]string, len(v.Evidence))
	for i, e := range v.Evidence {
		ev[i] = durationRE.ReplaceAllString(clockRE.ReplaceAllString(e, "hh:mm:ss.mmm"), "D")
	}
	return fmt.Sprintf("%s %s %s hop %s status client %d backend %d pairing %s\n  findings %v\n  evidence:\n    %s\n  fix: %s",
		deref2(v.Client), v.Path, v.Code, v.Hop, deref(v.StatusClient), deref(v.StatusBackend), v.PairConfidence, v.Findings,
		strings.Join(ev, "\n    "), durationRE.ReplaceAllString(v.Fix, "D"))
}

// byClient describes verdicts by the client's address (a second attempt
// on one connection, HTTP/2, gets a "+").
func byClient(vs []VerdictLine) map[string]string {
	m := map[string]string{}
	for _, v := range vs {
		k := deref2(v.Client)
		for m[k] != "" {
			k += "+"
		}
		m[k] = plainDescribe(v)
	}
	return m
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// comparePlain checks live's verdicts against the keyed read's (and the
// -w file's against live's). The attempts in partial (by client address,
// with the reason) cannot agree in full: code and hop must, and the
// difference is logged.
func comparePlain(t *testing.T, name string, live, keyed, reread []VerdictLine, partial map[string]string) {
	t.Helper()
	lv, kv, rv := byClient(live), byClient(keyed), byClient(reread)
	if dir := os.Getenv("WSDIAG_PLAINTEXT_TABLE"); dir != "" {
		var b strings.Builder
		for _, k := range keysOf(kv) {
			fmt.Fprintf(&b, "%s\n  live --tls-plaintext: %s\n  read --keylog:        %s\n", k, strings.SplitN(lv[k], "\n", 2)[0], strings.SplitN(kv[k], "\n", 2)[0])
		}
		os.WriteFile(filepath.Join(dir, name+".txt"), []byte(b.String()), 0o644)
	}
	if len(kv) == 0 {
		t.Fatal("no verdicts from the keyed read")
	}
	codeHop := func(s string) string {
		f := strings.Fields(strings.SplitN(s, "\n", 2)[0])
		if i := slices.Index(f, "hop"); i > 1 && i+1 < len(f) {
			return f[i-1] + " " + f[i+1]
		}
		return "?"
	}
	for _, k := range keysOf(kv) {
		l, ok := lv[k]
		switch {
		case !ok:
			t.Errorf("%s: no live verdict; keyed:\n%s", k, kv[k])
		case partial[k] != "":
			if codeHop(l) != codeHop(kv[k]) {
				t.Errorf("%s (%s):\nlive:\n%s\nkeyed:\n%s", k, partial[k], l, kv[k])
			} else {
				t.Logf("%s (%s): the same code and hop; live:\n%s\nkeyed:\n%s", k, partial[k], l, kv[k])
			}
		case l != kv[k]:
			t.Errorf("%s:\nlive:\n%s\nkeyed:\n%s", k, l, kv[k])
		}
	}
	for _, k := range keysOf(lv) {
		if _, ok := kv[k]; !ok {
			t.Errorf("%s: live verdict without a keyed one:\n%s", k, lv[k])
		}
	}
	for _, k := range keysOf(lv) {
		if rv[k] != lv[k] {
			t.Errorf("%s: the -w file read back:\n%s\nlive:\n%s", k, rv[k], lv[k])
		}
	}
}

// readAll reads with --all: the verdicts and the plain exchanges, and
// stderr.
func readAll(t *testing.T, args ...string) ([]VerdictLine, string) {
	t.Helper()
	var out, errb bytes.Buffer
	run(append([]string{"read", "--all", "--format", "json"}, args...), nil, &out, &errb)
	o := decodeOutput(t, out.Bytes())
	return append(o.verdicts, o.exchanges...), errb.String()
}

// TestPlaintextSentence: with --tls-plaintext the summary says what the
// probes did even when nothing was left out or lost.
func TestPlaintextSentence(t *testing.T) {
	s := newSummaryLine()
	s.TLSPlaintext = &PlaintextSummary{Processes: 3, Connections: 12, MidStream: 1, CostPct: 3.14, PeakPct: 7, CallUs: 15}
	n := s.notes()
	want := "--tls-plaintext: 12 TLS connections captured in 3 processes, 0 left out by sampling, 0 plaintext records lost for a full ring, 1 read from the middle (open before the attach); the probes' estimated cost 3.1 % of a CPU (peak 7.0 %, 15 µs a captured call)"
	if len(n) != 1 || n[0] != want {
		t.Errorf("notes %q", n)
	}
	s.TLSPlaintext.Skipped, s.TLSPlaintext.RingDrops, s.TLSPlaintext.Pauses, s.TLSPlaintext.PausedS = 40, 1, 2, 15
	if n := s.notes(); !strings.Contains(n[0], "40 left out by sampling, 1 plaintext record lost") || !strings.HasSuffix(n[0], "off 15 s in 2 pauses") {
		t.Errorf("notes %q", n)
	}
}
