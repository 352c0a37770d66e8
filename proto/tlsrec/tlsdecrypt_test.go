package tlsrec

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// RFC 8448 §3 "Simple 1-RTT Handshake" (TLS_AES_128_GCM_SHA256).
const (
	rfc8448EarlySecret     = "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"
	rfc8448EmptyHash       = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	rfc8448DerivedEarly    = "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"
	rfc8448HandshakeSecret = "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"
	rfc8448HelloHash       = "860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8"
	rfc8448ClientHS        = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"
	rfc8448ServerHS        = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"
	rfc8448ClientAP        = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"
	rfc8448ServerAP        = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"
)

func TestHKDFExpandLabelRFC8448(t *testing.T) {
	h := sha256.New
	for _, tc := range []struct {
		name, secret, label, context string
		n                            int
		want                         string
	}{
		{"derived (early)", rfc8448EarlySecret, "derived", rfc8448EmptyHash, 32, rfc8448DerivedEarly},
		{"c hs traffic", rfc8448HandshakeSecret, "c hs traffic", rfc8448HelloHash, 32, rfc8448ClientHS},
		{"s hs traffic", rfc8448HandshakeSecret, "s hs traffic", rfc8448HelloHash, 32, rfc8448ServerHS},
		{"server hs key", rfc8448ServerHS, "key", "", 16, "3fce516009c21727d0f2e4e86ee403bc"},
		{"server hs iv", rfc8448ServerHS, "iv", "", 12, "5d313eb2671276ee13000b30"},
		{"server finished key", rfc8448ServerHS, "finished", "", 32, "008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8"},
		{"client hs key", rfc8448ClientHS, "key", "", 16, "dbfaa693d1762c5b666af5d950258d01"},
		{"client hs iv", rfc8448ClientHS, "iv", "", 12, "5bd3c71b836e0b76bb73265f"},
		{"server ap key", rfc8448ServerAP, "key", "", 16, "9f02283b6c9c07efc26bb9f2ac92e356"},
		{"server ap iv", rfc8448ServerAP, "iv", "", 12, "cf782b88dd83549aadf1e984"},
		{"client ap key", rfc8448ClientAP, "key", "", 16, "17422dda596ed5d9acd890e3c63f5051"},
		{"client ap iv", rfc8448ClientAP, "iv", "", 12, "5b78923dee08579033e523d9"},
	} {
		got := hkdfExpandLabel(h, unhex(t, tc.secret), tc.label, unhex(t, tc.context), tc.n)
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("%s: got %x, want %s", tc.name, got, tc.want)
		}
	}
	// newKeys13 derives the same key and IV.
	k, err := newKeys13(suiteByID(0x1301), unhex(t, rfc8448ServerAP))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(k.iv[:]) != "cf782b88dd83549aadf1e984" {
		t.Errorf("newKeys13 iv = %x", k.iv)
	}
	if _, err := newKeys13(suiteByID(0x1302), unhex(t, rfc8448ServerAP)); err == nil {
		t.Error("a 32-byte secret for a SHA-384 suite was accepted")
	}
}

// The client's Finished record of RFC 8448 §3, protected with the client
// handshake traffic key: decrypting it checks nonce, AAD and the inner
// content type.
func TestOpenRFC8448ClientFinished(t *testing.T) {
	k, err := newKeys13(suiteByID(0x1301), unhex(t, rfc8448ClientHS))
	if err != nil {
		t.Fatal(err)
	}
	rec := unhex(t, "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546")
	want := unhex(t, "14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")
	plain, typ, err := k.open(make([]byte, 0, 64), false, rec[:5], rec[5:])
	if err != nil {
		t.Fatal(err)
	}
	if typ != recHandshake || !bytes.Equal(plain, want) {
		t.Fatalf("got type %d %x", typ, plain)
	}
	if k.seq != 1 {
		t.Errorf("seq = %d", k.seq)
	}
	// The same record again is at sequence 1 now: it must not authenticate.
	if _, _, err := k.open(make([]byte, 0, 64), false, rec[:5], rec[5:]); err != errRecordAuth {
		t.Errorf("replayed record: err = %v", err)
	}
	// In place, into the record's own buffer.
	k.seq = 0
	body := append([]byte(nil), rec[5:]...)
	plain, _, err = k.open(nil, true, rec[:5], body)
	if err != nil || !bytes.Equal(plain, want) {
		t.Errorf("in place: %x %v", plain, err)
	}
}

// TLS 1.2 PRF vectors (the widely used ones from the IETF TLS list), checked
// against OpenSSL: openssl kdf -keylen N -kdfopt digest:SHA256
// -kdfopt hexsecret:… -kdfopt seed:"test label" -kdfopt hexseed:… TLS1-PRF
func TestPRF12(t *testing.T) {
	got := prf12(sha256.New, unhex(t, "9bbe436ba940f017b17652849a71db35"), "test label",
		unhex(t, "a0ba9f936cda311827a6f796ffd5198c"), 100)
	want := "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab" +
		"4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"
	if hex.EncodeToString(got) != want {
		t.Errorf("SHA-256: got %x", got)
	}
	got = prf12(sha512.New384, unhex(t, "b80b733d6ceefcdc71566ea48e5567df"), "test label",
		unhex(t, "cd665cf6a8447dd6ff8b27555edb7465"), 148)
	want = "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd" +
		"8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691" +
		"c8f3a26854308d5eaa3be85e0990703d73e56f"
	if hex.EncodeToString(got) != want {
		t.Errorf("SHA-384: got %x", got)
	}
}

func TestSuites(t *testing.T) {
	for _, s := range tlsSuites {
		if (s.hashSize() == 48) != strings.HasSuffix(s.name, "SHA384") {
			t.Errorf("%s: hash size %d", s.name, s.hashSize())
		}
		if s.chacha != strings.Contains(s.name, "CHACHA20") {
			t.Errorf("%s: chacha %v", s.name, s.chacha)
		}
	}
	if suiteByID(0x1304) != nil || suiteByID(0xc027) != nil {
		t.Error("CCM or CBC suite claimed")
	}
}

// resegment cuts the chunks into TCP-segment-sized pieces (keeping their
// order), as a capture delivers them.
func resegment(chunks []wireChunk, mss int) []wireChunk {
	var out []wireChunk
	for _, ch := range chunks {
		for b := ch.b; len(b) > 0; {
			n := min(len(b), mss)
			out = append(out, wireChunk{ch.dir, b[:n]})
			b = b[n:]
		}
	}
	return out
}

var benchSessions = map[string]*tlsSession{}

func benchSession(b *testing.B, name string, minV, maxV uint16, suites []uint16) *tlsSession {
	if s := benchSessions[name]; s != nil {
		return s
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB server→client
	s := runTLSSession(b, minV, maxV, suites, clientExtra[:1000], big)
	benchSessions[name] = s
	return s
}

// BenchmarkTLS feeds a whole recorded session (handshake, 4 MiB
// server→client in 1448-byte segments) per op: with the key log
// (decrypting) and without (record framing and metadata only).
func BenchmarkTLS(b *testing.B) {
	for _, bc := range []struct {
		name       string
		minV, maxV uint16
		suites     []uint16
	}{
		{"tls13-aes128gcm", 0x0304, 0x0304, nil},
		{"tls12-aes128gcm", 0x0303, 0x0303, []uint16{0xc02b}},
		{"tls12-aes256gcm", 0x0303, 0x0303, []uint16{0xc02c}},
		{"tls12-chacha20", 0x0303, 0x0303, []uint16{0xcca9}},
	} {
		s := benchSession(b, bc.name, bc.minV, bc.maxV, bc.suites)
		keys := mustKeyLog(b, s.keylog)
		chunks := resegment(s.wire.chunks, 1448)
		total := 0
		for _, c := range chunks {
			total += len(c.b)
		}
		for _, mode := range []string{"decrypt", "nokeys"} {
			b.Run(bc.name+"/"+mode, func(b *testing.B) {
				k := keys
				if mode == "nokeys" {
					k = nil
				}
				b.SetBytes(int64(total))
				b.ReportAllocs()
				n := 0
				out := func(_ flow.Dir, p []byte, _ time.Time) { n += len(p) }
				for b.Loop() {
					c := newTLSConn(k)
					for _, ch := range chunks {
						c.feed(ch.dir, ch.b, time.Time{}, out)
					}
				}
				if mode == "decrypt" && n == 0 {
					b.Fatal("nothing decrypted")
				}
			})
		}
	}
}

// After the handshake, decrypting allocates nothing per record.
func TestTLSSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("1 MiB sessions")
	}
	for _, tc := range []e2eCase{e2eCases[0], e2eCases[1], e2eCases[6]} {
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		s := runTLSSession(t, tc.minV, tc.maxV, tc.suites, clientExtra[:1000], big)
		chunks := resegment(s.wire.chunks, 1448)
		// The handshake and the first 100 KB, then count the allocations of
		// the rest (the closing alerts left out).
		c2 := newTLSConn(mustKeyLog(t, s.keylog))
		n := 0
		out := func(_ flow.Dir, p []byte, _ time.Time) { n += len(p) }
		i := 0
		for ; i < len(chunks) && n < len(upgradeRequest)+len(upgradeResponse)+100000; i++ {
			c2.feed(chunks[i].dir, chunks[i].b, time.Time{}, out)
		}
		rest := chunks[i : len(chunks)-4]
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, ch := range rest {
			c2.feed(ch.dir, ch.b, time.Time{}, out)
		}
		runtime.ReadMemStats(&after)
		got := after.Mallocs - before.Mallocs
		t.Logf("%s: %d allocations while decrypting %d segments (%d bytes of plaintext in all)", tc.name, got, len(rest), n)
		if got > 10 || c2.info().DecryptErr != "" {
			t.Errorf("%s: %d allocations in steady state (%q)", tc.name, got, c2.info().DecryptErr)
		}
	}
}
