package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The tls-conc30-* captures (testdata/gen/tlsconc.sh): 30 wss clients at
// once, attempt i from 127.0.0.(10+i); attempts 3, 6, … 30 go to
// /ws/broken (proxy_pass only: no Upgrade, no X-Forwarded-For), the
// others to /ws/ok (correct, X-Forwarded-For set). Five captures of the
// same traffic through nginx, one through haproxy, one with frames of
// per-client sizes, one in TLS 1.2, one with two nginx workers.
var tlsConcCaptures = []string{"tls-conc30-1", "tls-conc30-2", "tls-conc30-3", "tls-conc30-4", "tls-conc30-5", "tls-conc30-haproxy", "tls-conc30-sizes", "tls-conc30-tls12", "tls-conc30-2workers"}

// concVerdict is a verdict as pairing is judged on it.
type concVerdict VerdictLine

// upstreamSocket is the proxy's own end of the attempt's last leg: it
// names the upstream leg whatever the pairing.
func (v concVerdict) upstreamSocket() string {
	if len(v.Legs) == 0 {
		return ""
	}
	return v.Legs[len(v.Legs)-1].Client
}

func readConc(t *testing.T, args ...string) ([]concVerdict, string) {
	t.Helper()
	var out, errb bytes.Buffer
	run(append([]string{"read", "--format", "json"}, args...), nil, &out, &errb)
	raw := out.String()
	var vs []concVerdict
	for _, v := range decodeOutput(t, out.Bytes()).verdicts {
		vs = append(vs, concVerdict(v))
	}
	return vs, raw
}

// attemptOf returns i for a client address 127.0.0.(10+i), 1 ≤ i ≤ 30.
func attemptOf(client string) int {
	ap, err := netip.ParseAddrPort(client)
	if err != nil {
		return 0
	}
	b := ap.Addr().As4()
	if b[0] != 127 || b[3] < 11 || b[3] > 40 {
		return 0
	}
	return int(b[3]) - 10
}

// TestTLSConcurrentPairing: without keys, every upstream leg is paired
// with the TLS connection the proxy made it for. The truth comes from the
// same capture read with the client's key log (pairing by
// Sec-WebSocket-Key, exact); the test then checks the keyless pairing
// against it, against X-Forwarded-For (client i is 127.0.0.(10+i)), and
// that the five captures of the same traffic give the same result.
func TestTLSConcurrentPairing(t *testing.T) {
	var first string
	for _, name := range tlsConcCaptures {
		t.Run(name, func(t *testing.T) {
			pcap := filepath.Join(capturesDir, name+".pcap")
			truth := map[string]string{}
			withKeys, _ := readConc(t, "--keylog", filepath.Join(capturesDir, name+".keylog"), pcap)
			for _, v := range withKeys {
				if v.PairConfidence != "exact" || v.Client == nil {
					t.Fatalf("with keys: %s pairing %s", v.upstreamSocket(), v.PairConfidence)
				}
				truth[v.upstreamSocket()] = *v.Client
			}
			if len(truth) != 30 {
				t.Fatalf("with keys: %d attempts, want 30", len(truth))
			}
			vs, raw := readConc(t, pcap)
			if _, again := readConc(t, pcap); again != raw {
				t.Errorf("two reads of the same file differ")
			}
			right, unpaired, xffWrong := 0, 0, 0
			var sig []string
			for _, v := range vs {
				up := v.upstreamSocket()
				switch {
				case v.Client == nil || *v.Client == up:
					unpaired++
					t.Errorf("%s %s: unpaired (client %v)", up, v.Path, v.Client)
					continue
				case truth[up] == *v.Client:
					right++
				default:
					t.Errorf("%s %s: paired with %s, the proxy made it for %s (confidence %s)", up, v.Path, *v.Client, truth[up], v.PairConfidence)
				}
				i := attemptOf(*v.Client)
				broken := i%3 == 0
				if i == 0 || broken != (v.Path == "/ws/broken") {
					xffWrong++
				}
				if !broken && v.PairConfidence != "high" {
					t.Errorf("%s: X-Forwarded-For names the client, yet confidence %s", *v.Client, v.PairConfidence)
				}
				if v.PairConfidence == "none" || v.PairConfidence == "" {
					t.Errorf("%s: confidence %q", *v.Client, v.PairConfidence)
				}
				if wantCode := map[bool]string{false: "ok/-", true: "upgrade_header_dropped/proxy"}[v.Path == "/ws/broken"]; v.Code+"/"+v.Hop != wantCode {
					t.Errorf("%s %s: %s/%s, want %s", *v.Client, v.Path, v.Code, v.Hop, wantCode)
				}
				sig = append(sig, fmt.Sprintf("%d %s %s", i, v.Path, v.Code))
			}
			t.Logf("%s: %d/%d paired right, %d unpaired, %d contradict X-Forwarded-For or the path", name, right, len(vs), unpaired, xffWrong)
			if len(vs) != 30 || right != 30 || xffWrong != 0 {
				t.Errorf("%d verdicts, %d right, %d against X-Forwarded-For/path; want 30, 30, 0", len(vs), right, xffWrong)
			}
			sort.Strings(sig)
			s := strings.Join(sig, "\n")
			if first == "" {
				first = s
			} else if s != first {
				t.Errorf("pairing differs from %s's:\n%s", tlsConcCaptures[0], s)
			}
		})
	}
}
