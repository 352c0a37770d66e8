package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
)

// TestRingPlaintext: --write-failing keeps --tls-plaintext's pieces with
// the packets, and writes those of a failing attempt's legs once, in
// order, as they were.
func TestRingPlaintext(t *testing.T) {
	r := newPacketRing(1<<16, 64)
	cli, px := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:443")
	other := netip.MustParseAddrPort("10.0.0.3:40001")
	t0 := time.Unix(1700000000, 0)
	r.addPlain(&capture.Plaintext{Time: t0, Src: cli, Dst: px, Start: true, Data: []byte("GET /ws HTTP/1.1\r\n\r\n")})
	r.addPlain(&capture.Plaintext{Time: t0.Add(time.Millisecond), Src: other, Dst: px, Start: true, Data: []byte("GET /x HTTP/1.1\r\n\r\n")})
	r.addPlain(&capture.Plaintext{Time: t0.Add(2 * time.Millisecond), Src: px, Dst: cli, Off: 20, End: true})
	v := &analyze.Verdict{Time: t0, Code: analyze.ProxyRejected, Legs: []analyze.Leg{{Client: cli, Server: px}}}
	var got []capture.Plaintext
	take := func() {
		r.take(v, true, func(gopacket.CaptureInfo, []byte) { t.Error("a packet") }, func(p *capture.Plaintext) {
			c := *p
			c.Data = append([]byte(nil), p.Data...)
			got = append(got, c)
		})
	}
	take()
	take() // written once
	if len(got) != 2 || string(got[0].Data) != "GET /ws HTTP/1.1\r\n\r\n" || !got[0].Start || got[0].Src != cli ||
		!got[1].End || got[1].Off != 20 || got[1].Src != px || !got[1].Time.Equal(t0.Add(2*time.Millisecond)) {
		t.Errorf("written %+v", got)
	}
}
