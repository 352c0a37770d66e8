package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsdiag/wsdiag/capture"
)

// Captures started while WebSocket sessions were open
// (testdata/gen/midsession.sh, and production.sh for the first three):
// the sessions' handshakes are not in the files. Expectations come from
// what each capture shows on the wire (testdata/gen/README.md).
var midsessionCases = map[string][]want{
	// nginx proxy_read_timeout 5s: 3 sessions cut (FIN both legs, no close
	// frame) 5 s after their last frames; one whole attempt besides
	"midsession-nginx-timeout.pcap": {
		{code: "idle_timeout", hop: "session", n: 3, conf: "high", proxy: "127.0.0.1:8101",
			evidence: []string{"no frame in either direction for 5.0", "the proxy closed the backend leg (FIN)", "and the client leg (FIN)",
				"no handshake in the capture", "2 masked from the client, 2 from the server", "2 client frames with the same masking keys"},
			findings: []string{"handshake_not_captured"},
			errorLog: "upstream timed out (110: Connection timed out) while proxying upgraded connection (logged at info level)",
			fix:      "proxy_read_timeout 1h"},
		{code: "ok", hop: "-", n: 1, backend: 101, client: 101, conf: "exact"}},
	// haproxy timeout tunnel 5s: FIN to the client, RST to the backend
	"midsession-haproxy-tunnel.pcap": {
		{code: "idle_timeout", hop: "session", n: 3, conf: "high", proxy: "127.0.0.1:8103",
			evidence: []string{"no frame in either direction for 5.0", "the proxy closed the backend leg (RST)", "and the client leg (FIN)"},
			findings: []string{"handshake_not_captured"}, fix: "idle timeout"},
		{code: "ok", hop: "-", n: 1, backend: 101, client: 101, conf: "exact"}},
	// close 1000 both ways; no HTTP in the file at all
	"midsession-nginx-normal.pcap": {
		{code: "ok", hop: "-", n: 3, conf: "high", proxy: "127.0.0.1:8101",
			evidence: []string{`client→proxy: client sent close 1000 "bye"`, "4 client frames with the same masking keys"},
			findings: []string{"handshake_not_captured", "closed_by_client"}, fix: "began before the capture"}},
	// haproxy → nginx → backend: three legs a session
	"midsession-chain.pcap": {
		{code: "ok", hop: "-", n: 3, conf: "high", proxy: "127.0.0.1:8705",
			evidence: []string{`client sent close 1000 "bye"`, "proxy1→proxy2 127.0.0.1:", "proxy2→backend 127.0.0.1:"},
			findings: []string{"handshake_not_captured"}, fix: "began before the capture"}},
	// a 200 000-byte message: the backend's close 1009, then its RST
	"midsession-nginx-1009.pcap": {
		{code: "message_too_big", hop: "session", n: 3, conf: "high", proxy: "127.0.0.1:8701",
			evidence: []string{"backend→proxy: backend sent close 1009", "after a 195.3 KiB frame from the proxy"},
			findings: []string{"handshake_not_captured"}, fix: "SetReadLimit"}},
}

// midsessionLegs is how many legs each session of a capture has.
var midsessionLegs = map[string]int{"midsession-chain.pcap": 3}

func init() {
	for k, v := range midsessionCases {
		goldenCases[k] = v
	}
	sessionCases["midsession-binary"] = true // TestMidsessionNotWebSocket
}

// TestMidsessionPairing: each session's legs are paired with the right
// upstream legs, one to one. The truth comes from the capture's bytes,
// not from wsdiag's prints: a client leg's first captured client→server
// segment reappears in its upstream leg's client→server bytes.
func TestMidsessionPairing(t *testing.T) {
	for name := range midsessionCases {
		path := filepath.Join(capturesDir, name)
		first, all := clientBytes(t, path)
		var out bytes.Buffer
		run([]string{"read", "--format", "json", "--workers", "1", path}, nil, &out, io.Discard)
		used := map[string]bool{}
		sessions := 0
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var v VerdictLine
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			if v.Type != "verdict" || !contains(v.Findings, "handshake_not_captured") {
				continue
			}
			sessions++
			want := midsessionLegs[name]
			if want == 0 {
				want = 2
			}
			if len(v.Legs) != want {
				t.Errorf("%s: %d legs, want %d: %+v", name, len(v.Legs), want, v.Legs)
				continue
			}
			for i, l := range v.Legs {
				if used[l.Client] {
					t.Errorf("%s: leg %s in two verdicts", name, l.Client)
				}
				used[l.Client] = true
				if i == 0 {
					continue
				}
				// the previous leg's first client frame, relayed on this one
				f := first[v.Legs[i-1].Client+">"+v.Legs[i-1].Server]
				if len(f) == 0 || !bytes.Contains(all[l.Client+">"+l.Server], f) {
					t.Errorf("%s: %s→%s is paired with %s→%s, which does not carry its client bytes", name, v.Legs[i-1].Client, v.Legs[i-1].Server, l.Client, l.Server)
				}
			}
		}
		if sessions == 0 {
			t.Errorf("%s: no session without its handshake", name)
		}
	}
}

// clientBytes returns, by "client>server", the first client→server
// payload of 6 bytes or more of each connection, and all of them joined.
// The client is the end that sent masked frames: on these captures, the
// end whose port is not a listening one (8xxx/9xxx).
func clientBytes(t *testing.T, path string) (first, all map[string][]byte) {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first, all = map[string][]byte{}, map[string][]byte{}
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return first, all
		}
		if err != nil {
			t.Fatal(err)
		}
		dport := uint16(p.TCP.DstPort)
		if len(p.TCP.Payload) < 6 || dport < 8000 || dport >= 10000 {
			continue
		}
		src, _ := netip.AddrFromSlice(p.Net.Src().Raw())
		dst, _ := netip.AddrFromSlice(p.Net.Dst().Raw())
		k := netip.AddrPortFrom(src, uint16(p.TCP.SrcPort)).String() + ">" + netip.AddrPortFrom(dst, dport).String()
		if first[k] == nil {
			first[k] = append([]byte(nil), p.TCP.Payload...)
		}
		all[k] = append(all[k], p.TCP.Payload...)
	}
}

// TestMidsessionNotWebSocket: random bytes both ways (through haproxy in
// tcp mode and direct), a download's body through nginx and a TLS
// download, all caught mid-stream, are no WebSocket sessions: no verdict,
// exit 0, and wsdiag says it found no attempt.
func TestMidsessionNotWebSocket(t *testing.T) {
	vs, sum, code, stderr := readJSON(t, filepath.Join(capturesDir, "midsession-binary.pcap"))
	if len(vs) != 0 || sum.Attempts != 0 || code != exitOK || !strings.Contains(stderr, "no WebSocket handshake attempts found") {
		t.Errorf("%d verdicts (%v), exit %d, stderr %q", len(vs), codesOf(vs), code, stderr)
	}
}
