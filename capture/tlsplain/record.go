package tlsplain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The ring's records: a fixed header (struct rec_hdr in bpf/tlsplain.c,
// host byte order, which is little-endian on every architecture the
// object is built for) and the plaintext after it. Decode reads them
// without reflection and without allocating.

// HeaderLen is the size of a record's header.
const HeaderLen = 80

// MaxChunk is the most plaintext one record carries (CHUNK).
const MaxChunk = 16384

// Kind is what a record says.
type Kind uint8

const (
	// KindData carries plaintext the process read or wrote.
	KindData Kind = 1
	// KindEnd says that a direction of a connection ended (SSL_free) at
	// Off: bytes before it that did not arrive were lost.
	KindEnd Kind = 2
	// KindFork says that a traced process PPID made process PID, which is
	// traced from now on.
	KindFork Kind = 3
)

// Dir is a direction as the traced process sees it.
type Dir uint8

const (
	Read  Dir = 0 // from the peer (SSL_read)
	Write Dir = 1 // to the peer (SSL_write)
)

func (d Dir) String() string {
	if d == Write {
		return "write"
	}
	return "read"
}

// Record is one decoded record. Data points into the bytes it was decoded
// from.
type Record struct {
	Kind Kind
	Dir  Dir
	// Start: the connection's handshake was seen, so Off 0 is its first
	// plaintext byte in each direction; without it the connection began
	// before the probes were attached.
	Start    bool
	PID, TID uint32
	// PPID is the parent of a KindFork record's PID.
	PPID uint32
	// SSL is the process's SSL* and Gen the connection it serves (SSL*
	// values are reused).
	SSL uint64
	Gen uint32
	// Mono is when the call returned, in CLOCK_MONOTONIC nanoseconds.
	Mono uint64
	// Off is the offset of Data in the direction's plaintext.
	Off uint64
	// Local is the traced process's end of the TCP connection, Remote the
	// peer's; both are invalid while the connection's socket is unknown.
	Local, Remote netip.AddrPort
	Data          []byte
}

// Src and Dst are the ends the plaintext went from and to.
func (r *Record) Src() netip.AddrPort {
	if r.Dir == Write {
		return r.Local
	}
	return r.Remote
}

func (r *Record) Dst() netip.AddrPort {
	if r.Dir == Write {
		return r.Remote
	}
	return r.Local
}

// Errors of Decode.
var (
	ErrShort   = errors.New("tlsplain: record shorter than its header")
	ErrLength  = errors.New("tlsplain: record length does not match its header")
	errUnknown = errors.New("tlsplain: unknown record type")
)

const (
	afInet  = 2
	afInet6 = 10
)

// Decode fills r from one ring record b; r.Data aliases b.
func (r *Record) Decode(b []byte) error {
	if len(b) < HeaderLen {
		return ErrShort
	}
	le := binary.LittleEndian
	n := le.Uint32(b[12:])
	if n > MaxChunk || uint64(len(b)) < HeaderLen+uint64(n) {
		return ErrLength
	}
	*r = Record{
		Kind: Kind(b[0]),
		Dir:  Dir(b[1] & 1),
		PID:  le.Uint32(b[4:]),
		TID:  le.Uint32(b[8:]),
		SSL:  le.Uint64(b[16:]),
		Mono: le.Uint64(b[24:]),
		Off:  le.Uint64(b[32:]),
		Gen:  le.Uint32(b[40:]),
	}
	r.Start = b[2]&1 != 0
	switch r.Kind {
	case KindData, KindEnd:
	case KindFork:
		r.PPID = uint32(r.SSL)
		r.SSL = 0
		return nil
	default:
		return fmt.Errorf("%w %d", errUnknown, b[0])
	}
	lport, rport := le.Uint16(b[44:]), le.Uint16(b[46:])
	switch b[3] {
	case afInet:
		r.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[48:52])), lport)
		r.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[64:68])), rport)
	case afInet6:
		// An IPv4 client of a dual-stack socket is ::ffff:a.b.c.d; on
		// the wire it is IPv4.
		r.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[48:64])).Unmap(), lport)
		r.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[64:80])).Unmap(), rport)
	}
	r.Data = b[HeaderLen : HeaderLen+n : HeaderLen+n]
	return nil
}
