package tlsrec

import (
	"encoding/binary"
	"iter"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// This file parses the hello messages (ClientHello, ServerHello,
// EncryptedExtensions) and their extensions, in TLS's presentation
// language (tlsReader).

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
	inf.ClientRandom = c.clientRandom
	inf.CipherSuites = 0
	for i := 0; i+1 < len(suites); i += 2 {
		if !isGREASE(binary.BigEndian.Uint16(suites[i:])) {
			inf.CipherSuites++
		}
	}
	inf.SNI, inf.ALPNOffered, inf.OfferedVersions = "", nil, nil
	exts, _ := r.vec16() // absent in old ClientHellos
	for typ, data := range extensions(exts) {
		switch typ {
		case extServerName:
			inf.SNI = parseSNI(data)
		case extALPN:
			inf.ALPNOffered = parseALPN(data)
		case extSupportedVersions:
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
	for typ, data := range extensions(exts) {
		switch typ {
		case extSupportedVersions:
			if len(data) == 2 {
				version = binary.BigEndian.Uint16(data)
			}
		case extALPN:
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

// parseEncryptedExtensions returns the ALPN protocol the server selected.
func parseEncryptedExtensions(m []byte) (string, bool) {
	r := tlsReader(m)
	exts, ok := r.vec16()
	if !ok {
		return "", false
	}
	for typ, data := range extensions(exts) {
		if typ == extALPN {
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

// Extension types (RFC 8446 §4.2).
const (
	extServerName        = 0
	extALPN              = 16
	extSupportedVersions = 43
)

// extensions yields the type and data of each extension of an extension
// list, up to its end or to the first malformed one.
func extensions(list []byte) iter.Seq2[uint16, []byte] {
	return func(yield func(uint16, []byte) bool) {
		for r := tlsReader(list); len(r) >= 4; {
			typ, _ := r.u16()
			data, ok := r.vec16()
			if !ok || !yield(typ, data) {
				return
			}
		}
	}
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
