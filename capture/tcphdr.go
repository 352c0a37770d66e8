package capture

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCPDecoder decodes TCP headers without their options, which nothing in
// wsdiag reads (gopacket's decoding spent half its time on them: every
// segment on Linux carries timestamps). Fields, Contents, Payload and
// TransportFlow are what layers.TCP.DecodeFromBytes gives; Options is
// empty. The decoded layer is valid until the next Decode.
type TCPDecoder struct {
	hdr [20]byte // the fixed header, its data offset set to 5
}

// Decode decodes data (a TCP header and payload) into tcp.
func (d *TCPDecoder) Decode(tcp *layers.TCP, data []byte) error {
	if len(data) < 20 || data[12]>>4 <= 5 {
		return tcp.DecodeFromBytes(data, gopacket.NilDecodeFeedback)
	}
	off := int(data[12]>>4) * 4
	if off > len(data) {
		return tcp.DecodeFromBytes(data, gopacket.NilDecodeFeedback) // its error
	}
	copy(d.hdr[:], data[:20])
	d.hdr[12] = 5<<4 | data[12]&0x0f
	if err := tcp.DecodeFromBytes(d.hdr[:], gopacket.NilDecodeFeedback); err != nil {
		return err
	}
	tcp.DataOffset = data[12] >> 4
	tcp.Contents, tcp.Payload = data[:off], data[off:]
	return nil
}
