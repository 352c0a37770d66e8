package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlsCase is what a wss capture must give with its key log and without.
type tlsCase struct {
	code, hop string
	backend   int // status on the upstream leg
	// with keys: decrypted, judged exactly like plaintext
	keysEvidence []string
	// without keys: judged from the upstream leg
	noKeysEvidence []string
}

// The captures come from Debian's nginx with `listen 127.0.0.1:8443 ssl`
// and a Go client writing its key log (testdata/gen/tls.sh).
var tlsCases = map[string]tlsCase{
	"tls-13-aesgcm":    {code: "ok", hop: "-", backend: 101},
	"tls-13-aes256":    {code: "ok", hop: "-", backend: 101},
	"tls-13-chacha":    {code: "ok", hop: "-", backend: 101},
	"tls-12-aesgcm":    {code: "ok", hop: "-", backend: 101},
	"tls-12-chacha":    {code: "ok", hop: "-", backend: 101},
	"tls-13-keyupdate": {code: "ok", hop: "-", backend: 101},
	"tls-13-no-upgrade": {code: "upgrade_header_dropped", hop: "proxy", backend: 400,
		keysEvidence:   []string{"client→proxy: Upgrade: websocket", "proxy→backend: no Upgrade header"},
		noKeysEvidence: []string{"yet the request carries the client's Sec-WebSocket-Key", "proxy→backend request line: GET /ws HTTP/1.0"}},
	"tls-cert-refused": {code: "tls_handshake_failed", hop: "client",
		keysEvidence:   []string{"client→proxy: alert 42 bad_certificate (fatal)"},
		noKeysEvidence: []string{"client→proxy: an encrypted alert"}},
	"tls-12-cert-refused": {code: "tls_handshake_failed", hop: "client",
		keysEvidence:   []string{"client→proxy: alert 42 bad_certificate (fatal)"},
		noKeysEvidence: []string{"client→proxy: alert 42 bad_certificate (fatal)", "ServerHello TLS 1.2, cipher 0xc02f"}},
}

func TestTLSVerdicts(t *testing.T) {
	for name, c := range tlsCases {
		t.Run(name, func(t *testing.T) {
			pcap := filepath.Join(capturesDir, name+".pcap")
			keylog := filepath.Join(capturesDir, name+".keylog")
			withKeys := []string{"--keylog", keylog, pcap}
			if st, err := os.Stat(keylog); err != nil || st.Size() == 0 {
				withKeys = []string{pcap} // the client never derived secrets
			}
			for _, keys := range []bool{true, false} {
				args := []string{pcap}
				if keys {
					args = withKeys
				}
				vs, _, code, stderr := readJSON(t, args...)
				if len(vs) != 1 {
					t.Fatalf("keys=%v: %d verdicts (stderr %q)", keys, len(vs), stderr)
				}
				v := vs[0]
				if v.Code != c.code || v.Hop != c.hop || deref(v.StatusBackend) != c.backend {
					t.Errorf("keys=%v: %s/%s backend %d, want %s/%s %d", keys, v.Code, v.Hop, deref(v.StatusBackend), c.code, c.hop, c.backend)
				}
				wantExit := exitOK
				if c.code != "ok" {
					wantExit = exitNotOK
				}
				if code != wantExit || stderr != "" {
					t.Errorf("keys=%v: exit %d, stderr %q", keys, code, stderr)
				}
				ev := strings.Join(v.Evidence, "\n")
				want := c.noKeysEvidence
				if keys {
					want = c.keysEvidence
				}
				for _, w := range want {
					if !strings.Contains(ev, w) {
						t.Errorf("keys=%v: evidence lacks %q:\n%s", keys, w, ev)
					}
				}
				if c.code == "tls_handshake_failed" {
					continue
				}
				// decrypted: the client's own status and an exact pairing;
				// opaque: judged from the upstream leg, and it says so
				switch {
				case keys && (deref(v.StatusClient) != c.backend || v.PairConfidence != "exact" || contains(v.Findings, "encrypted_leg")):
					t.Errorf("with keys: status_client %d, pairing %s, findings %v", deref(v.StatusClient), v.PairConfidence, v.Findings)
				case !keys && (v.StatusClient != nil || !contains(v.Findings, "encrypted_leg") || v.PairConfidence == "exact"):
					t.Errorf("without keys: status_client %v, pairing %s, findings %v", v.StatusClient, v.PairConfidence, v.Findings)
				}
			}
		})
	}
}

// TestTLSKeysInPcapng: secrets embedded by editcap --inject-secrets are
// used without --keylog.
func TestTLSKeysInPcapng(t *testing.T) {
	vs, _, code, stderr := readJSON(t, filepath.Join(capturesDir, "tls-13-keys-injected.pcapng"))
	if len(vs) != 1 || vs[0].Code != "ok" || deref(vs[0].StatusClient) != 101 || contains(vs[0].Findings, "encrypted_leg") || code != exitOK || stderr != "" {
		t.Fatalf("verdicts %+v exit %d stderr %q", vs, code, stderr)
	}
}

// TestTLSKeysInPcapngGzipStdin: the embedded secrets survive gzip and
// stdin (read by opening the file a second time, they were lost for a .gz
// or "-", which gave 101→- and encrypted_leg).
func TestTLSKeysInPcapngGzipStdin(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(capturesDir, "tls-13-keys-injected.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzFile := filepath.Join(t.TempDir(), "tls-13-keys-injected.pcapng.gz")
	if err := os.WriteFile(gzFile, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		arg   string
		stdin []byte
	}{
		"gzip file":  {gzFile, nil},
		"stdin":      {"-", raw},
		"gzip stdin": {"-", gz.Bytes()},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"read", "--format", "json", c.arg}, bytes.NewReader(c.stdin), &out, &errb)
			var vs []jsonVerdict
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var v jsonVerdict
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("bad JSON line %q: %v", line, err)
				}
				if v.Type == "verdict" {
					vs = append(vs, v)
				}
			}
			if len(vs) != 1 || vs[0].Code != "ok" || deref(vs[0].StatusClient) != 101 || deref(vs[0].StatusBackend) != 101 ||
				contains(vs[0].Findings, "encrypted_leg") || code != exitOK || errb.String() != "" {
				t.Fatalf("verdicts %+v exit %d stderr %q", vs, code, errb.String())
			}
		})
	}
}

// TestTLSWrongKeys: a key log for another session gives a clear warning
// and the weaker verdict, never a wrong one.
func TestTLSWrongKeys(t *testing.T) {
	vs, _, _, stderr := readJSON(t, "--keylog", filepath.Join(capturesDir, "tls-13-chacha.keylog"), filepath.Join(capturesDir, "tls-13-no-upgrade.pcap"))
	if len(vs) != 1 || vs[0].Code != "upgrade_header_dropped" || !contains(vs[0].Findings, "encrypted_leg") {
		t.Fatalf("verdicts %+v", vs)
	}
	if !strings.Contains(stderr, "could not be decrypted") || !strings.Contains(stderr, "no key for client random") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q", stderr)
	}
	// a key log that is not one
	_, _, code, stderr := readJSON(t, "--keylog", filepath.Join(capturesDir, "correct.pcap"), filepath.Join(capturesDir, "tls-13-no-upgrade.pcap"))
	if code != exitTrouble || !strings.HasPrefix(stderr, "wsdiag: --keylog ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("bad key log: exit %d stderr %q", code, stderr)
	}
}
