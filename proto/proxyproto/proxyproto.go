// Package proxyproto parses the PROXY protocol header (haproxy's
// proxy-protocol.txt, versions 1 and 2) that a load balancer writes at the
// start of the connection it opens to the next proxy: the original client's
// address and the address it connected to, before the first byte of the
// client's own data.
//
// The Parser is pushed the first bytes of a connection's client direction
// in pieces of any size. It holds at most the 16-byte fixed part and the
// address block of a header (232 bytes), skips version 2's TLVs by length,
// and says as soon as the bytes cannot start a header, so a connection
// without one costs a look at its first bytes.
//
// It must not know TCP, HTTP or proxies: the caller decides where a
// connection starts and what to do with the bytes that follow the header.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// Header is what a PROXY header says.
type Header struct {
	Version uint8 // 1 or 2
	// Local: a version 2 LOCAL command (health checks from the balancer
	// itself): no addresses; the connection's own endpoints are the truth.
	Local bool
	// Family is "TCP4", "TCP6", "UDP4", "UDP6", "UNIX", "UNIXDGRAM" or
	// "UNKNOWN" (version 1's words; version 2's family and protocol map to
	// them).
	Family string
	// Src is the original client, Dst the address it connected to; both
	// invalid for LOCAL, UNKNOWN and the unix families.
	Src, Dst netip.AddrPort
	// Len is the header's length on the wire, TLVs included.
	Len int
}

// Status is where a Parser stands.
type Status uint8

const (
	NeedMore  Status = iota // the bytes so far may start a header
	Done                    // a whole header was read: Header, and Feed's n
	NotProxy                // the bytes do not start a header (Held gives back what was held)
	Malformed               // a PROXY signature followed by something that is no valid header
)

func (s Status) String() string {
	switch s {
	case NeedMore:
		return "need more"
	case Done:
		return "done"
	case NotProxy:
		return "not proxy"
	}
	return "malformed"
}

// ErrMalformed is the error of a Malformed header; its text says why.
var ErrMalformed = errors.New("malformed PROXY header")

const (
	v1Prefix = "PROXY "
	// v1Max is version 1's longest header, CRLF included.
	v1Max = 107
	// v2Sig is version 2's 12-byte signature.
	v2Sig = "\r\n\r\n\x00\r\nQUIT\n"
	// v2AddrMax is the longest address block read (two unix paths); TLVs
	// after it are skipped.
	v2AddrMax = 216
)

// Parser reads one header from the start of a connection. The zero value
// is ready; a Parser serves one connection.
type Parser struct {
	buf    [16 + v2AddrMax]byte
	n      int // bytes held in buf
	held   int // with NotProxy or Malformed: bytes held from earlier Feeds
	skip   int // version 2 bytes (TLVs) still to skip
	status Status
	h      Header
	why    string
}

// Feed takes the next bytes of the connection's client direction. It
// returns the status and how many bytes of data belong to the header:
//   - NeedMore: all of data was taken (held, or skipped TLVs);
//   - Done: data[:n] ends the header, data[n:] is the client's own data;
//   - NotProxy, Malformed: n is 0; Held returns the bytes held from
//     earlier Feeds, which came before data: the caller passes both on.
//
// Once the status is not NeedMore, Feed returns it again and takes nothing.
func (p *Parser) Feed(data []byte) (st Status, n int) {
	if p.status != NeedMore {
		return p.status, 0
	}
	if p.skip > 0 {
		n = min(p.skip, len(data))
		if p.skip -= n; p.skip == 0 {
			p.status = Done
		}
		return p.status, n
	}
	before := p.n
	p.n += copy(p.buf[p.n:], data)
	st, total := p.parse(p.buf[:p.n])
	switch st {
	case NeedMore:
		if p.n == len(p.buf) { // cannot happen: both versions decide within buf
			st = p.fail("header longer than " + strconv.Itoa(len(p.buf)) + " bytes")
			break
		}
		return NeedMore, len(data)
	case Done:
		n = total - before // the header's bytes in data
		if n > len(data) { // TLVs go on past data
			p.skip = n - len(data)
			return NeedMore, len(data)
		}
		p.status = Done
		return Done, n
	}
	p.status, p.held = st, before
	return st, 0
}

// Header returns what the header says, once Feed returned Done (or
// NeedMore while it skips TLVs: the addresses are known by then).
func (p *Parser) Header() Header { return p.h }

// Held returns, after NotProxy or Malformed, the bytes earlier Feeds gave
// the Parser: they came before the data of the Feed that decided. It is
// nil otherwise, and almost always then too (a first segment shorter than
// a signature is rare).
func (p *Parser) Held() []byte {
	if p.status != NotProxy && p.status != Malformed || p.held == 0 {
		return nil
	}
	return p.buf[:p.held]
}

// Err describes a Malformed header (nil otherwise).
func (p *Parser) Err() error {
	if p.status != Malformed {
		return nil
	}
	return errors.New(ErrMalformed.Error() + ": " + p.why)
}

func (p *Parser) fail(why string) Status {
	p.why = why
	return Malformed
}

// Start reports whether b (a connection's first bytes) starts, or may
// start once more bytes come, a PROXY header: the cheap test before a
// Parser is needed.
func Start(b []byte) bool {
	return hasPrefixOrIsPrefix(b, v2Sig) || hasPrefixOrIsPrefix(b, v1Prefix)
}

func hasPrefixOrIsPrefix(b []byte, sig string) bool {
	n := min(len(b), len(sig))
	return n > 0 && string(b[:n]) == sig[:n]
}

// parse looks at the bytes held so far; total is the header's length
// when Done.
func (p *Parser) parse(b []byte) (st Status, total int) {
	switch {
	case len(b) < len(v2Sig) && hasPrefixOrIsPrefix(b, v2Sig),
		len(b) < len(v1Prefix) && hasPrefixOrIsPrefix(b, v1Prefix):
		return NeedMore, 0
	case bytes.HasPrefix(b, []byte(v2Sig)):
		return p.parseV2(b)
	case bytes.HasPrefix(b, []byte(v1Prefix)):
		return p.parseV1(b)
	}
	return NotProxy, 0
}

// parseV1: "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n", or "PROXY
// UNKNOWN" followed by anything up to the CRLF; 107 bytes at most.
func (p *Parser) parseV1(b []byte) (Status, int) {
	end := bytes.Index(b[:min(len(b), v1Max)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= v1Max {
			return p.fail("version 1 header without CRLF in 107 bytes"), 0
		}
		return NeedMore, 0
	}
	line := b[len(v1Prefix):end]
	total := end + 2
	var f [5][]byte
	k := 0
	for len(line) > 0 && k < 5 {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			i = len(line)
		}
		f[k], k = line[:i], k+1
		line = line[min(i+1, len(line)):]
	}
	fam := string(f[0])
	if fam == "UNKNOWN" {
		p.h = Header{Version: 1, Family: fam, Len: total}
		return Done, total
	}
	if fam != "TCP4" && fam != "TCP6" || k != 5 || len(line) > 0 {
		return p.fail("version 1 header " + strconv.Quote(string(b[:end]))), 0
	}
	src, ok1 := netip.ParseAddr(string(f[1]))
	dst, ok2 := netip.ParseAddr(string(f[2]))
	sp, ok3 := port(f[3])
	dp, ok4 := port(f[4])
	want4 := fam == "TCP4"
	if ok1 != nil || ok2 != nil || !ok3 || !ok4 || src.Is4() != want4 || dst.Is4() != want4 || src.Zone() != "" || dst.Zone() != "" {
		return p.fail("version 1 header " + strconv.Quote(string(b[:end]))), 0
	}
	p.h = Header{Version: 1, Family: fam, Src: netip.AddrPortFrom(src, sp), Dst: netip.AddrPortFrom(dst, dp), Len: total}
	return Done, total
}

// port parses a decimal port without sign or leading zero.
func port(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return uint16(v), v <= 0xffff
}

// parseV2: the signature, version and command, family and protocol, the
// length of what follows, the address block, TLVs.
func (p *Parser) parseV2(b []byte) (Status, int) {
	if len(b) < 16 {
		return NeedMore, 0
	}
	if b[12]>>4 != 2 {
		return p.fail("version 2 signature with version " + strconv.Itoa(int(b[12]>>4))), 0
	}
	cmd := b[12] & 0x0f
	if cmd > 1 {
		return p.fail("version 2 command " + strconv.Itoa(int(cmd))), 0
	}
	length := int(binary.BigEndian.Uint16(b[14:]))
	total := 16 + length
	fam, addrLen := "UNKNOWN", 0
	switch b[13] {
	case 0x11:
		fam, addrLen = "TCP4", 12
	case 0x12:
		fam, addrLen = "UDP4", 12
	case 0x21:
		fam, addrLen = "TCP6", 36
	case 0x22:
		fam, addrLen = "UDP6", 36
	case 0x31:
		fam, addrLen = "UNIX", 216
	case 0x32:
		fam, addrLen = "UNIXDGRAM", 216
	case 0x00:
	default:
		if cmd == 1 {
			return p.fail("version 2 family/protocol 0x" + strconv.FormatUint(uint64(b[13]), 16)), 0
		}
	}
	if length < addrLen {
		return p.fail("version 2 length " + strconv.Itoa(length) + " shorter than its " + fam + " addresses"), 0
	}
	if len(b) < 16+addrLen {
		return NeedMore, 0
	}
	p.h = Header{Version: 2, Local: cmd == 0, Family: fam, Len: total}
	if cmd == 0 {
		return Done, total // LOCAL: the addresses, if any, are to be ignored
	}
	a := b[16:]
	switch addrLen {
	case 12:
		p.h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:]))
		p.h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:]))
	case 36:
		p.h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:]))
		p.h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:]))
	}
	return Done, total
}
