package reassembly

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzTimestamps: the timestamps option parser never panics, and on
// options gopacket decodes it finds what gopacket finds. (gopacket stops
// at an MPTCP option shorter than 3 bytes; the kernel, like timestamps,
// skips it by its length and reads on: such input is not compared.)
func FuzzTimestamps(f *testing.F) {
	f.Add([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add([]byte{2, 4, 5, 180, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 3, 7})
	f.Add([]byte{8, 10, 1})
	f.Add([]byte{0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, opts []byte) {
		val, ecr, ok := timestamps(opts)
		if len(opts) > 40 || len(opts)%4 != 0 {
			return
		}
		hdr := make([]byte, 20+len(opts))
		hdr[12] = byte(5+len(opts)/4) << 4
		copy(hdr[20:], opts)
		var tcp layers.TCP
		if tcp.DecodeFromBytes(hdr, gopacket.NilDecodeFeedback) != nil {
			return
		}
		if len(tcp.Padding) > 0 && tcp.Padding[0] == byte(layers.TCPOptionKindMultipathTCP) {
			return // gopacket gave up at a short MPTCP option
		}
		for _, o := range tcp.Options {
			if o.OptionType == layers.TCPOptionKindEndList {
				break
			}
			if o.OptionType == layers.TCPOptionKindTimestamps && len(o.OptionData) == 8 {
				if !ok || val != binary.BigEndian.Uint32(o.OptionData) || ecr != binary.BigEndian.Uint32(o.OptionData[4:]) {
					t.Fatalf("%x: %d %d %v, gopacket %x", opts, val, ecr, ok, o.OptionData)
				}
				return
			}
		}
		if ok {
			t.Fatalf("%x: timestamps %d %d where gopacket finds none", opts, val, ecr)
		}
	})
}
