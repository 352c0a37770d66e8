package capture

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// decoder decodes one packet's link, network and TCP layers into reused
// structs. One DecodingLayerParser per first layer: the link type decides
// where decoding starts, everything after it is shared.
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

	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

func newDecoder() *decoder {
	d := &decoder{decoded: make([]gopacket.LayerType, 0, 8)}
	all := []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop, &d.ip4, &d.ip6, &d.tcp}
	d.parsers = make(map[gopacket.LayerType]*gopacket.DecodingLayerParser)
	for _, first := range []gopacket.LayerType{
		layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLinuxSLL2,
		layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6,
	} {
		p := gopacket.NewDecodingLayerParser(first, all...)
		// The layer after TCP is its payload; stopping there is success.
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
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
// IPv4 or IPv6. Fragments and packets too short for their headers are not
// TCP segments we can use.
func (d *decoder) decode(first gopacket.LayerType, data []byte, p *Packet) bool {
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
	// The common shapes skip the generic parser's per-layer lookups.
	switch first {
	case layers.LayerTypeEthernet:
		if len(data) >= 14 && data[12] == 0x08 && data[13] == 0x00 { // IPv4: no need of the Ethernet layer
			return d.ip4TCP(data[14:], p)
		}
		if d.eth.DecodeFromBytes(data, gopacket.NilDecodeFeedback) == nil {
			switch d.eth.EthernetType {
			case layers.EthernetTypeIPv4:
				return d.ip4TCP(d.eth.Payload, p)
			case layers.EthernetTypeIPv6:
				if ok, done := d.ip6TCP(d.eth.Payload, p); done {
					return ok
				}
			}
		}
	case layers.LayerTypeIPv4:
		return d.ip4TCP(data, p)
	case layers.LayerTypeIPv6:
		if ok, done := d.ip6TCP(data, p); done {
			return ok
		}
	}
	parser := d.parsers[first]
	if parser == nil {
		return false
	}
	// Errors past the network layer (a truncated TCP header, say) leave
	// TCP out of decoded; that is all we need to know.
	_ = parser.DecodeLayers(data, &d.decoded)
	var sawIP4, sawIP6, sawTCP bool
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			sawIP4 = true
		case layers.LayerTypeIPv6:
			sawIP6 = true
		case layers.LayerTypeTCP:
			sawTCP = true
		}
	}
	if !sawTCP {
		return false
	}
	switch {
	case sawIP4:
		if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
			return false
		}
		p.Net = d.ip4.NetworkFlow()
		p.Cut = int(d.ip4.Length) - int(d.ip4.IHL)*4 - len(d.ip4.Payload)
	case sawIP6:
		p.Net = d.ip6.NetworkFlow()
		p.Cut = int(d.ip6.Length) - len(d.ip6.Payload)
	default:
		return false
	}
	// The IP length says how much of the segment the capture dropped; a
	// jumbogram or a length of 0 (segmentation offload) says nothing.
	p.Cut = max(0, p.Cut)
	p.TCP = &d.tcp
	return true
}

// ip4TCP decodes an IPv4 packet that should carry a whole TCP header.
func (d *decoder) ip4TCP(b []byte, p *Packet) bool {
	ip := &d.ip4
	if ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil || ip.Protocol != layers.IPProtocolTCP ||
		ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		return false
	}
	if d.tcpd.Decode(&d.tcp, ip.Payload) != nil {
		return false
	}
	p.Net = ip.NetworkFlow()
	p.Cut = max(0, int(ip.Length)-int(ip.IHL)*4-len(ip.Payload))
	p.TCP = &d.tcp
	return true
}

// ip6TCP decodes an IPv6 packet whose next header is TCP; done is false
// for anything else (extension headers), left to the generic parser.
func (d *decoder) ip6TCP(b []byte, p *Packet) (ok, done bool) {
	ip := &d.ip6
	if ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
		return false, true
	}
	if ip.NextHeader != layers.IPProtocolTCP || ip.HopByHop != nil {
		return false, false
	}
	if d.tcpd.Decode(&d.tcp, ip.Payload) != nil {
		return false, true
	}
	p.Net = ip.NetworkFlow()
	p.Cut = max(0, int(ip.Length)-len(ip.Payload))
	p.TCP = &d.tcp
	return true, true
}
