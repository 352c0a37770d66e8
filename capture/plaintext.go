package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Plaintext is a piece of one TCP connection's TLS plaintext, as the
// process at one end of the TLS read or wrote it (the eBPF probes of
// capture/tlsplain), or as a capture file keeps it: a Wireshark exported
// PDU (link type 252) beside the connection's packets. The packets still
// give the connection's opening, closing and timing; the plaintext stands
// for what decryption with the keys would give.
type Plaintext struct {
	Time time.Time
	// Src sent the bytes to Dst.
	Src, Dst netip.AddrPort
	// Off is the offset of Data in this direction's plaintext (modulo
	// 2³², as TCP sequence numbers): a piece beyond the bytes received
	// so far means the bytes between were lost.
	Off uint32
	// Start: offset 0 is the direction's first plaintext byte (the
	// connection was seen from its handshake). Without it the plaintext
	// began in the middle of the connection.
	Start bool
	// End: the direction ended at Off (Data is empty).
	End  bool
	Data []byte
}

// PlaintextSink takes the plaintext pieces a capture file holds, in file
// order with its packets.
type PlaintextSink func(*Plaintext)

// LinkTypeUpperPDU is Wireshark's exported-PDU link type.
const LinkTypeUpperPDU layers.LinkType = 252

// Exported-PDU tags (Wireshark's epan/exported_pdu.h).
const (
	expEnd        = 0
	expProtoName  = 12
	expIPv4Src    = 20
	expIPv4Dst    = 21
	expIPv6Src    = 22
	expIPv6Dst    = 23
	expPortType   = 24
	expSrcPort    = 25
	expDstPort    = 26
	expTCPInfo    = 34
	expPortTCP    = 2
	expTCPInfoLen = 19 // version, seq, nxtseq, lastackseq, is_reassembled, flags, urgent
	// The TCP flags of the TCP info mark Start (SYN) and End (FIN).
	expFlagFIN = 0x001
	expFlagSYN = 0x002
)

// plaintextProto is the dissector Wireshark is told to use.
const plaintextProto = "http"

// appendExportedPDU appends p as an exported PDU: the dissector's name,
// the addresses and ports, the TCP info (offsets and marks), the bytes.
func appendExportedPDU(b []byte, p *Plaintext) []byte {
	be := binary.BigEndian
	tag := func(t, n int) {
		b = be.AppendUint16(b, uint16(t))
		b = be.AppendUint16(b, uint16(n))
	}
	tag(expProtoName, (len(plaintextProto)+3)&^3)
	b = append(b, plaintextProto...)
	for i := len(plaintextProto); i%4 != 0; i++ {
		b = append(b, 0)
	}
	src, dst := p.Src.Addr(), p.Dst.Addr()
	if src.Is4() && dst.Is4() {
		s4, d4 := src.As4(), dst.As4()
		tag(expIPv4Src, 4)
		b = append(b, s4[:]...)
		tag(expIPv4Dst, 4)
		b = append(b, d4[:]...)
	} else {
		s16, d16 := src.As16(), dst.As16()
		tag(expIPv6Src, 16)
		b = append(b, s16[:]...)
		tag(expIPv6Dst, 16)
		b = append(b, d16[:]...)
	}
	tag(expPortType, 4)
	b = be.AppendUint32(b, expPortTCP)
	tag(expSrcPort, 4)
	b = be.AppendUint32(b, uint32(p.Src.Port()))
	tag(expDstPort, 4)
	b = be.AppendUint32(b, uint32(p.Dst.Port()))
	tag(expTCPInfo, expTCPInfoLen)
	b = be.AppendUint16(b, 1)
	b = be.AppendUint32(b, p.Off)
	b = be.AppendUint32(b, p.Off+uint32(len(p.Data)))
	b = be.AppendUint32(b, 0)
	b = append(b, 0)
	var flags uint16
	if p.Start {
		flags |= expFlagSYN
	}
	if p.End {
		flags |= expFlagFIN
	}
	b = be.AppendUint16(b, flags)
	b = be.AppendUint16(b, 0)
	tag(expEnd, 0)
	return append(b, p.Data...)
}

var errNotPlaintext = errors.New("not a TLS plaintext record")

// decodeExportedPDU fills p from an exported PDU; p.Data aliases b. It
// takes PDUs with both addresses, TCP ports and the TCP info; p.Time is
// left alone.
func decodeExportedPDU(b []byte, p *Plaintext) error {
	be := binary.BigEndian
	var (
		src, dst       netip.Addr
		sport, dport   uint32
		tcp, info      bool
		off, next      uint32
		flags          uint16
		haveSP, haveDP bool
	)
	for {
		if len(b) < 4 {
			return errNotPlaintext
		}
		t, n := be.Uint16(b), int(be.Uint16(b[2:]))
		b = b[4:]
		if t == expEnd {
			break
		}
		if n > len(b) {
			return errNotPlaintext
		}
		v := b[:n]
		b = b[n:]
		switch {
		case t == expIPv4Src && n == 4:
			src = netip.AddrFrom4([4]byte(v))
		case t == expIPv4Dst && n == 4:
			dst = netip.AddrFrom4([4]byte(v))
		case t == expIPv6Src && n == 16:
			src = netip.AddrFrom16([16]byte(v)).Unmap()
		case t == expIPv6Dst && n == 16:
			dst = netip.AddrFrom16([16]byte(v)).Unmap()
		case t == expPortType && n == 4:
			tcp = be.Uint32(v) == expPortTCP
		case t == expSrcPort && n == 4:
			sport, haveSP = be.Uint32(v), true
		case t == expDstPort && n == 4:
			dport, haveDP = be.Uint32(v), true
		case t == expTCPInfo && n >= expTCPInfoLen && be.Uint16(v) == 1:
			off, next, flags, info = be.Uint32(v[2:]), be.Uint32(v[6:]), be.Uint16(v[15:]), true
		}
	}
	if !src.IsValid() || !dst.IsValid() || !tcp || !haveSP || !haveDP || sport > 0xffff || dport > 0xffff || !info {
		return errNotPlaintext
	}
	if next-off != uint32(len(b)) {
		return errNotPlaintext
	}
	t := p.Time
	*p = Plaintext{Time: t, Src: netip.AddrPortFrom(src, uint16(sport)), Dst: netip.AddrPortFrom(dst, uint16(dport)),
		Off: off, Start: flags&expFlagSYN != 0, End: flags&expFlagFIN != 0, Data: b}
	return nil
}
