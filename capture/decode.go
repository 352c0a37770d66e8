package capture

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// decoder decodes one packet's link, network and TCP layers into reused
// structs. Link layers other than plain Ethernet go through a
// DecodingLayerParser (one per first layer: the link type decides where
// decoding starts); the network layer and TCP are decoded directly, so
// that a tunnel's inner packet (tunnel.go) goes the same way as an outer
// one.
type decoder struct {
	eth   layers.Ethernet
	dot1q layers.Dot1Q
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	loop  layers.Loopback
	ip4   layers.IPv4
	ip6   layers.IPv6
	tcp   layers.TCP
	tcpd  TCPDecoder

	// parsers decode the link layers; ip6ext an IPv6 packet with a
	// hop-by-hop header, and its TCP.
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	ip6ext  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	// depth counts the tunnels unwrapped in the packet being decoded.
	depth int
}

func newDecoder() *decoder {
	d := &decoder{decoded: make([]gopacket.LayerType, 0, 8)}
	link := []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop}
	d.parsers = make(map[gopacket.LayerType]*gopacket.DecodingLayerParser)
	for _, first := range []gopacket.LayerType{
		layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLinuxSLL2, layers.LayerTypeLoopback,
	} {
		p := gopacket.NewDecodingLayerParser(first, link...)
		// Decoding stops at the network layer, which is not in the set.
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
	d.ip6ext = gopacket.NewDecodingLayerParser(layers.LayerTypeIPv6, &d.ip6, &d.tcp)
	d.ip6ext.IgnoreUnsupported = true // the layer after TCP is its payload
	return d
}

// firstLayer maps a link type to the layer decoding starts with, or
// LayerTypeZero when wsdiag cannot decode it.
func firstLayer(lt layers.LinkType) gopacket.LayerType {
	switch lt {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback
	case layers.LinkTypeRaw, 12, 14: // 12 and 14 are raw IP on some BSDs
		return layerTypeRawIP
	case layers.LinkTypeIPv4:
		return layers.LayerTypeIPv4
	case layers.LinkTypeIPv6:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypeZero
}

// layerTypeRawIP marks link types whose packets start with an IPv4 or IPv6
// header, told apart by the version nibble.
var layerTypeRawIP = gopacket.LayerType(-1)

// decode fills p from data and reports whether the packet carries TCP over
// IPv4 or IPv6, directly or in a tunnel. Fragments and packets too short
// for their headers are not TCP segments we can use.
func (d *decoder) decode(first gopacket.LayerType, data []byte, p *Packet) bool {
	p.Tunnel, d.depth = Tunnel{}, 0
	if first == layerTypeRawIP {
		if len(data) == 0 {
			return false
		}
		switch data[0] >> 4 {
		case 4:
			first = layers.LayerTypeIPv4
		case 6:
			first = layers.LayerTypeIPv6
		default:
			return false
		}
	}
	switch first {
	case layers.LayerTypeEthernet:
		// The common shape skips the parser's per-layer lookups.
		if len(data) >= 14 && data[12] == 0x08 && data[13] == 0x00 {
			return d.ip4TCP(data[14:], p)
		}
	case layers.LayerTypeIPv4:
		return d.ip4TCP(data, p)
	case layers.LayerTypeIPv6:
		return d.ip6Any(data, p)
	}
	parser := d.parsers[first]
	if parser == nil {
		return false
	}
	// An error in a link layer leaves it out of decoded.
	_ = parser.DecodeLayers(data, &d.decoded)
	if len(d.decoded) == 0 {
		return false
	}
	var payload []byte
	var next gopacket.LayerType
	switch d.decoded[len(d.decoded)-1] {
	case layers.LayerTypeEthernet:
		payload, next = d.eth.Payload, d.eth.NextLayerType()
	case layers.LayerTypeDot1Q:
		payload, next = d.dot1q.Payload, d.dot1q.NextLayerType()
	case layers.LayerTypeLinuxSLL:
		payload, next = d.sll.Payload, d.sll.NextLayerType()
	case layers.LayerTypeLinuxSLL2:
		payload, next = d.sll2.Payload, d.sll2.NextLayerType()
	case layers.LayerTypeLoopback:
		payload, next = d.loop.Payload, d.loop.NextLayerType()
	}
	switch next {
	case layers.LayerTypeIPv4:
		return d.ip4TCP(payload, p)
	case layers.LayerTypeIPv6:
		return d.ip6Any(payload, p)
	}
	return false
}

// ip4TCP decodes an IPv4 packet that should carry a whole TCP header, or a
// tunnel.
func (d *decoder) ip4TCP(b []byte, p *Packet) bool {
	ip := &d.ip4
	if ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil ||
		ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		return false
	}
	// The IP length says how much of the segment the capture dropped; a
	// length of 0 (segmentation offload) says nothing.
	cut := max(0, int(ip.Length)-int(ip.IHL)*4-len(ip.Payload))
	if ip.Protocol != layers.IPProtocolTCP {
		return d.unwrap(ip.Protocol, addr4(ip.SrcIP), addr4(ip.DstIP), ip.Payload, cut, p)
	}
	if d.tcpd.Decode(&d.tcp, ip.Payload) != nil {
		return false
	}
	p.Net = ip.NetworkFlow()
	p.Cut = cut
	p.TCP = &d.tcp
	return true
}

// ip6Any decodes an IPv6 packet that carries TCP or a tunnel; one with a
// hop-by-hop header goes through gopacket's parser.
func (d *decoder) ip6Any(b []byte, p *Packet) bool {
	if ok, done := d.ip6TCP(b, p); done {
		return ok
	}
	// Errors past the network layer (a truncated TCP header, say) leave
	// TCP out of decoded; that is all we need to know.
	_ = d.ip6ext.DecodeLayers(b, &d.decoded)
	if len(d.decoded) < 2 || d.decoded[len(d.decoded)-1] != layers.LayerTypeTCP {
		return false
	}
	p.Net = d.ip6.NetworkFlow()
	// A jumbogram or a length of 0 (segmentation offload) says nothing.
	p.Cut = max(0, int(d.ip6.Length)-len(d.ip6.Payload))
	p.TCP = &d.tcp
	return true
}

// ip6TCP decodes an IPv6 packet whose next header is TCP or a tunnel;
// done is false for anything else (extension headers), left to the
// generic parser.
func (d *decoder) ip6TCP(b []byte, p *Packet) (ok, done bool) {
	ip := &d.ip6
	if ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
		return false, true
	}
	if ip.HopByHop != nil {
		return false, false
	}
	cut := max(0, int(ip.Length)-len(ip.Payload))
	if ip.NextHeader != layers.IPProtocolTCP {
		return d.unwrap(ip.NextHeader, addr6(ip.SrcIP), addr6(ip.DstIP), ip.Payload, cut, p), true
	}
	if d.tcpd.Decode(&d.tcp, ip.Payload) != nil {
		return false, true
	}
	p.Net = ip.NetworkFlow()
	p.Cut = cut
	p.TCP = &d.tcp
	return true, true
}
