package tlsrec

import (
	"time"
	"unsafe"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file holds a TLS connection as the caller sees it: Conn, what it
// reports (Info, Alert, Record), and why a direction or its decryption
// stopped. The record layer is in record.go, the handshake in handshake.go
// and hello.go, the decryption in tlsdecrypt.go.
//
// Memory per connection is bounded: at most one record per direction is
// buffered (a protected record is at most 2^14+256 bytes), plus one
// plaintext buffer of the same size per direction while decrypting, plus a
// handshake message of interest (ClientHello, ServerHello,
// EncryptedExtensions) that spans records, up to maxHandshakeMsg.

// maxAlerts bounds Info.Alerts; later alerts are only counted.
const maxAlerts = 16

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
	// ClientRandom is the ClientHello's random: a proxy that passes TLS
	// through (mode tcp, SNI routing) relays the same ClientHello, so the
	// two legs of one session share it.
	ClientRandom [32]byte
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

func (c *Conn) addAlert(a Alert) {
	if len(c.inf.Alerts) >= maxAlerts {
		c.inf.AlertsDropped++
		return
	}
	c.inf.Alerts = append(c.inf.Alerts, a)
}
