package capture

import (
	"encoding/binary"
	"io"
)

// This file collects the TLS key logs a pcapng carries in Decryption
// Secrets Blocks (editcap --inject-secrets tls,FILE). gopacket's
// pcapgo.NgReader keeps the DSBs before the first Interface Description
// Block in an unexported field and skips later ones, so the Reader watches
// the bytes the NgReader consumes and picks the DSBs out as they pass: they
// work for gzip and stdin alike, and a DSB is seen before the packets that
// follow it.

// KeyLogSink takes the TLS key logs (NSS key log text) found in a pcapng.
// *tlsrec.KeyLog is one.
type KeyLogSink interface {
	AddKeyLog(nss []byte) error
}

// SetKeyLog hands every TLS key log the capture carries to k: those read
// so far at once, later ones as the Reader meets them. A key log that does
// not parse is skipped (the packets are still read).
func (r *Reader) SetKeyLog(k KeyLogSink) {
	r.keys = k
	for _, b := range r.pendingKeys {
		k.AddKeyLog(b)
	}
	r.pendingKeys = nil
}

func (r *Reader) foundKeyLog(b []byte) {
	if r.keys != nil {
		r.keys.AddKeyLog(b)
		return
	}
	r.pendingKeys = append(r.pendingKeys, b)
}

// pcapng block types and magic numbers.
const (
	pcapngSHB       = 0x0A0D0D0A
	pcapngDSB       = 0x0000000A
	pcapngByteOrder = 0x1A2B3C4D
	dsbTLSKeyLog    = 0x544c534b // "TLSK"
	maxDSB          = 64 << 20
)

// dsbTap passes a pcapng stream through unchanged, walking its block
// headers as they go by and handing the TLS key log of every Decryption
// Secrets Block to found. It keeps no block but a DSB; when the block
// structure does not make sense it stops watching and leaves the errors to
// the pcapng reader.
type dsbTap struct {
	r     io.Reader
	found func([]byte)

	order binary.ByteOrder
	hdr   [12]byte
	nh    int    // bytes of hdr filled
	skip  int64  // bytes of the current block still to pass
	dsb   []byte // a DSB after its type and length, being collected
	want  int    // its size
	off   bool   // stopped watching
}

func (t *dsbTap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if !t.off {
		t.watch(p[:n])
	}
	return n, err
}

func (t *dsbTap) watch(b []byte) {
	for len(b) > 0 && !t.off {
		switch {
		case t.skip > 0:
			k := min(t.skip, int64(len(b)))
			t.skip -= k
			b = b[k:]
		case t.dsb != nil:
			k := min(t.want-len(t.dsb), len(b))
			t.dsb = append(t.dsb, b[:k]...)
			b = b[k:]
			if len(t.dsb) == t.want {
				t.secrets(t.dsb[:t.want-4]) // without the trailing length
				t.dsb = nil
			}
		default:
			need := 8
			if t.nh >= 4 && binary.LittleEndian.Uint32(t.hdr[:4]) == pcapngSHB {
				need = 12 // the byte order is in the SHB body, after the length
			}
			k := copy(t.hdr[t.nh:need], b)
			t.nh += k
			b = b[k:]
			if t.nh == need && (need == 12 || binary.LittleEndian.Uint32(t.hdr[:4]) != pcapngSHB) {
				t.block()
			}
		}
	}
}

// block starts the block whose header is in hdr.
func (t *dsbTap) block() {
	t.nh = 0
	if binary.LittleEndian.Uint32(t.hdr[:4]) == pcapngSHB {
		switch {
		case binary.LittleEndian.Uint32(t.hdr[8:12]) == pcapngByteOrder:
			t.order = binary.LittleEndian
		case binary.BigEndian.Uint32(t.hdr[8:12]) == pcapngByteOrder:
			t.order = binary.BigEndian
		default:
			t.off = true
			return
		}
		n := t.order.Uint32(t.hdr[4:8])
		if n < 28 || n%4 != 0 {
			t.off = true
			return
		}
		t.skip = int64(n) - 12
		return
	}
	if t.order == nil {
		t.off = true
		return
	}
	typ, n := t.order.Uint32(t.hdr[:4]), t.order.Uint32(t.hdr[4:8])
	if n < 12 || n%4 != 0 {
		t.off = true
		return
	}
	if typ != pcapngDSB || n-12 < 8 || n-12 > maxDSB {
		t.skip = int64(n) - 8
		return
	}
	t.want = int(n) - 8
	t.dsb = make([]byte, 0, t.want)
}

// secrets handles a DSB body: secrets type, length, data.
func (t *dsbTap) secrets(body []byte) {
	typ, n := t.order.Uint32(body[:4]), t.order.Uint32(body[4:8])
	if typ != dsbTLSKeyLog || int64(n) > int64(len(body)-8) {
		return
	}
	t.found(body[8 : 8+n])
}
