package tlsrec

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

type e2eCase struct {
	name       string
	minV, maxV uint16
	suites     []uint16
	wantCipher uint16
}

var e2eCases = []e2eCase{
	{"tls13-aes128gcm", tls.VersionTLS13, tls.VersionTLS13, nil, tls.TLS_AES_128_GCM_SHA256},
	{"tls12-ecdhe-ecdsa-aes128gcm", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, 0xc02b},
	{"tls12-ecdhe-rsa-aes128gcm", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, 0xc02f},
	{"tls12-ecdhe-rsa-aes256gcm-sha384", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}, 0xc030},
	{"tls12-ecdhe-ecdsa-aes256gcm-sha384", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, 0xc02c},
	{"tls12-ecdhe-rsa-chacha20", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, 0xcca8},
	{"tls12-ecdhe-ecdsa-chacha20", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, 0xcca9},
}

func TestTLSEndToEnd(t *testing.T) {
	for _, tc := range e2eCases {
		t.Run(tc.name, func(t *testing.T) { checkE2E(t, tc) })
	}
}

// TestTLSEndToEndChaCha13 covers TLS_CHACHA20_POLY1305_SHA256 in TLS 1.3:
// crypto/tls has no knob for TLS 1.3 suites, but a client on a CPU without
// AES-GCM hardware prefers ChaCha20, so the test runs itself again with
// GODEBUG=cpu.aes=off (which hides AES-NI from the runtime).
func TestTLSEndToEndChaCha13(t *testing.T) {
	tc := e2eCase{"tls13-chacha20", tls.VersionTLS13, tls.VersionTLS13, nil, tls.TLS_CHACHA20_POLY1305_SHA256}
	if os.Getenv("WSDIAG_TLS_CHACHA_CHILD") == "1" {
		checkE2E(t, tc)
		return
	}
	if testing.Short() {
		t.Skip("runs a child test process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTLSEndToEndChaCha13$", "-test.v")
	cmd.Env = append(os.Environ(), "WSDIAG_TLS_CHACHA_CHILD=1", "GODEBUG=cpu.aes=off")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestTLSEndToEndChaCha13")) {
		t.Fatalf("child test with GODEBUG=cpu.aes=off: %v\n%s", err, out)
	}
}

func checkE2E(t *testing.T, tc e2eCase) {
	s := runTLSSession(t, tc.minV, tc.maxV, tc.suites)
	if s.state.CipherSuite != tc.wantCipher || s.state.Version != tc.maxV {
		t.Fatalf("session negotiated %#04x / %#04x, want %#04x / %#04x", s.state.Version, s.state.CipherSuite, tc.maxV, tc.wantCipher)
	}
	keys := mustKeyLog(t, s.keylog)
	wantC2S := upgradeRequest + string(clientExtra)
	wantS2C := upgradeResponse + string(serverExtra)

	r := feedTLS(keys, s.wire.chunks, nil)
	inf := &r.info
	if string(r.plain[0]) != wantC2S {
		t.Errorf("client→server plaintext: %d bytes, want %d; starts %q", len(r.plain[0]), len(wantC2S), prefix(r.plain[0]))
	}
	if string(r.plain[1]) != wantS2C {
		t.Errorf("server→client plaintext: %d bytes, want %d; starts %q", len(r.plain[1]), len(wantS2C), prefix(r.plain[1]))
	}
	if inf.DecryptErr != "" || !inf.Decrypting {
		t.Errorf("Decrypting %v, DecryptErr %q", inf.Decrypting, inf.DecryptErr)
	}
	checkMeta(t, inf, tc, true)
	// The client's close_notify, decrypted.
	found := false
	for _, a := range inf.Alerts {
		if a.FromClient && a.Level == 1 && a.Description == 0 && a.Encrypted && !a.Opaque {
			found = true
		}
	}
	if !found {
		t.Errorf("no decrypted close_notify from the client in %+v", inf.Alerts)
	}

	// Without keys: metadata only.
	r = feedTLS(nil, s.wire.chunks, nil)
	if len(r.plain[0])+len(r.plain[1]) != 0 || r.info.Decrypting || r.info.DecryptErr != "" {
		t.Errorf("no keys: %d/%d plaintext bytes, Decrypting %v, DecryptErr %q", len(r.plain[0]), len(r.plain[1]), r.info.Decrypting, r.info.DecryptErr)
	}
	checkMeta(t, &r.info, tc, false)

	// Wrong keys: the first protected record fails to authenticate.
	r = feedTLS(wrongKeys(t, s.keylog), s.wire.chunks, nil)
	if !strings.Contains(r.info.DecryptErr, "record failed to authenticate (wrong keys?)") || r.info.Decrypting {
		t.Errorf("wrong keys: Decrypting %v, DecryptErr %q", r.info.Decrypting, r.info.DecryptErr)
	}
	if len(r.plain[0])+len(r.plain[1]) != 0 {
		t.Errorf("wrong keys produced plaintext")
	}
	checkMetaBasic(t, &r.info, tc)

	// A key log without this session.
	other, _ := ParseKeyLog(strings.NewReader("CLIENT_RANDOM " + testCR1 + " " + hex48 + "\nCLIENT_HANDSHAKE_TRAFFIC_SECRET " + testCR1 + " " + hex32 + "\n"))
	r = feedTLS(other, s.wire.chunks, nil)
	if !strings.HasPrefix(r.info.DecryptErr, "no key for client random ") || r.info.Decrypting {
		t.Errorf("other session's keys: Decrypting %v, DecryptErr %q", r.info.Decrypting, r.info.DecryptErr)
	}
}

func checkMetaBasic(t *testing.T, inf *Info, tc e2eCase) {
	t.Helper()
	if inf.SNI != testServerName || !slices.Equal(inf.ALPNOffered, []string{testALPN}) {
		t.Errorf("SNI %q, ALPN offered %q", inf.SNI, inf.ALPNOffered)
	}
	if !inf.ClientHello || !inf.ServerHello || inf.Version != tc.maxV || inf.Cipher != tc.wantCipher {
		t.Errorf("hello %v/%v, version %#04x, cipher %#04x", inf.ClientHello, inf.ServerHello, inf.Version, inf.Cipher)
	}
	if !slices.Contains(inf.OfferedVersions, tc.maxV) || inf.CipherSuites == 0 {
		t.Errorf("offered versions %x, %d suites", inf.OfferedVersions, inf.CipherSuites)
	}
	if inf.Malformed != "" || inf.Gaps != 0 {
		t.Errorf("Malformed %q, gaps %d", inf.Malformed, inf.Gaps)
	}
}

func checkMeta(t *testing.T, inf *Info, tc e2eCase, keys bool) {
	t.Helper()
	checkMetaBasic(t, inf, tc)
	wantALPN := testALPN
	if tc.maxV == tls.VersionTLS13 && !keys {
		wantALPN = "" // in EncryptedExtensions
	}
	if inf.ALPN != wantALPN {
		t.Errorf("keys %v: ALPN %q, want %q", keys, inf.ALPN, wantALPN)
	}
	if !inf.HandshakeDone {
		t.Errorf("keys %v: HandshakeDone false", keys)
	}
	for _, a := range inf.Alerts {
		if a.Level == 2 {
			t.Errorf("keys %v: fatal alert %+v", keys, a)
		}
	}
}

func prefix(b []byte) []byte { return b[:min(len(b), 40)] }

// Every byte offset of each direction as a feed boundary, and one byte at a
// time: the output is the same as feeding whole writes.
func TestTLSSplitEveryOffset(t *testing.T) {
	for _, tc := range []e2eCase{e2eCases[0], e2eCases[1], e2eCases[6]} {
		t.Run(tc.name, func(t *testing.T) {
			// A short session (the cost is quadratic): the handshake, the
			// upgrade, 3000 bytes each way, the close.
			s := runTLSSession(t, tc.minV, tc.maxV, tc.suites, clientExtra[:3000], serverExtra[:3000])
			chunks := s.wire.chunks
			tot := [2]int{len(s.wire.stream(flow.Fwd)), len(s.wire.stream(flow.Rev))}
			keys := mustKeyLog(t, s.keylog)
			base := feedTLS(keys, chunks, nil)
			if base.info.DecryptErr != "" || len(base.plain[0]) < 1000 || len(base.plain[1]) < 1000 {
				t.Fatalf("base: %q, %d/%d bytes", base.info.DecryptErr, len(base.plain[0]), len(base.plain[1]))
			}
			one := feedTLS(keys, chunks, func(dir flow.Dir, off, n int) []int {
				cuts := make([]int, 0, n)
				for i := 1; i < n; i++ {
					cuts = append(cuts, i)
				}
				return cuts
			})
			compareResults(t, "1-byte feeds", base, one)
			step := 1
			if testing.Short() {
				step = 13
			}
			runs := 0
			for _, d := range []flow.Dir{flow.Fwd, flow.Rev} {
				for at := 1; at < tot[d]; at += step {
					r := feedTLS(keys, chunks, func(dir flow.Dir, off, n int) []int {
						if dir == d && at > off && at < off+n {
							return []int{at - off}
						}
						return nil
					})
					runs++
					if !sameResult(base, r) {
						compareResults(t, fmt.Sprintf("dir %d split at %d", d, at), base, r)
						return
					}
				}
			}
			t.Logf("%d split points, %d+%d bytes", runs, tot[0], tot[1])
		})
	}
}

func sameResult(a, b *tlsResult) bool {
	return bytes.Equal(a.plain[0], b.plain[0]) && bytes.Equal(a.plain[1], b.plain[1]) &&
		fmt.Sprintf("%+v", a.info) == fmt.Sprintf("%+v", b.info)
}

func compareResults(t *testing.T, what string, a, b *tlsResult) {
	t.Helper()
	if !sameResult(a, b) {
		t.Errorf("%s: results differ:\n%+v\n%+v\nplaintext %d/%d vs %d/%d", what, a.info, b.info,
			len(a.plain[0]), len(a.plain[1]), len(b.plain[0]), len(b.plain[1]))
	}
}

// A gap in one direction stops that direction only.
func TestTLSGap(t *testing.T) {
	s := runTLSSession(t, tls.VersionTLS13, tls.VersionTLS13, nil)
	keys := mustKeyLog(t, s.keylog)
	c := newTLSConn(keys)
	var plain [2][]byte
	out := func(d flow.Dir, p []byte, _ time.Time) { plain[d] = append(plain[d], p...) }
	gapped := false
	for _, ch := range s.wire.chunks {
		if ch.dir == flow.Rev && !gapped && bytes.Contains(plain[1], []byte("101 Switching")) {
			c.gap(flow.Rev)
			gapped = true
		}
		c.feed(ch.dir, ch.b, time.Time{}, out)
	}
	inf := c.info()
	if !gapped || inf.Gaps != 1 || !strings.Contains(inf.DecryptErr, "server→client: bytes lost") {
		t.Fatalf("gap: %+v", inf)
	}
	if string(plain[0]) != upgradeRequest+string(clientExtra) {
		t.Errorf("client direction: %d bytes", len(plain[0]))
	}
	if !inf.Decrypting {
		t.Error("Decrypting false while the client direction still decrypts")
	}
}

// Input that is not TLS stops the direction and says why; oversized
// records likewise.
func TestTLSMalformed(t *testing.T) {
	c := newTLSConn(nil)
	c.feed(flow.Fwd, []byte("GET / HTTP/1.1\r\n\r\n"), time.Time{}, nil)
	if inf := c.info(); !strings.Contains(inf.Malformed, "not a TLS record") {
		t.Errorf("HTTP: %q", inf.Malformed)
	}
	c = newTLSConn(nil)
	c.feed(flow.Rev, []byte{22, 3, 3, 0x41, 0x01}, time.Time{}, nil)
	c.feed(flow.Rev, make([]byte, 100), time.Time{}, nil)
	if inf := c.info(); !strings.Contains(inf.Malformed, "exceeds the limit") || c.dir[1].buf != nil {
		t.Errorf("oversized: %q", inf.Malformed)
	}
	// A plaintext fatal alert, split over two feeds.
	c = newTLSConn(nil)
	c.feed(flow.Rev, []byte{21, 3, 3, 0, 2, 2}, time.Time{}, nil)
	c.feed(flow.Rev, []byte{40}, time.Time{}, nil)
	if inf := c.info(); len(inf.Alerts) != 1 || inf.Alerts[0].Description != 40 || inf.Alerts[0].Level != 2 || inf.Alerts[0].Encrypted {
		t.Errorf("alert: %+v", inf.Alerts)
	}
	// Alerts are bounded.
	for range 100 {
		c.feed(flow.Fwd, []byte{21, 3, 3, 0, 2, 1, 0}, time.Time{}, nil)
	}
	if inf := c.info(); len(inf.Alerts) != maxAlerts || inf.AlertsDropped != 101-maxAlerts {
		t.Errorf("%d alerts kept, %d dropped", len(inf.Alerts), inf.AlertsDropped)
	}
}
