package tlsrec

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// ---------------------------------------------------------------- sessions

// wireChunk is one Write on one side of an in-process TLS session.
type wireChunk struct {
	dir flow.Dir // flow.Fwd: the client's, as it wrote them
	b   []byte
}

// wireLog records the bytes each side wrote, in the order the writes began.
type wireLog struct {
	mu     sync.Mutex
	chunks []wireChunk
}

func (l *wireLog) add(dir flow.Dir, p []byte) {
	l.mu.Lock()
	l.chunks = append(l.chunks, wireChunk{dir, append([]byte(nil), p...)})
	l.mu.Unlock()
}

func (l *wireLog) stream(dir flow.Dir) []byte {
	var b []byte
	for _, c := range l.chunks {
		if c.dir == dir {
			b = append(b, c.b...)
		}
	}
	return b
}

type tapConn struct {
	net.Conn
	dir flow.Dir
	log *wireLog
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.log.add(c.dir, p)
	return c.Conn.Write(p)
}

var (
	certOnce            sync.Once
	ecdsaCert, rsaCert  tls.Certificate
	errCert             error
	upgradeRequest      = "GET /ws HTTP/1.1\r\nHost: wsdiag.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	upgradeResponse     = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05hello"
	clientExtra         = bytes.Repeat([]byte("client bytes after the upgrade. "), 700) // 22400 bytes: several records
	serverExtra         = bytes.Repeat([]byte("server says hello again. "), 2000)       // 50000 bytes
	testServerName      = "wsdiag.test"
	testALPN            = "http/1.1"
	sessionTestDeadline = 20 * time.Second
)

func selfSigned(key any, pub any) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: testServerName},
		DNSNames:     []string{testServerName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func testCerts(t testing.TB) []tls.Certificate {
	certOnce.Do(func() {
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			errCert = err
			return
		}
		if ecdsaCert, errCert = selfSigned(ek, &ek.PublicKey); errCert != nil {
			return
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			errCert = err
			return
		}
		rsaCert, errCert = selfSigned(rk, &rk.PublicKey)
	})
	if errCert != nil {
		t.Fatal(errCert)
	}
	return []tls.Certificate{ecdsaCert, rsaCert}
}

// tlsSession is one recorded in-process TLS session.
type tlsSession struct {
	wire   *wireLog
	keylog []byte
	state  tls.ConnectionState
}

// runTLSSession runs a crypto/tls client and server over net.Pipe: the
// client sends an HTTP upgrade request, the server a 101 and a frame, then
// both send more bytes; every write is recorded, and the client's key log.
//
// extras, when given, replace clientExtra and serverExtra.
func runTLSSession(t testing.TB, minV, maxV uint16, suites []uint16, extras ...[]byte) *tlsSession {
	t.Helper()
	cExtra, sExtra := clientExtra, serverExtra
	if len(extras) == 2 {
		cExtra, sExtra = extras[0], extras[1]
	}
	certs := testCerts(t)
	cp, sp := net.Pipe()
	wire := &wireLog{}
	var keylog bytes.Buffer
	deadline := time.Now().Add(sessionTestDeadline)
	cp.SetDeadline(deadline)
	sp.SetDeadline(deadline)
	srv := tls.Server(&tapConn{sp, flow.Rev, wire}, &tls.Config{
		Certificates: certs, MinVersion: minV, MaxVersion: maxV, CipherSuites: suites,
		NextProtos: []string{testALPN},
	})
	cli := tls.Client(&tapConn{cp, flow.Fwd, wire}, &tls.Config{
		ServerName: testServerName, InsecureSkipVerify: true, KeyLogWriter: &keylog,
		MinVersion: minV, MaxVersion: maxV, CipherSuites: suites, NextProtos: []string{testALPN},
	})
	srvErr := make(chan error, 1)
	go func() {
		srvErr <- func() error {
			defer srv.Close()
			br := bufio.NewReader(srv)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return fmt.Errorf("server reading request: %w", err)
				}
				if line == "\r\n" {
					break
				}
			}
			if _, err := io.WriteString(srv, upgradeResponse); err != nil {
				return err
			}
			got := make([]byte, len(cExtra))
			if _, err := io.ReadFull(br, got); err != nil {
				return fmt.Errorf("server reading extra: %w", err)
			}
			if _, err := srv.Write(sExtra); err != nil {
				return err
			}
			io.Copy(io.Discard, br) // until the client's close_notify
			return nil
		}()
	}()
	err := func() error {
		if _, err := io.WriteString(cli, upgradeRequest); err != nil {
			return err
		}
		got := make([]byte, len(upgradeResponse))
		if _, err := io.ReadFull(cli, got); err != nil {
			return fmt.Errorf("client reading response: %w", err)
		}
		if _, err := cli.Write(cExtra); err != nil {
			return err
		}
		got = make([]byte, len(sExtra))
		if _, err := io.ReadFull(cli, got); err != nil {
			return fmt.Errorf("client reading extra: %w", err)
		}
		return nil
	}()
	state := cli.ConnectionState()
	cli.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	// Only the writes that the peer read belong to the capture: the last
	// close_notify may have hit the closed pipe; keep it anyway (a capture
	// would show it or an RST).
	return &tlsSession{wire: wire, keylog: keylog.Bytes(), state: state}
}

// tlsResult is what feeding a Conn produced.
type tlsResult struct {
	plain [2][]byte
	info  Info
}

// feedChunks feeds the chunks in order, each split at the cut offsets given
// (per direction stream offsets), and returns the decrypted output.
func feedTLS(keys *KeyLog, chunks []wireChunk, cut func(dir flow.Dir, off, n int) []int) *tlsResult {
	c := newTLSConn(keys)
	r := &tlsResult{}
	out := func(d flow.Dir, p []byte, _ time.Time) { r.plain[d] = append(r.plain[d], p...) }
	var off [2]int
	t0 := time.Unix(1700000000, 0)
	for _, ch := range chunks {
		b := ch.b
		pos := 0
		if cut != nil {
			for _, at := range cut(ch.dir, off[ch.dir], len(b)) {
				c.feed(ch.dir, b[pos:at], t0, out)
				pos = at
			}
		}
		c.feed(ch.dir, b[pos:], t0, out)
		off[ch.dir] += len(b)
	}
	r.info = *c.info()
	r.info.Alerts = slices.Clone(r.info.Alerts)
	return r
}

func mustKeyLog(t testing.TB, b []byte) *KeyLog {
	t.Helper()
	k, err := ParseKeyLog(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wrongKeys returns the key log with every secret altered (randoms kept).
func wrongKeys(t testing.TB, b []byte) *KeyLog {
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			s := []byte(f[2])
			if s[0] == '0' {
				s[0] = '1'
			} else {
				s[0] = '0'
			}
			line = f[0] + " " + f[1] + " " + string(s)
		}
		out.WriteString(line + "\n")
	}
	return mustKeyLog(t, []byte(out.String()))
}

// ---------------------------------------------------------------- end to end

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

// ---------------------------------------------------------------- fuzzing

// fuzzCuts turns fuzzer bytes into a feeding script: each byte feeds the next
// (b&0x7f)*37+1 bytes of direction b>>7. What the script leaves is fed at the
// end, client first.
func fuzzFeed(c *Conn, c2s, s2c, cuts []byte, out func(flow.Dir, []byte, time.Time)) {
	streams := [2][]byte{c2s, s2c}
	t := time.Unix(0, 0)
	for _, b := range cuts {
		d := flow.Dir(b >> 7)
		n := min(int(b&0x7f)*37+1, len(streams[d]))
		c.feed(d, streams[d][:n], t, out)
		streams[d] = streams[d][n:]
	}
	c.feed(flow.Fwd, streams[0], t, out)
	c.feed(flow.Rev, streams[1], t, out)
}

// fuzzScript encodes chunks as a fuzzFeed script.
func fuzzScript(chunks []wireChunk) (c2s, s2c, cuts []byte) {
	for _, ch := range chunks {
		if ch.dir == flow.Fwd {
			c2s = append(c2s, ch.b...)
		} else {
			s2c = append(s2c, ch.b...)
		}
		for l := len(ch.b); l > 0; {
			k := min((l-1)/37, 127)
			cuts = append(cuts, byte(ch.dir)<<7|byte(k))
			l -= k*37 + 1
		}
	}
	return
}

func checkBounds(t *testing.T, c *Conn) {
	for d := range c.dir {
		dd := &c.dir[d]
		if cap(dd.buf) > tlsRecordHeader+maxRecordLen || cap(dd.pt) > tlsRecordHeader+maxRecordLen || cap(dd.hs.buf) > maxHandshakeMsg {
			t.Fatalf("dir %d: buffers %d/%d/%d exceed their bounds", d, cap(dd.buf), cap(dd.pt), cap(dd.hs.buf))
		}
	}
	inf := c.info()
	if len(inf.Alerts) > maxAlerts {
		t.Fatalf("%d alerts kept", len(inf.Alerts))
	}
}

func FuzzTLSConn(f *testing.F) {
	// Seeds: the recorded sessions of the real captures (with their key
	// logs, so mutations reach the decryption paths), an in-process TLS 1.2
	// session, and a few small shapes.
	keys := NewKeyLog()
	for _, name := range []string{"tls-13-aesgcm", "tls-12-chacha", "tls-cert-refused"} {
		chunks, kl, err := captureChunks("../../testdata/captures/"+name+".pcap", "../../testdata/captures/"+name+".keylog")
		if err != nil {
			continue // captures not generated: fuzz without these seeds
		}
		keys.Add(kl)
		for _, conn := range chunks {
			a, b, cuts := fuzzScript(conn)
			f.Add(a, b, cuts)
		}
	}
	s := runTLSSession(f, tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		clientExtra[:500], serverExtra[:500])
	keys.Add(mustKeyLog(f, s.keylog))
	a, b, cuts := fuzzScript(s.wire.chunks)
	f.Add(a, b, cuts)
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0}, []byte{21, 3, 3, 0, 2, 2, 40}, []byte{0x81, 0x00})
	f.Add([]byte{}, []byte{23, 3, 3, 0x40, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, c2s, s2c, cuts []byte) {
		c := newTLSConn(keys)
		n := 0
		fuzzFeed(c, c2s, s2c, cuts, func(d flow.Dir, p []byte, _ time.Time) {
			if d != 0 && d != 1 {
				t.Fatalf("out dir %d", d)
			}
			n += len(p)
		})
		checkBounds(t, c)
		if n > len(c2s)+len(s2c) {
			t.Fatalf("%d plaintext bytes from %d input bytes", n, len(c2s)+len(s2c))
		}
		c.gap(flow.Fwd)
		c.feed(flow.Fwd, c2s, time.Time{}, nil)
		c.info()
	})
}

// The fuzz script of a recorded session decrypts like the session itself
// (guards fuzzScript, which the seeds depend on).
func TestFuzzScript(t *testing.T) {
	s := runTLSSession(t, tls.VersionTLS13, tls.VersionTLS13, nil)
	c2s, s2c, cuts := fuzzScript(s.wire.chunks)
	c := newTLSConn(mustKeyLog(t, s.keylog))
	var got [2][]byte
	fuzzFeed(c, c2s, s2c, cuts, func(d flow.Dir, p []byte, _ time.Time) { got[d] = append(got[d], p...) })
	if string(got[0]) != upgradeRequest+string(clientExtra) || string(got[1]) != upgradeResponse+string(serverExtra) {
		t.Fatalf("fuzz script: %d/%d bytes; %+v", len(got[0]), len(got[1]), c.info())
	}
	// Random splits: same output.
	rng := mrand.New(mrand.NewPCG(1, 2))
	for range 50 {
		c := newTLSConn(mustKeyLog(t, s.keylog))
		var out [2][]byte
		streams := [2][]byte{c2s, s2c}
		for _, ch := range s.wire.chunks {
			b := ch.b
			for len(b) > 0 {
				n := min(len(b), 1+rng.IntN(3000))
				c.feed(ch.dir, b[:n], time.Time{}, func(d flow.Dir, p []byte, _ time.Time) { out[d] = append(out[d], p...) })
				b = b[n:]
			}
		}
		_ = streams
		if !bytes.Equal(out[0], got[0]) || !bytes.Equal(out[1], got[1]) {
			t.Fatal("random splits changed the output")
		}
	}
}
