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
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

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
