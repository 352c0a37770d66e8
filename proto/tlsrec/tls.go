package tlsrec

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
	"unsafe"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file holds the TLS layer: a push-style record parser per direction
// that extracts handshake metadata (SNI, ALPN, versions, cipher, alerts)
// without keys and, given a key log with the session's secrets, decrypts
// the application data so it can feed the HTTP and WebSocket parsers.
//
// Memory per connection is bounded: at most one record per direction is
// buffered (a protected record is at most 2^14+256 bytes), plus one
// plaintext buffer of the same size per direction while decrypting, plus a
// handshake message of interest (ClientHello, ServerHello,
// EncryptedExtensions) that spans records, up to maxHandshakeMsg.

const (
	tlsRecordHeader = 5
	// maxRecordLen is the largest record body accepted: 2^14 plaintext plus
	// 256 of expansion (RFC 8446 §5.2). TLS 1.2 allows 2^14+2048 in theory;
	// AEAD suites use 24 (GCM) or 16 (ChaCha20) bytes of it.
	maxRecordLen = 1<<14 + 256
	// maxHandshakeMsg bounds a ClientHello, ServerHello or EncryptedExtensions
	// that is reassembled across records; larger ones are skipped.
	maxHandshakeMsg = 1 << 16
	// maxAlerts bounds Info.Alerts; later alerts are only counted.
	maxAlerts = 16
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

// TLS handshake message types.
const (
	hsClientHello         = 1
	hsServerHello         = 2
	hsNewSessionTicket    = 4
	hsEncryptedExtensions = 8
	hsFinished            = 20
	hsKeyUpdate           = 24
)

// TLS versions.
const (
	versionTLS12 = 0x0303
	versionTLS13 = 0x0304
)

// helloRetryRandom is the ServerHello.random of a HelloRetryRequest
// (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest").
var helloRetryRandom = [32]byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// Alert is one alert seen on the connection.
type Alert struct {
	Time       time.Time
	FromClient bool
	// Level is 1 (warning) or 2 (fatal); Description the alert code (RFC
	// 8446 §6: 0 close_notify, 40 handshake_failure, 42 bad_certificate, 48
	// unknown_ca, 70 protocol_version, 112 unrecognized_name, 120
	// no_application_protocol, …). Both are 0 when Opaque.
	Level, Description uint8
	// Encrypted: the alert was sent under record protection (TLS 1.2 after
	// ChangeCipherSpec, TLS 1.3 after ServerHello).
	Encrypted bool
	// Opaque: encrypted and not decrypted, so Level and Description are
	// unknown. In TLS 1.3 alerts travel as application_data records; without
	// keys a protected record of exactly 19 bytes (2 + content type + tag)
	// during the handshake is reported as an opaque alert, since no
	// handshake message is that small.
	Opaque bool
}

// Info is what a TLS connection has shown so far.
type Info struct {
	// From the ClientHello: server_name, the offered application protocols,
	// the offered versions (supported_versions, or the legacy version when
	// it is absent; GREASE values left out) and how many cipher suites it
	// offered (GREASE left out).
	SNI             string
	ALPNOffered     []string
	OfferedVersions []uint16
	CipherSuites    int
	// Negotiated: Version (0x0303 TLS 1.2, 0x0304 TLS 1.3 from the
	// ServerHello's supported_versions), Cipher, and ALPN (for TLS 1.2 from
	// the ServerHello; for TLS 1.3 from EncryptedExtensions, which is only
	// visible when decrypting).
	ALPN    string
	Version uint16
	Cipher  uint16

	ClientHello, ServerHello bool
	// HelloRetry: the server answered the first ClientHello with a
	// HelloRetryRequest.
	HelloRetry bool
	// HandshakeDone: TLS 1.2: ChangeCipherSpec seen both ways. TLS 1.3 when
	// decrypting: both Finished messages seen. TLS 1.3 without keys: the
	// client's Finished (its first protected record that is not alert-sized)
	// followed by another protected record (not alert-sized) either way.
	HandshakeDone bool
	// EarlyData: the client sent 0-RTT data (not decrypted).
	EarlyData bool

	// Alerts in the order seen (at most 16; AlertsDropped counts the rest).
	Alerts        []Alert
	AlertsDropped int

	// Decrypting: the key log had this session's secrets, and decryption
	// started and has not failed in both directions.
	Decrypting bool
	// DecryptErr says why decryption did not start or stopped (the first
	// reason): no key for the client random, an unsupported suite or
	// version, a record that failed to authenticate, bytes lost.
	DecryptErr string

	// Malformed is set when a direction stopped being parsed as TLS (not a
	// record header, an oversized record): its first reason.
	Malformed string
	// Gaps counts holes in the byte stream (gap calls); a direction with a
	// gap is not parsed any further.
	Gaps int
	// Records counts the records per direction, indexed by the sender's
	// flow.Role.
	Records [2]int
	// AppRecords are the first application_data records after the client's
	// Finished (at most AppRecords per direction), in order: without keys,
	// when and how big they were is what pairs the connection with the
	// upstream leg a proxy opened for it (the request arrives just before
	// the proxy connects upstream; relayed frames keep their sizes).
	AppRecords []Record
}

// Record is one protected record: its arrival and length (the record
// header's, so without the 5-byte header).
type Record struct {
	At         time.Time
	Len        int
	FromClient bool
}

// AppRecords bounds Info.AppRecords per direction.
const AppRecords = 8

// Conn follows one TCP connection carrying TLS in both directions, as the
// caller numbers them (flow.Dir). The ClientHello says which direction is
// the client's (flow.Fwd until it is seen); the plaintext callback gets the
// caller's numbers.
type Conn struct {
	keys *KeyLog
	// plainOut receives the decrypted bytes (NewConn), kept as a func value
	// made once (a method value per call would allocate per segment).
	plainOut func(flow.Dir, []byte, time.Time)
	inf      Info
	dir      [2]tlsDir
	cli      flow.Dir // direction the client sends in
	told     int      // records NextAppRecords has returned

	sawCH, sawSH bool
	clientRandom [32]byte
	serverRandom [32]byte
	version      uint16 // negotiated; 0 until the ServerHello
	suite        *tlsSuite
	secrets      *sessionSecrets
	haveKeys     bool           // decryption was set up
	keys12       [2]*recordKeys // TLS 1.2 keys by sender's role, installed at ChangeCipherSpec
	cliFinGuess  bool           // TLS 1.3 without keys: the client's Finished was seen
	offered13    bool           // the ClientHello offered TLS 1.3
}

// Footprint estimates the bytes c holds (its struct, buffers and keys),
// for a memory budget. It allocates nothing.
func (c *Conn) Footprint() int {
	n := int(unsafe.Sizeof(*c))
	for d := range c.dir {
		n += cap(c.dir[d].buf) + cap(c.dir[d].pt) + cap(c.dir[d].hs.buf)
		if c.keys12[d] != nil {
			n += 512 // the AEAD's expanded key schedule
		}
	}
	if c.haveKeys {
		n += 1024 // TLS 1.3 traffic keys by direction
	}
	return n
}

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

// newTLSConn returns a Conn; keys may be nil (metadata only).
func newTLSConn(keys *KeyLog) *Conn {
	return &Conn{keys: keys}
}

// NewConn returns a Conn that decrypts with keys (nil: metadata only) and
// hands the plaintext of direction d, captured at t, to plain.
func NewConn(keys *KeyLog, plain func(d flow.Dir, plain []byte, t time.Time)) *Conn {
	c := newTLSConn(keys)
	c.plainOut = plain
	return c
}

// Feed parses the next in-order bytes b of direction d, captured at t;
// plaintext goes to the func given to NewConn.
func (c *Conn) Feed(d flow.Dir, b []byte, t time.Time) { c.feed(d, b, t, c.plainOut) }

// Gap tells direction d that bytes were lost: it is parsed no further.
func (c *Conn) Gap(d flow.Dir) { c.gap(d) }

// Info returns what the connection has shown so far: the Conn's own
// record, valid until the next Feed, not to be modified.
func (c *Conn) Info() *Info { return c.info() }

// NextAppRecords returns Info().AppRecords up to the oldest record not yet
// returned, or false when there is none: one answer per record, however
// the bytes were cut. The slice is never written again (AppRecords only
// grows within its capacity), so it may be kept.
func (c *Conn) NextAppRecords() ([]Record, bool) {
	if c.told >= len(c.inf.AppRecords) {
		return nil, false
	}
	c.told++
	return c.inf.AppRecords[:c.told:c.told], true
}

// info returns the metadata so far. The result is the connection's own
// record: valid until the next feed, not to be modified.
func (c *Conn) info() *Info {
	c.inf.Decrypting = c.haveKeys && !(c.dir[0].failed && c.dir[1].failed)
	return &c.inf
}

// role is who sends in direction d.
func (c *Conn) role(d flow.Dir) flow.Role {
	if d == c.cli {
		return flow.Client
	}
	return flow.Server
}

func (c *Conn) dirName(d flow.Dir) string {
	if d == c.cli {
		return "client→server"
	}
	return "server→client"
}

// decryptFailed records why decryption stopped in direction d (the first
// reason only) and stops it.
func (c *Conn) decryptFailed(d flow.Dir, why string) {
	dd := &c.dir[d]
	dd.keys, dd.switchTo = nil, nil
	dd.failed = true
	dd.pt = nil
	if c.inf.DecryptErr == "" {
		c.inf.DecryptErr = c.dirName(d) + ": " + why
	}
}

// noDecrypt records why decryption cannot start for this session.
func (c *Conn) noDecrypt(why string) {
	if c.inf.DecryptErr == "" {
		c.inf.DecryptErr = why
	}
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

// malformed stops direction d as not TLS.
func (c *Conn) malformed(d flow.Dir, why string) {
	if c.inf.Malformed == "" {
		c.inf.Malformed = c.dirName(d) + ": " + why
	}
	dd := &c.dir[d]
	if dd.keys != nil || dd.switchTo != nil {
		c.decryptFailed(d, "stopped: "+why)
	}
	dd.stop()
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

func (c *Conn) addAlert(a Alert) {
	if len(c.inf.Alerts) >= maxAlerts {
		c.inf.AlertsDropped++
		return
	}
	c.inf.Alerts = append(c.inf.Alerts, a)
}

// handshake handles one handshake message of direction d. msg is its body;
// whole is false when it was too large to keep (msg is then nil).
func (c *Conn) handshake(d flow.Dir, typ uint8, msg []byte, whole bool, t time.Time) {
	dd := &c.dir[d]
	switch typ {
	case hsClientHello:
		if c.sawSH || c.sawCH && d != c.cli {
			return // renegotiation (encrypted anyway), or from the server
		}
		c.cli, c.sawCH, c.inf.ClientHello = d, true, true
		if whole {
			c.parseClientHello(msg)
		}
	case hsServerHello:
		if c.sawSH || !whole || c.sawCH && d == c.cli {
			return
		}
		if !c.sawCH {
			c.cli = d.Reverse()
		}
		c.parseServerHello(d, msg)
	case hsEncryptedExtensions:
		if whole && d != c.cli {
			if alpn, ok := parseEncryptedExtensions(msg); ok {
				c.inf.ALPN = alpn
			}
		}
	case hsFinished:
		if !dd.protected {
			return
		}
		dd.finished = true
		if c.version == versionTLS13 && dd.keys != nil {
			s := c.secrets.serverAP
			if d == c.cli {
				s = c.secrets.clientAP
			}
			if s == nil {
				dd.switchErr = "the key log has no application traffic secret for this session"
				return
			}
			k, err := newKeys13(c.suite, s)
			if err != nil {
				dd.switchErr = err.Error()
				return
			}
			dd.switchTo = k
		}
	case hsKeyUpdate:
		if c.version == versionTLS13 && dd.keys != nil {
			k, err := dd.keys.next()
			if err != nil {
				dd.switchErr = err.Error()
				return
			}
			dd.switchTo = k
		}
	}
}

// parseClientHello fills the ClientHello metadata; false if it is malformed.
func (c *Conn) parseClientHello(m []byte) bool {
	r := tlsReader(m)
	legacy, ok := r.u16()
	if !ok {
		return false
	}
	random, ok := r.bytes(32)
	if !ok {
		return false
	}
	if _, ok = r.vec8(); !ok { // session id
		return false
	}
	suites, ok := r.vec16()
	if !ok || len(suites)%2 != 0 {
		return false
	}
	if _, ok = r.vec8(); !ok { // compression methods
		return false
	}
	inf := &c.inf
	copy(c.clientRandom[:], random)
	inf.CipherSuites = 0
	for i := 0; i+1 < len(suites); i += 2 {
		if !isGREASE(binary.BigEndian.Uint16(suites[i:])) {
			inf.CipherSuites++
		}
	}
	inf.SNI, inf.ALPNOffered, inf.OfferedVersions = "", nil, nil
	exts, _ := r.vec16() // absent in old ClientHellos
	for er := tlsReader(exts); len(er) >= 4; {
		typ, _ := er.u16()
		data, ok := er.vec16()
		if !ok {
			break
		}
		switch typ {
		case 0: // server_name
			inf.SNI = parseSNI(data)
		case 16: // application_layer_protocol_negotiation
			inf.ALPNOffered = parseALPN(data)
		case 43: // supported_versions
			vr := tlsReader(data)
			list, ok := vr.vec8()
			if !ok {
				break
			}
			for i := 0; i+1 < len(list); i += 2 {
				if v := binary.BigEndian.Uint16(list[i:]); !isGREASE(v) {
					inf.OfferedVersions = append(inf.OfferedVersions, v)
				}
			}
		}
	}
	if inf.OfferedVersions == nil {
		inf.OfferedVersions = []uint16{legacy}
	}
	for _, v := range inf.OfferedVersions {
		if v == versionTLS13 {
			c.offered13 = true
		}
	}
	return true
}

// parseServerHello handles the ServerHello (or HelloRetryRequest) from
// direction d and sets up decryption.
func (c *Conn) parseServerHello(d flow.Dir, m []byte) {
	r := tlsReader(m)
	legacy, ok := r.u16()
	if !ok {
		return
	}
	random, ok := r.bytes(32)
	if !ok {
		return
	}
	if _, ok = r.vec8(); !ok {
		return
	}
	cs, ok := r.u16()
	if !ok {
		return
	}
	if _, ok = r.u8(); !ok { // compression
		return
	}
	version, alpn := legacy, ""
	exts, _ := r.vec16()
	for er := tlsReader(exts); len(er) >= 4; {
		typ, _ := er.u16()
		data, ok := er.vec16()
		if !ok {
			break
		}
		switch typ {
		case 43:
			if len(data) == 2 {
				version = binary.BigEndian.Uint16(data)
			}
		case 16:
			if l := parseALPN(data); len(l) == 1 {
				alpn = l[0]
			}
		}
	}
	inf := &c.inf
	inf.Version, inf.Cipher = version, cs
	if [32]byte(random) == helloRetryRandom {
		inf.HelloRetry = true
		return // the real ServerHello follows a second ClientHello
	}
	c.sawSH = true
	inf.ServerHello = true
	copy(c.serverRandom[:], random)
	c.version = version
	if version != versionTLS13 {
		inf.ALPN = alpn
	}
	if version == versionTLS13 {
		// Everything after the ServerHello is protected, both ways.
		c.dir[0].protected, c.dir[1].protected = true, true
		c.dir[0].hs.reset()
		c.dir[1].hs.reset()
	}
	c.setupKeys(d)
}

// setupKeys looks the session up in the key log and prepares decryption.
// sd is the server's direction.
func (c *Conn) setupKeys(sd flow.Dir) {
	// Len, not nil: a key log filled from the capture as it is read may
	// still be empty, which means no key log at all.
	if c.keys.Len() == 0 {
		return
	}
	cr := hex.EncodeToString(c.clientRandom[:8])
	s := c.keys.lookup(&c.clientRandom)
	if s == nil {
		c.noDecrypt("no key for client random " + cr + "… in the key log")
		return
	}
	suite := suiteByID(c.inf.Cipher)
	switch {
	case c.version != versionTLS12 && c.version != versionTLS13:
		c.noDecrypt(fmt.Sprintf("TLS version 0x%04x is not supported for decryption", c.version))
		return
	case suite == nil || suite.tls13 != (c.version == versionTLS13):
		c.noDecrypt(fmt.Sprintf("cipher suite 0x%04x is not supported for decryption", c.inf.Cipher))
		return
	}
	c.suite, c.secrets = suite, s
	cd := sd.Reverse()
	if c.version == versionTLS13 {
		if s.clientHS == nil || s.serverHS == nil {
			c.noDecrypt("the key log has no handshake traffic secrets for client random " + cr + "…")
			return
		}
		ck, err := newKeys13(suite, s.clientHS)
		if err != nil {
			c.noDecrypt(err.Error())
			return
		}
		sk, err := newKeys13(suite, s.serverHS)
		if err != nil {
			c.noDecrypt(err.Error())
			return
		}
		c.dir[cd].keys, c.dir[sd].keys = ck, sk
		c.haveKeys = true
		return
	}
	if s.master == nil {
		c.noDecrypt("no key for client random " + cr + "… in the key log (only TLS 1.3 secrets)")
		return
	}
	ck, sk, err := newKeys12(suite, s.master, &c.clientRandom, &c.serverRandom)
	if err != nil {
		c.noDecrypt(err.Error())
		return
	}
	c.keys12[flow.Client], c.keys12[flow.Server] = ck, sk
	c.haveKeys = true
}

// parseEncryptedExtensions returns the ALPN protocol the server selected.
func parseEncryptedExtensions(m []byte) (string, bool) {
	r := tlsReader(m)
	exts, ok := r.vec16()
	if !ok {
		return "", false
	}
	for er := tlsReader(exts); len(er) >= 4; {
		typ, _ := er.u16()
		data, ok := er.vec16()
		if !ok {
			break
		}
		if typ == 16 {
			if l := parseALPN(data); len(l) == 1 {
				return l[0], true
			}
		}
	}
	return "", false
}

func parseSNI(data []byte) string {
	r := tlsReader(data)
	list, ok := r.vec16()
	if !ok {
		return ""
	}
	for lr := tlsReader(list); len(lr) > 0; {
		typ, ok := lr.u8()
		if !ok {
			break
		}
		name, ok := lr.vec16()
		if !ok {
			break
		}
		if typ == 0 {
			return string(name)
		}
	}
	return ""
}

func parseALPN(data []byte) []string {
	r := tlsReader(data)
	list, ok := r.vec16()
	if !ok {
		return nil
	}
	var out []string
	for lr := tlsReader(list); len(lr) > 0; {
		p, ok := lr.vec8()
		if !ok {
			break
		}
		out = append(out, string(p))
	}
	return out
}

// isGREASE reports RFC 8701 GREASE values (0x0a0a, 0x1a1a, … 0xfafa).
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// tlsReader reads TLS presentation-language fields from a byte slice.
type tlsReader []byte

func (r *tlsReader) u8() (uint8, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return v, true
}

func (r *tlsReader) u16() (uint16, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*r)
	*r = (*r)[2:]
	return v, true
}

func (r *tlsReader) bytes(n int) ([]byte, bool) {
	if len(*r) < n {
		return nil, false
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	return v, true
}

func (r *tlsReader) vec8() ([]byte, bool) {
	n, ok := r.u8()
	if !ok {
		return nil, false
	}
	return r.bytes(int(n))
}

func (r *tlsReader) vec16() ([]byte, bool) {
	n, ok := r.u16()
	if !ok {
		return nil, false
	}
	return r.bytes(int(n))
}

// hsAssembler cuts a direction's handshake byte stream into messages:
// messages may span records and records may hold several messages. Only
// messages whose body is needed are buffered, up to maxHandshakeMsg; others
// are skipped by length.
type hsAssembler struct {
	hdr    [4]byte
	nhdr   int
	typ    uint8
	remain int  // body bytes still to come
	keep   bool // buffering this message's body
	buf    []byte
}

func (h *hsAssembler) reset() {
	h.nhdr, h.remain, h.keep = 0, 0, false
	if cap(h.buf) > 4096 {
		h.buf = nil
	} else {
		h.buf = h.buf[:0]
	}
}

// wantBody reports whether the body of a handshake message of type t is parsed.
func wantBody(t uint8) bool {
	return t == hsClientHello || t == hsServerHello || t == hsEncryptedExtensions
}

// feed takes handshake-protocol bytes and calls fn for every complete
// message with its body (whole=false and body nil when the body was too
// large to keep or is not needed).
func (h *hsAssembler) feed(b []byte, fn func(typ uint8, body []byte, whole bool)) {
	for len(b) > 0 {
		if h.nhdr < 4 {
			if h.nhdr == 0 && len(b) >= 4 {
				n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
				if len(b) >= 4+n {
					// The whole message is here: no copy.
					fn(b[0], b[4:4+n], true)
					b = b[4+n:]
					continue
				}
			}
			k := copy(h.hdr[h.nhdr:], b)
			h.nhdr += k
			b = b[k:]
			if h.nhdr < 4 {
				return
			}
			h.typ = h.hdr[0]
			h.remain = int(h.hdr[1])<<16 | int(h.hdr[2])<<8 | int(h.hdr[3])
			h.keep = wantBody(h.typ) && h.remain <= maxHandshakeMsg
			if h.keep {
				h.buf = growBuf(h.buf[:0], h.remain)
			}
		}
		k := min(h.remain, len(b))
		if h.keep {
			h.buf = append(h.buf, b[:k]...)
		}
		h.remain -= k
		b = b[k:]
		if h.remain > 0 {
			return
		}
		if h.keep {
			fn(h.typ, h.buf, true)
		} else {
			fn(h.typ, nil, !wantBody(h.typ))
		}
		h.nhdr, h.keep = 0, false
		if cap(h.buf) > 4096 {
			h.buf = nil
		} else {
			h.buf = h.buf[:0]
		}
	}
}
