package capture

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/gopacket/gopacket/layers"
)

// Overlay networks wrap pod traffic on a node's underlay interface: VXLAN
// (UDP 4789; Flannel uses 8472), Geneve (UDP 6081), GRE (with or without a
// key, carrying IP or Ethernet) and IP-in-IP (Calico's IPIP mode). The
// decoder unwraps them and hands over the inner TCP segment, so that a
// connection is keyed by its inner 4-tuple and pairs as if it had not been
// encapsulated; Packet.Tunnel names the (outermost) tunnel.
//
// VXLAN and Geneve are recognised on any UDP port, by content: on their
// own ports a valid header and an inner IP packet are enough; elsewhere
// the header's reserved bits must be zero and the inner packet must be an
// IPv4 (with a valid header checksum) or IPv6 packet carrying TCP whose
// length matches the datagram exactly, which random UDP payload is not.

// TunnelKind names an encapsulation.
type TunnelKind uint8

const (
	TunnelNone TunnelKind = iota
	TunnelVXLAN
	TunnelGeneve
	TunnelGRE
	TunnelIPIP // IPv4 or IPv6 inside IPv4 or IPv6 (IP protocols 4 and 41)
)

func (k TunnelKind) String() string {
	switch k {
	case TunnelVXLAN:
		return "VXLAN"
	case TunnelGeneve:
		return "Geneve"
	case TunnelGRE:
		return "GRE"
	case TunnelIPIP:
		return "IPIP"
	}
	return "none"
}

// Tunnel is the encapsulation a packet arrived in (the outermost, when
// tunnels nest). The zero value means none.
type Tunnel struct {
	Kind TunnelKind
	// VNI is VXLAN's or Geneve's network identifier, or GRE's key when
	// HasKey; 0 otherwise.
	VNI    uint32
	HasKey bool
	// Port is the UDP destination port of VXLAN and Geneve.
	Port uint16
	// Src and Dst are the outer addresses.
	Src, Dst netip.Addr
}

// String describes the tunnel as evidence: "VXLAN VNI 42 (UDP 4789)
// 10.0.2.1 → 10.0.2.2".
func (t Tunnel) String() string {
	if t.Kind == TunnelNone {
		return ""
	}
	s := t.Kind.String()
	switch {
	case t.Kind == TunnelGRE && t.HasKey:
		s += " key " + strconv.FormatUint(uint64(t.VNI), 10)
	case t.Kind == TunnelVXLAN || t.Kind == TunnelGeneve:
		s += " VNI " + strconv.FormatUint(uint64(t.VNI), 10) + " (UDP " + strconv.Itoa(int(t.Port)) + ")"
	}
	return s + " " + t.Src.String() + " → " + t.Dst.String()
}

const (
	portVXLAN        = 4789
	portVXLANFlannel = 8472
	portGeneve       = 6081
	// maxTunnelDepth bounds nesting (a VXLAN inside a GRE, say).
	maxTunnelDepth = 3
)

// unwrap decodes the packet an IP packet of protocol proto encapsulates
// (payload: what follows the outer IP header; cut: bytes of it the
// capture did not keep) and reports whether it carries TCP.
func (d *decoder) unwrap(proto layers.IPProtocol, src, dst netip.Addr, payload []byte, cut int, p *Packet) bool {
	if d.depth >= maxTunnelDepth {
		return false
	}
	t := Tunnel{Src: src, Dst: dst}
	var inner []byte
	var eth bool // inner is an Ethernet frame (else an IP packet)
	switch proto {
	case layers.IPProtocolUDP:
		if len(payload) < 8 {
			return false
		}
		dport := binary.BigEndian.Uint16(payload[2:])
		if n := int(binary.BigEndian.Uint16(payload[4:])); n >= 8 && n <= len(payload) {
			payload = payload[:n] // the UDP length bounds the datagram (padding after it)
		}
		var ok bool
		t.Kind, t.VNI, inner, eth, ok = udpTunnel(dport, payload[8:], cut)
		if !ok {
			return false
		}
		t.Port = dport
	case layers.IPProtocolGRE:
		var ok bool
		inner, eth, t.VNI, t.HasKey, ok = greTunnel(payload)
		if !ok {
			return false
		}
		t.Kind = TunnelGRE
	case layers.IPProtocolIPv4, layers.IPProtocolIPv6: // 4 and 41
		t.Kind, inner = TunnelIPIP, payload
	default:
		return false
	}
	if p.Tunnel.Kind == TunnelNone {
		p.Tunnel = t
	}
	d.depth++
	if eth {
		return d.ether(inner, p)
	}
	if len(inner) == 0 {
		return false
	}
	switch inner[0] >> 4 {
	case 4:
		return d.ip4TCP(inner, p)
	case 6:
		ok, _ := d.ip6TCP(inner, p)
		return ok
	}
	return false
}

// ether decodes an inner Ethernet frame (with at most one 802.1Q tag).
func (d *decoder) ether(b []byte, p *Packet) bool {
	if len(b) < 14 {
		return false
	}
	et, rest := binary.BigEndian.Uint16(b[12:]), b[14:]
	if et == uint16(layers.EthernetTypeDot1Q) {
		if len(rest) < 4 {
			return false
		}
		et, rest = binary.BigEndian.Uint16(rest[2:]), rest[4:]
	}
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		return d.ip4TCP(rest, p)
	case layers.EthernetTypeIPv6:
		ok, _ := d.ip6TCP(rest, p)
		return ok
	}
	return false
}

// udpTunnel recognises a VXLAN or Geneve header at the start of a UDP
// payload sent to dport, and returns what it encapsulates.
func udpTunnel(dport uint16, b []byte, cut int) (kind TunnelKind, vni uint32, inner []byte, eth, ok bool) {
	if len(b) < 8+14+20 {
		return
	}
	known := dport == portVXLAN || dport == portVXLANFlannel
	// VXLAN (RFC 7348): flags with the I bit, 24 reserved bits, the VNI, 8
	// reserved bits; then an Ethernet frame. Group-based policy (Linux's
	// GBP) uses bits of the first reserved field: allowed on the ports.
	if b[0]&0x08 != 0 && (known || b[0] == 0x08 && b[1]|b[2]|b[3]|b[7] == 0) {
		inner = b[8:]
		if known || plausibleFrame(inner, cut) {
			return TunnelVXLAN, uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]), inner, true, true
		}
	}
	// Geneve (RFC 8926): version 0, option length in 4-byte words, flags,
	// protocol type (Ethernet, or IPv4/IPv6), the VNI, a reserved byte;
	// then options and the inner packet.
	if b[0]>>6 == 0 && (dport == portGeneve || b[1]&0x3f|b[7] == 0) {
		n := 8 + int(b[0]&0x3f)*4
		if len(b) < n {
			return
		}
		inner = b[n:]
		vni = uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
		switch binary.BigEndian.Uint16(b[2:]) {
		case 0x6558: // transparent Ethernet bridging
			if dport == portGeneve || plausibleFrame(inner, cut) {
				return TunnelGeneve, vni, inner, true, true
			}
		case uint16(layers.EthernetTypeIPv4), uint16(layers.EthernetTypeIPv6):
			if dport == portGeneve || plausibleIP(inner, cut) {
				return TunnelGeneve, vni, inner, false, true
			}
		}
	}
	return TunnelNone, 0, nil, false, false
}

// greTunnel parses a GRE header (RFC 2784, with RFC 2890's key and
// sequence number) and returns the payload when it is IP or Ethernet.
func greTunnel(b []byte) (inner []byte, eth bool, key uint32, hasKey, ok bool) {
	if len(b) < 4 || b[1]&0x07 != 0 { // version 0 only (1 is PPTP)
		return
	}
	n := 4
	if b[0]&0x80 != 0 { // checksum and reserved
		n += 4
	}
	if b[0]&0x20 != 0 {
		if len(b) < n+4 {
			return
		}
		key, hasKey = binary.BigEndian.Uint32(b[n:]), true
		n += 4
	}
	if b[0]&0x10 != 0 { // sequence number
		n += 4
	}
	if len(b) < n || b[0]&0x40 != 0 { // routing present: obsolete
		return nil, false, 0, false, false
	}
	switch binary.BigEndian.Uint16(b[2:]) {
	case uint16(layers.EthernetTypeIPv4), uint16(layers.EthernetTypeIPv6):
		return b[n:], false, key, hasKey, true
	case 0x6558:
		return b[n:], true, key, hasKey, true
	}
	return nil, false, 0, false, false
}

// plausibleFrame: an Ethernet frame (untagged) carrying plausibleIP.
func plausibleFrame(b []byte, cut int) bool {
	if len(b) < 14 {
		return false
	}
	switch layers.EthernetType(binary.BigEndian.Uint16(b[12:])) {
	case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6:
		return plausibleIP(b[14:], cut)
	}
	return false
}

// plausibleIP: an IPv4 packet with a valid header checksum, or an IPv6
// packet, carrying TCP, whose length is what the datagram holds (cut: the
// bytes the capture dropped from its end; an Ethernet frame shorter than
// 60 bytes may be padded).
func plausibleIP(b []byte, cut int) bool {
	have := len(b) + cut
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl || layers.IPProtocol(b[9]) != layers.IPProtocolTCP {
			return false
		}
		var sum uint32
		for i := 0; i < ihl; i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		n := int(binary.BigEndian.Uint16(b[2:]))
		return sum == 0xffff && (n == have || n < have && have <= 46)
	case len(b) >= 40 && b[0]>>4 == 6:
		n := 40 + int(binary.BigEndian.Uint16(b[4:]))
		return layers.IPProtocol(b[6]) == layers.IPProtocolTCP && (n == have || n < have && have <= 46)
	}
	return false
}

// addr4 and addr6 turn decoded addresses into netip.Addr without an
// allocation.
func addr4(ip []byte) netip.Addr {
	if len(ip) != 4 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(ip))
}

func addr6(ip []byte) netip.Addr {
	if len(ip) != 16 {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(ip))
}
