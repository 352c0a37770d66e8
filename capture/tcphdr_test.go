package capture

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCPDecoder gives what gopacket's TCP decoding gives, options aside, on
// every TCP segment of every real capture, and on headers cut short.
func TestTCPDecoderAgrees(t *testing.T) {
	files, _ := filepath.Glob("../testdata/captures/*.pcap*")
	if len(files) < 10 {
		t.Fatalf("%d captures", len(files))
	}
	var d TCPDecoder
	segs := 0
	check := func(name string, data []byte) {
		var want, got layers.TCP
		werr := want.DecodeFromBytes(data, gopacket.NilDecodeFeedback)
		gerr := d.Decode(&got, data)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%s: error %v, gopacket's %v", name, gerr, werr)
		}
		if werr != nil {
			return
		}
		segs++
		if got.SrcPort != want.SrcPort || got.DstPort != want.DstPort || got.Seq != want.Seq || got.Ack != want.Ack ||
			got.DataOffset != want.DataOffset || got.SYN != want.SYN || got.FIN != want.FIN || got.RST != want.RST ||
			got.ACK != want.ACK || got.PSH != want.PSH || got.Window != want.Window ||
			!bytes.Equal(got.Contents, want.Contents) || !bytes.Equal(got.Payload, want.Payload) ||
			got.TransportFlow() != want.TransportFlow() {
			t.Fatalf("%s: decoded %+v, gopacket %+v", name, got, want)
		}
	}
	for _, f := range files {
		r, err := Open(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			p, err := r.Next()
			if err != nil {
				break
			}
			seg := append(append([]byte(nil), p.TCP.Contents...), p.TCP.Payload...)
			check(f, seg)
			for _, n := range []int{0, 12, 19, 20, 21, len(p.TCP.Contents) - 1} {
				if n >= 0 && n < len(seg) {
					check(f, seg[:n])
				}
			}
		}
		r.Close()
	}
	if segs < 1000 {
		t.Fatalf("only %d segments", segs)
	}
}
