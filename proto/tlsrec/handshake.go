package tlsrec

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file holds the handshake: each direction's handshake messages
// reassembled from records (hsAssembler), and what the ones that matter
// do to the connection: which direction is the client's, the negotiated
// version, and the keys (setupKeys, and the key changes of TLS 1.3). The
// hellos themselves are parsed in hello.go.

// maxHandshakeMsg bounds a ClientHello, ServerHello or EncryptedExtensions
// that is reassembled across records; larger ones are skipped.
const maxHandshakeMsg = 1 << 16

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
