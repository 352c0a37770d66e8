package reassembly_test

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/flow"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"
)

// The plaintext of a TLS connection fed through Assembler.Plaintext must
// give what decrypting the connection with its key log gives. Every
// capture with a key log in testdata is judged twice: with the key log,
// and without it but with the plaintext the key log decrypts, fed right
// after the packet that carried it, as the probes' plaintext comes right
// after the proxy's call returned.

// decrypter decrypts the TLS connections of a capture into plaintext
// pieces, as the process at their end read and wrote it.
type decrypter struct {
	keys  *tlsrec.KeyLog
	conns map[string]*tlsConn
	out   []reassembly.Plain
	// serverFirst holds an HTTP/2 client's first plaintext back until
	// the server's first has gone, as nginx does: it writes its SETTINGS
	// before it reads the client's preface.
	serverFirst bool
}

type tlsConn struct {
	ends    [2]netip.AddrPort
	tls     *tlsrec.Conn
	next    [2]uint32
	started [2]bool
	off     [2]uint32
	not     bool // not TLS
	held    []reassembly.Plain
}

func key(a, b netip.AddrPort) string {
	if a.String() < b.String() {
		return a.String() + b.String()
	}
	return b.String() + a.String()
}

// packet decrypts what p carries; the pieces wait in d.out.
func (d *decrypter) packet(p *capture.Packet) {
	src := netip.AddrPortFrom(addr(p.Net.Src().Raw()), uint16(p.TCP.SrcPort))
	dst := netip.AddrPortFrom(addr(p.Net.Dst().Raw()), uint16(p.TCP.DstPort))
	k := key(src, dst)
	c := d.conns[k]
	if p.TCP.SYN && !p.TCP.ACK {
		c = nil // a new connection on the 4-tuple
	}
	if c == nil {
		if len(p.TCP.Payload) == 0 && !p.TCP.SYN {
			return
		}
		c = &tlsConn{ends: [2]netip.AddrPort{src, dst}}
		c.tls = tlsrec.NewConn(d.keys, func(dir flow.Dir, b []byte, t time.Time) {
			p := reassembly.Plain{Time: t, Src: c.ends[dir], Dst: c.ends[1-dir], Off: c.off[dir], Start: true, Data: bytes.Clone(b)}
			c.off[dir] += uint32(len(b))
			if d.serverFirst && (p.Off == 0 && bytes.HasPrefix(b, []byte("PRI * HTTP/2.0")) || len(c.held) > 0 && c.held[0].Src == p.Src) {
				c.held = append(c.held, p)
				return
			}
			d.out = append(d.out, p)
			d.out = append(d.out, c.held...)
			c.held = nil
		})
		d.conns[k] = c
	}
	if len(p.TCP.Payload) == 0 {
		return
	}
	dir := flow.Fwd
	if src != c.ends[0] {
		dir = flow.Rev
	}
	seq := uint32(p.TCP.Seq)
	if c.started[dir] && seq != c.next[dir] {
		return // a retransmission (the captures are on loopback: no holes)
	}
	c.started[dir], c.next[dir] = true, seq+uint32(len(p.TCP.Payload))
	if c.not || len(p.TCP.Payload) == 0 {
		return
	}
	if !c.started[1-dir] && c.off[dir] == 0 && p.TCP.Payload[0] != 0x16 {
		c.not = true
		return
	}
	c.tls.Feed(dir, p.TCP.Payload, p.CI.Timestamp)
}

func addr(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap()
}

// judge reads a capture through the Assembler and the Analyzer; with keys
// it decrypts, with plain it feeds the decrypted plaintext instead.
func judge(t *testing.T, path string, keys *tlsrec.KeyLog, plain, serverFirst bool) ([]string, reassembly.Stats) {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	an := analyze.New(analyze.DefaultOptions, func(v *analyze.Verdict) { out = append(out, describe(v)) })
	opt := reassembly.DefaultOptions
	dec := &decrypter{keys: keys, conns: map[string]*tlsConn{}, serverFirst: serverFirst}
	if !plain {
		opt.KeyLog = keys
	}
	asm := reassembly.New(an, opt)
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if plain {
			dec.packet(p)
		}
		asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
		for i := range dec.out {
			asm.Plaintext(&dec.out[i])
		}
		dec.out = dec.out[:0]
	}
	asm.Close()
	an.Finish()
	return out, asm.Stats()
}

// describe is what must agree: the verdict, the hop, the findings, the
// evidence and the fix.
func describe(v *analyze.Verdict) string {
	return fmt.Sprintf("%s %s %s %s client %d backend %d pairing %s\n  findings %v\n  evidence:\n    %s\n  fix: %s",
		v.Time.Format(time.RFC3339Nano), v.Code, v.Hop, v.Path, v.StatusClient, v.StatusBackend, v.PairConfidence, v.Findings,
		strings.Join(v.Evidence, "\n    "), v.Fix)
}

func TestPlaintextAsKeyLog(t *testing.T) {
	logs, _ := filepath.Glob("../testdata/captures/*.keylog")
	if len(logs) < 10 {
		t.Fatalf("%d key logs in testdata/captures", len(logs))
	}
	for _, kl := range logs {
		name := strings.TrimSuffix(filepath.Base(kl), ".keylog")
		t.Run(name, func(t *testing.T) {
			path := strings.TrimSuffix(kl, ".keylog") + ".pcap"
			if _, err := os.Stat(path); err != nil {
				path += "ng"
			}
			f, err := os.Open(kl)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := tlsrec.ParseKeyLog(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			want, _ := judge(t, path, keys, false, false)
			got, st := judge(t, path, keys, true, false)
			if len(want) == 0 {
				t.Fatalf("no verdicts with the key log")
			}
			if st.PlainConns == 0 {
				// A refused handshake, records cut by the snap length:
				// no application data, nothing a probe would read.
				t.Skip("no plaintext")
			}
			if st.PlainMidStream != 0 || st.PlainLost != 0 || st.PlainLate != 0 {
				t.Errorf("plaintext: %+v", st)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("with the plaintext:\n%s\n\nwith the key log:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if strings.HasPrefix(name, "h2-") {
				// The server's SETTINGS before the client's preface.
				got, _ := judge(t, path, keys, true, true)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("with the server's plaintext first:\n%s\n\nwith the key log:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
		})
	}
}

// pieces feeds plaintext pieces of one connection (no packets: the
// connection opens with its first piece) and ends it.
type pieces struct {
	asm      *reassembly.Assembler
	cli, srv netip.AddrPort
	off      [2]uint32
	start    bool
	now      time.Time
}

func newPieces(asm *reassembly.Assembler, start bool) *pieces {
	return &pieces{asm: asm, cli: netip.MustParseAddrPort("10.0.0.1:40000"), srv: netip.MustParseAddrPort("10.0.0.2:443"),
		start: start, now: time.Unix(1700000000, 0)}
}

// send feeds b from the client (c2s) or the server; skip bytes are lost
// before it.
func (p *pieces) send(c2s bool, b string, skip uint32) {
	d, src, dst := 1, p.srv, p.cli
	if c2s {
		d, src, dst = 0, p.cli, p.srv
	}
	p.off[d] += skip
	p.now = p.now.Add(time.Millisecond)
	p.asm.Plaintext(&reassembly.Plain{Time: p.now, Src: src, Dst: dst, Off: p.off[d], Start: p.start, Data: []byte(b)})
	p.off[d] += uint32(len(b))
}

func (p *pieces) end() {
	p.asm.Plaintext(&reassembly.Plain{Time: p.now, Src: p.cli, Dst: p.srv, Off: p.off[0], Start: p.start, End: true})
	p.asm.Plaintext(&reassembly.Plain{Time: p.now, Src: p.srv, Dst: p.cli, Off: p.off[1], Start: p.start, End: true})
}

// A proxy that refuses a header block answers before reading all of it:
// the request is what it read, truncated and marked Unread.
func TestPlaintextUnread(t *testing.T) {
	asm, sink := newAsm()
	p := newPieces(asm, true)
	p.send(true, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nCookie: "+strings.Repeat("c", 900), 0)
	p.send(false, "HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Length: 5\r\n\r\nbad\r\n", 0)
	p.end()
	if len(sink.reqs) != 1 || len(sink.resps) != 1 || len(sink.ends) != 1 {
		t.Fatalf("%d requests, %d responses, %d ends", len(sink.reqs), len(sink.resps), len(sink.ends))
	}
	r := sink.reqs[0]
	if !r.Unread || !r.Truncated || r.Cut || r.Target != "/ws" || !r.Headers.HasToken("Upgrade", "websocket") || sink.resps[0].Request != r {
		t.Errorf("request %+v", r)
	}
	if e := sink.ends[0]; e.Plain == nil || !e.Plain.Unread || e.Plain.MidStream || !e.TLS && !e.Conn.TLS {
		t.Errorf("end %+v plain %+v", e, e.Plain)
	}
}

// Plaintext lost on the way (a full ring) is a gap in the session, not a
// protocol error.
func TestPlaintextLost(t *testing.T) {
	asm, sink := newAsm()
	p := newPieces(asm, true)
	p.send(true, wsRequest, 0)
	p.send(false, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n", 0)
	frame := "\x81\x05hello"
	p.send(false, frame, 0)
	p.send(false, frame, 5000) // 5000 bytes of frames lost before it
	p.send(false, frame, 0)
	p.end()
	st := asm.Stats()
	if len(sink.ends) != 1 {
		t.Fatalf("%d ends", len(sink.ends))
	}
	e := sink.ends[0]
	if e.Plain == nil || e.Plain.LostBytes != 5000 || st.PlainLost != 5000 || e.Gaps != 1 || e.GapBytes != 5000 {
		t.Errorf("lost: plain %+v, gaps %d (%d bytes), stats %+v", e.Plain, e.Gaps, e.GapBytes, st)
	}
	if e.WS == nil || e.WS.S2C.ProtocolError != "" || e.WS.C2S.ProtocolError != "" {
		t.Errorf("session %+v", e.WS)
	}
}

// HTTP/2 from the middle of a connection cannot be read: it is named, not
// hunted for WebSocket frames.
func TestPlaintextH2MidStream(t *testing.T) {
	asm, sink := newAsm()
	p := newPieces(asm, false)
	p.off = [2]uint32{4000, 9000}
	ping := "\x00\x00\x08\x06\x00\x00\x00\x00\x00" + "12345678"
	data := "\x00\x00\x05\x00\x00\x00\x00\x00\x03" + "\x81\x03abc"
	p.send(true, ping+data, 0)
	p.send(false, data, 0)
	p.end()
	st := asm.Stats()
	if len(sink.ends) != 1 || st.PlainMidStream != 1 || st.PlainH2 != 1 {
		t.Fatalf("%d ends, stats %+v", len(sink.ends), st)
	}
	if e := sink.ends[0]; e.Plain == nil || !e.Plain.H2 || !e.Plain.MidStream || e.WS != nil || e.HTTP {
		t.Errorf("end %+v plain %+v", e, e.Plain)
	}
}
