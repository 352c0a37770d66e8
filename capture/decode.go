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
	case sawIP6:
		p.Net = d.ip6.NetworkFlow()
	default:
		return false
	}
	p.TCP = &d.tcp
	return true
}
