package tlsrec

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file holds the record layer: each direction's bytes cut into
// records (reassembled across feeds when they span them), protected
// records decrypted or accounted for, alerts and ChangeCipherSpec; the
// handshake messages records carry go to handshake.go.

const (
	tlsRecordHeader = 5
	// maxRecordLen is the largest record body accepted: 2^14 plaintext plus
	// 256 of expansion (RFC 8446 §5.2). TLS 1.2 allows 2^14+2048 in theory;
	// AEAD suites use 24 (GCM) or 16 (ChaCha20) bytes of it.
	maxRecordLen = 1<<14 + 256
	// tls13AlertRecordLen is the body length of a TLS 1.3 protected alert
	// without padding: 2 bytes + inner content type + 16-byte AEAD tag.
	tls13AlertRecordLen = 2 + 1 + 16
)

// TLS record content types.
const (
	recChangeCipherSpec = 20
	recAlert            = 21
	recHandshake        = 22
	recApplicationData  = 23
	recHeartbeat        = 24
)

// tlsDir is the state of one direction.
type tlsDir struct {
	buf     []byte // a partial record, header included (≤ 5+maxRecordLen)
	pt      []byte // plaintext of the record being decrypted
	hs      hsAssembler
	stopped bool // not parsed any more (gap, not TLS)
	// protected: the records of this direction are encrypted (TLS 1.2 after
	// its ChangeCipherSpec, TLS 1.3 after the ServerHello).
	protected bool
	keys      *recordKeys // current decryption keys; nil when not decrypting
	failed    bool        // decryption stopped for good
	finished  bool        // its Finished was decrypted
	// switchTo: keys to install after the current record (TLS 1.3 Finished,
	// KeyUpdate: a key change never happens inside a record).
	switchTo  *recordKeys
	switchErr string
	// missing: why the keys for the next records are unknown; reported as
	// DecryptErr only if a protected record does come (a client that refuses
	// the certificate never logs the application secrets, and needs none).
	missing string
	ccs     bool
}

// gap says bytes were lost in direction d: record boundaries and sequence
// numbers are unknown from here, so the direction is not parsed further.
func (c *Conn) gap(d flow.Dir) {
	c.inf.Gaps++
	dd := &c.dir[d]
	if dd.keys != nil || dd.switchTo != nil || c.keys12[c.role(d)] != nil {
		c.decryptFailed(d, "bytes lost in the capture; decryption stopped")
	}
	dd.stop()
}

func (dd *tlsDir) stop() {
	dd.stopped = true
	dd.buf, dd.pt = nil, nil
	dd.hs.reset()
	dd.hs.buf = nil
}

// checkHeader validates a record header and returns the body length, or -1
// after stopping the direction.
func (c *Conn) checkHeader(d flow.Dir, h []byte) int {
	typ, major := h[0], h[1]
	n := int(binary.BigEndian.Uint16(h[3:5]))
	if typ < recChangeCipherSpec || typ > recHeartbeat || major != 3 {
		c.malformed(d, fmt.Sprintf("not a TLS record (type 0x%02x, version 0x%02x%02x)", typ, h[1], h[2]))
		return -1
	}
	if n > maxRecordLen {
		c.malformed(d, fmt.Sprintf("record of %d bytes exceeds the limit of %d", n, maxRecordLen))
		return -1
	}
	return n
}

// feed takes the next in-order bytes of direction d and calls out with
// decrypted application data, in order per direction, when the key log
// allows. plain is only valid during the call.
func (c *Conn) feed(d flow.Dir, b []byte, t time.Time, out func(d flow.Dir, plain []byte, t time.Time)) {
	dd := &c.dir[d]
	for len(b) > 0 && !dd.stopped {
		if len(dd.buf) == 0 && len(b) >= tlsRecordHeader {
			// Fast path: the record header is in b.
			n := c.checkHeader(d, b)
			if n < 0 {
				return
			}
			if len(b) >= tlsRecordHeader+n {
				c.record(d, b[:tlsRecordHeader], b[tlsRecordHeader:tlsRecordHeader+n], t, out)
				b = b[tlsRecordHeader+n:]
				continue
			}
			dd.buf = growBuf(dd.buf, tlsRecordHeader+n)
			dd.buf = append(dd.buf, b...)
			return
		}
		// Slow path: a record (or its header) spans feeds.
		if len(dd.buf) < tlsRecordHeader {
			dd.buf = growBuf(dd.buf, tlsRecordHeader)
			take := min(tlsRecordHeader-len(dd.buf), len(b))
			dd.buf = append(dd.buf, b[:take]...)
			b = b[take:]
			if len(dd.buf) < tlsRecordHeader {
				return
			}
		}
		n := c.checkHeader(d, dd.buf)
		if n < 0 {
			return
		}
		dd.buf = growBuf(dd.buf, tlsRecordHeader+n)
		take := min(tlsRecordHeader+n-len(dd.buf), len(b))
		dd.buf = append(dd.buf, b[:take]...)
		b = b[take:]
		if len(dd.buf) < tlsRecordHeader+n {
			return
		}
		c.record(d, dd.buf[:tlsRecordHeader], dd.buf[tlsRecordHeader:], t, out)
		if !dd.stopped {
			dd.buf = dd.buf[:0]
		}
	}
}

// growBuf makes sure b (kept at its length) can hold n bytes without
// reallocating while it is filled. It at least doubles the capacity, up to
// one maximal record, so records of growing size (TLS stacks start with
// small records) cost few allocations; n beyond that is given exactly.
func growBuf(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	c := min(max(n, 2*cap(b)), tlsRecordHeader+maxRecordLen)
	nb := make([]byte, len(b), max(c, n))
	copy(nb, b)
	return nb
}

// record handles one complete record of direction d.
func (c *Conn) record(d flow.Dir, hdr, body []byte, t time.Time, out func(flow.Dir, []byte, time.Time)) {
	dd := &c.dir[d]
	fromClient := d == c.cli
	role := c.role(d)
	c.inf.Records[role]++
	typ := hdr[0]
	if typ == recApplicationData && dd.protected && c.inf.Records[role] <= 64 {
		c.noteAppRecord(fromClient, len(body), t)
	}

	switch {
	case typ == recHeartbeat:
		return
	case typ == recChangeCipherSpec:
		c.changeCipherSpec(d)
		return
	case typ == recAlert && len(body) == 2:
		// A 2-byte alert is always plaintext: protected ones carry a tag.
		c.alerts(d, body, t, false)
		return
	case !dd.protected:
		switch typ {
		case recHandshake:
			dd.hs.feed(body, func(mt uint8, msg []byte, whole bool) { c.handshake(d, mt, msg, whole, t) })
		case recAlert:
			c.alerts(d, body, t, false)
		case recApplicationData:
			if fromClient && !c.sawSH && c.offered13 {
				c.inf.EarlyData = true // 0-RTT: its own key epoch, skipped
			}
		}
		return
	}

	// A protected record.
	if dd.keys == nil {
		if dd.missing != "" {
			c.decryptFailed(d, dd.missing)
			dd.missing = ""
		}
		c.opaqueRecord(d, typ, len(body), t)
		return
	}
	// A record reassembled in dd.buf is decrypted in place; one that came
	// whole in the caller's bytes (which are not ours to change) into dd.pt.
	inPlace := len(dd.buf) > 0 && &dd.buf[0] == &hdr[0]
	if !inPlace {
		dd.pt = growBuf(dd.pt[:0], len(body))
	}
	plain, inner, err := dd.keys.open(dd.pt, inPlace, hdr, body)
	if err != nil {
		c.decryptFailed(d, err.Error())
		c.opaqueRecord(d, typ, len(body), t)
		return
	}
	switch inner {
	case recApplicationData:
		c.checkDone(true)
		if len(plain) > 0 && out != nil {
			out(d, plain, t)
		}
	case recAlert:
		c.alerts(d, plain, t, true)
	case recHandshake:
		dd.hs.feed(plain, func(mt uint8, msg []byte, whole bool) { c.handshake(d, mt, msg, whole, t) })
	}
	// Key changes (TLS 1.3 Finished, KeyUpdate) take effect with the next record.
	if dd.switchErr != "" {
		dd.keys, dd.missing, dd.switchErr = nil, dd.switchErr, ""
	} else if dd.switchTo != nil {
		dd.keys, dd.switchTo = dd.switchTo, nil
		dd.hs.reset()
	}
	c.checkDone(false)
}

// noteAppRecord keeps a protected application_data record's time and size
// once the client's Finished is behind (TLS 1.3 sends its handshake in such
// records too), up to AppRecords per direction.
func (c *Conn) noteAppRecord(fromClient bool, n int, t time.Time) {
	if c.version == versionTLS13 && !c.cliFinGuess && !c.dir[c.cli].finished {
		return
	}
	k := 0
	for _, r := range c.inf.AppRecords {
		if r.FromClient == fromClient {
			k++
		}
	}
	if k >= AppRecords {
		return
	}
	if c.inf.AppRecords == nil {
		c.inf.AppRecords = make([]Record, 0, 2*AppRecords)
	}
	c.inf.AppRecords = append(c.inf.AppRecords, Record{At: t, Len: n, FromClient: fromClient})
}

// opaqueRecord accounts for a protected record that is not decrypted.
func (c *Conn) opaqueRecord(d flow.Dir, typ uint8, n int, t time.Time) {
	fromClient := d == c.cli
	if c.version != versionTLS13 {
		if typ == recAlert {
			c.addAlert(Alert{Time: t, FromClient: fromClient, Encrypted: true, Opaque: true})
		}
		return
	}
	if c.inf.HandshakeDone {
		return
	}
	if n == tls13AlertRecordLen {
		c.addAlert(Alert{Time: t, FromClient: fromClient, Encrypted: true, Opaque: true})
		return
	}
	if c.dir[c.cli].finished || c.cliFinGuess {
		// A record after the client's Finished: the handshake is over.
		c.inf.HandshakeDone = true
		return
	}
	if fromClient {
		c.cliFinGuess = true // the client's first protected record is its Finished
	}
}

// checkDone sets HandshakeDone for TLS 1.3 when both Finished were
// decrypted, or when application data follows the client's Finished.
func (c *Conn) checkDone(appData bool) {
	if c.version != versionTLS13 || c.inf.HandshakeDone {
		return
	}
	cf := c.dir[c.cli].finished || c.cliFinGuess
	if cf && (c.dir[c.cli.Reverse()].finished || appData) {
		c.inf.HandshakeDone = true
	}
}

func (c *Conn) changeCipherSpec(d flow.Dir) {
	dd := &c.dir[d]
	if c.version == versionTLS13 || c.version == 0 || dd.ccs {
		// TLS 1.3 middlebox compatibility (RFC 8446 §D.4), or a CCS before
		// the ServerHello: carries nothing.
		return
	}
	dd.ccs = true
	dd.protected = true
	dd.hs.reset()
	if k := c.keys12[c.role(d)]; k != nil && !dd.failed {
		dd.keys = k
		c.keys12[c.role(d)] = nil
	}
	if c.dir[0].ccs && c.dir[1].ccs {
		c.inf.HandshakeDone = true
	}
}

// alerts records the alerts in an alert record's (plaintext) body.
func (c *Conn) alerts(d flow.Dir, b []byte, t time.Time, encrypted bool) {
	for ; len(b) >= 2; b = b[2:] {
		c.addAlert(Alert{Time: t, FromClient: d == c.cli, Level: b[0], Description: b[1], Encrypted: encrypted})
	}
}
