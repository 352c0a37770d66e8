// Package frames builds the Ethernet frames carrying TCP that the tests of
// capture and of capture/filter feed their decoders and filters, with
// gopacket's serialisation (lengths and checksums filled in).
package frames

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// MACA and MACB are the frames' source and destination addresses.
var (
	MACA = net.HardwareAddr{0, 1, 2, 3, 4, 5}
	MACB = net.HardwareAddr{0, 1, 2, 3, 4, 6}
)

// Serialize serialises the layers, lengths and checksums computed.
func Serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// TCP4 is an Ethernet frame of a TCP segment (ACK, PSH) over IPv4.
func TCP4(tb testing.TB, src, dst string, sp, dp uint16, payload string, opts ...layers.IPv4Option) []byte {
	eth := &layers.Ethernet{SrcMAC: MACA, DstMAC: MACB, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4(), Options: opts}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: 1000, Ack: 1, ACK: true, PSH: true, Window: 512}
	tcp.SetNetworkLayerForChecksum(ip)
	return Serialize(tb, eth, ip, tcp, gopacket.Payload(payload))
}

// TCP6 is an Ethernet frame of a TCP segment (ACK) over IPv6.
func TCP6(tb testing.TB, src, dst string, sp, dp uint16, payload string) []byte {
	eth := &layers.Ethernet{SrcMAC: MACA, DstMAC: MACB, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: 1000, Ack: 1, ACK: true, Window: 512}
	tcp.SetNetworkLayerForChecksum(ip)
	return Serialize(tb, eth, ip, tcp, gopacket.Payload(payload))
}
