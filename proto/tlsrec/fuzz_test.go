package tlsrec

import (
	"bytes"
	"crypto/tls"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

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
