package tlsrec

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/capture"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// These tests run the TLS layer on real captures of Debian's nginx with TLS
// in front of the gorilla backend (testdata/gen/tls.sh): leg A is TLS on
// 127.0.0.1:8443, with the Go client's key log beside each capture.

const tlsPort = 8443

// captureChunks reads a capture and returns, for every TCP connection to
// port 8443, its payload in capture order as chunks per direction (0 =
// client→server), with retransmitted bytes removed. The loopback captures
// are clean (no loss, no reordering), so sequence numbers only serve to drop
// duplicates. keylog may be "" (then the key log is nil).
func captureChunks(pcap, keylog string) ([][]wireChunk, *KeyLog, error) {
	var keys *KeyLog
	if keylog != "" {
		b, err := os.ReadFile(keylog)
		if err != nil {
			return nil, nil, err
		}
		if keys, err = ParseKeyLog(bytes.NewReader(b)); err != nil {
			return nil, nil, err
		}
	}
	r, err := capture.Open(pcap)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	type conn struct {
		idx    int
		next   [2]uint32
		inited [2]bool
	}
	conns := map[uint16]*conn{} // by client port
	var out [][]wireChunk
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		tcp := p.TCP
		var d flow.Dir
		var cport uint16
		switch {
		case uint16(tcp.DstPort) == tlsPort:
			d, cport = flow.Fwd, uint16(tcp.SrcPort)
		case uint16(tcp.SrcPort) == tlsPort:
			d, cport = flow.Rev, uint16(tcp.DstPort)
		default:
			continue
		}
		c := conns[cport]
		if c == nil || tcp.SYN && !tcp.ACK && c.inited[0] {
			c = &conn{idx: len(out)}
			conns[cport] = c
			out = append(out, nil)
		}
		seq := tcp.Seq
		if tcp.SYN {
			c.next[d], c.inited[d] = seq+1, true
			continue
		}
		pl := tcp.Payload
		if len(pl) == 0 {
			continue
		}
		if !c.inited[d] {
			c.next[d], c.inited[d] = seq, true
		}
		if skip := c.next[d] - seq; int32(skip) > 0 { // retransmission
			if int(skip) >= len(pl) {
				continue
			}
			pl = pl[skip:]
		} else if skip != 0 {
			return nil, nil, errors.New(pcap + ": bytes missing in the capture")
		}
		c.next[d] += uint32(len(pl))
		out[c.idx] = append(out[c.idx], wireChunk{d, append([]byte(nil), pl...)})
	}
	return out, keys, nil
}

func tlsCapture(t *testing.T, name string) ([][]wireChunk, *KeyLog) {
	t.Helper()
	p := "../../testdata/captures/" + name
	kl := strings.TrimSuffix(strings.TrimSuffix(p, ".pcap"), ".pcapng") + ".keylog"
	if strings.HasSuffix(p, ".pcapng") {
		kl = ""
	}
	conns, keys, err := captureChunks(p, kl)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) == 0 {
		t.Fatalf("%s: no connection to port %d", name, tlsPort)
	}
	return conns, keys
}

func TestTLSCaptures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		version    uint16
		cipher     uint16
		wantResp   string // "" for no HTTP at all
		alertDesc  uint8  // a fatal alert from the client with this description (0: none)
		alertPlain bool   // that alert is visible without keys
		noKeys     bool   // the key log has no secrets for the session
	}{
		{name: "tls-13-aesgcm.pcap", version: versionTLS13, cipher: 0x1301, wantResp: "HTTP/1.1 101 "},
		{name: "tls-13-aes256.pcap", version: versionTLS13, cipher: 0x1302, wantResp: "HTTP/1.1 101 "},
		{name: "tls-13-chacha.pcap", version: versionTLS13, cipher: 0x1303, wantResp: "HTTP/1.1 101 "},
		{name: "tls-12-aesgcm.pcap", version: versionTLS12, cipher: 0xc02f, wantResp: "HTTP/1.1 101 "},
		{name: "tls-12-chacha.pcap", version: versionTLS12, cipher: 0xcca8, wantResp: "HTTP/1.1 101 "},
		{name: "tls-13-no-upgrade.pcap", version: versionTLS13, cipher: 0x1301, wantResp: "HTTP/1.1 400 "},
		{name: "tls-13-keyupdate.pcap", version: versionTLS13, cipher: 0x1302, wantResp: "HTTP/1.1 101 "},
		{name: "tls-cert-refused.pcap", version: versionTLS13, cipher: 0x1301, alertDesc: 42},
		// The client refuses the certificate before it computes the master
		// secret: Go writes no CLIENT_RANDOM line, the key log is empty; and
		// an empty key log counts as none (one filled from a pcapng as it is
		// read may not have its keys yet), so no DecryptErr.
		{name: "tls-12-cert-refused.pcap", version: versionTLS12, cipher: 0xc02f, alertDesc: 42, alertPlain: true, noKeys: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns, keys := tlsCapture(t, tc.name)
			for i, chunks := range conns {
				r := feedTLS(keys, chunks, nil)
				inf := &r.info
				t.Logf("conn %d: SNI %q ALPN offered %q ALPN %q version %#04x cipher %#04x done %v alerts %+v decrypting %v err %q; plaintext %d/%d",
					i, inf.SNI, inf.ALPNOffered, inf.ALPN, inf.Version, inf.Cipher, inf.HandshakeDone, inf.Alerts, inf.Decrypting, inf.DecryptErr, len(r.plain[0]), len(r.plain[1]))
				if inf.Version != tc.version || inf.Cipher != tc.cipher || inf.SNI != "localhost" {
					t.Errorf("conn %d: version %#04x cipher %#04x SNI %q", i, inf.Version, inf.Cipher, inf.SNI)
				}
				if tc.noKeys {
					if inf.DecryptErr != "" || inf.Decrypting {
						t.Errorf("conn %d: Decrypting %v, DecryptErr %q", i, inf.Decrypting, inf.DecryptErr)
					}
				} else if inf.DecryptErr != "" || !inf.Decrypting {
					t.Errorf("conn %d: Decrypting %v, DecryptErr %q", i, inf.Decrypting, inf.DecryptErr)
				}
				if tc.wantResp != "" {
					if !bytes.HasPrefix(r.plain[0], []byte("GET /ws HTTP/1.1\r\n")) || !bytes.HasPrefix(r.plain[1], []byte(tc.wantResp)) {
						t.Errorf("conn %d: plaintext starts %q / %q", i, prefix(r.plain[0]), prefix(r.plain[1]))
					}
					if !inf.HandshakeDone {
						t.Errorf("conn %d: HandshakeDone false", i)
					}
					if tc.version == versionTLS13 && inf.ALPN != "http/1.1" {
						t.Errorf("conn %d: ALPN %q from EncryptedExtensions", i, inf.ALPN)
					}
				} else if len(r.plain[0])+len(r.plain[1]) > 0 || inf.HandshakeDone {
					t.Errorf("conn %d: application data or a finished handshake where the certificate was refused", i)
				}
				if tc.alertDesc != 0 && !hasAlert(inf.Alerts, true, 2, tc.alertDesc, false) {
					t.Errorf("conn %d: no fatal alert %d from the client in %+v", i, tc.alertDesc, inf.Alerts)
				}

				// Without keys.
				m := feedTLS(nil, chunks, nil)
				mi := &m.info
				if mi.Version != tc.version || mi.Cipher != tc.cipher || mi.SNI != "localhost" ||
					!slices.Equal(mi.ALPNOffered, []string{"http/1.1"}) || mi.DecryptErr != "" || mi.Decrypting ||
					len(m.plain[0])+len(m.plain[1]) != 0 {
					t.Errorf("conn %d without keys: %+v", i, mi)
				}
				if mi.HandshakeDone != (tc.wantResp != "") {
					t.Errorf("conn %d without keys: HandshakeDone %v", i, mi.HandshakeDone)
				}
				if tc.alertDesc != 0 {
					if tc.alertPlain && !hasAlert(mi.Alerts, true, 2, tc.alertDesc, false) {
						t.Errorf("conn %d without keys: no plaintext alert in %+v", i, mi.Alerts)
					}
					if !tc.alertPlain && !hasAlert(mi.Alerts, true, 0, 0, true) {
						t.Errorf("conn %d without keys: no opaque client alert in %+v", i, mi.Alerts)
					}
				}

				// Wrong keys.
				if tc.noKeys {
					continue
				}
				b, _ := os.ReadFile("../../testdata/captures/" + strings.TrimSuffix(tc.name, ".pcap") + ".keylog")
				w := feedTLS(wrongKeys(t, b), chunks, nil)
				if !strings.Contains(w.info.DecryptErr, "record failed to authenticate") || len(w.plain[0])+len(w.plain[1]) != 0 {
					t.Errorf("conn %d with wrong keys: DecryptErr %q, plaintext %d/%d", i, w.info.DecryptErr, len(w.plain[0]), len(w.plain[1]))
				}
			}
		})
	}
}

func hasAlert(as []Alert, fromClient bool, level, desc uint8, opaque bool) bool {
	for _, a := range as {
		if a.FromClient == fromClient && a.Opaque == opaque && (opaque || a.Level == level && a.Description == desc) {
			return true
		}
	}
	return false
}

// The pcapng with the key log injected by editcap: the keys come out of its
// Decryption Secrets Block.
func TestTLSCapturePcapngSecrets(t *testing.T) {
	r, err := capture.Open("../../testdata/captures/tls-13-keys-injected.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	keys := NewKeyLog()
	r.SetKeyLog(keys)
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, io.EOF) || keys.Len() == 0 {
		t.Fatalf("reading: %v, %d sessions", err, keys.Len())
	}
	conns, _ := tlsCapture(t, "tls-13-keys-injected.pcapng")
	for i, chunks := range conns {
		r := feedTLS(keys, chunks, nil)
		if !bytes.HasPrefix(r.plain[0], []byte("GET /ws HTTP/1.1\r\n")) || !bytes.HasPrefix(r.plain[1], []byte("HTTP/1.1 101 ")) {
			t.Errorf("conn %d: %q / %q, %+v", i, prefix(r.plain[0]), prefix(r.plain[1]), r.info)
		}
	}
}

// Feeding each captured segment as it came, the decryptor sees the same
// WebSocket bytes a plain-text capture would: the 101 is followed by frames.
func TestTLSCaptureFrames(t *testing.T) {
	conns, keys := tlsCapture(t, "tls-13-aesgcm.pcap")
	r := feedTLS(keys, conns[0], nil)
	i := bytes.Index(r.plain[1], []byte("\r\n\r\n"))
	if i < 0 || len(r.plain[1]) <= i+4 {
		t.Fatalf("no bytes after the 101: %q", r.plain[1])
	}
	if op := r.plain[1][i+4] & 0x0f; op != 1 && op != 2 && op != 8 {
		t.Errorf("first server frame opcode %d", op)
	}
	_ = time.Second
}
