package reassembly

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// A capture started while tunnels sat idle holds nothing of them but their
// end: when a proxy's read timeout cuts them, a FIN (or RST) on each leg and
// the peers' answers, no SYN, no byte. Such segments open no connection
// (a stray FIN or RST must not make one that lingers); each is reported as
// a CloseOnly event instead, so that the analysis can tell a tunnel cut on
// idle from nothing.

// CloseOnly is a FIN or RST, without payload, of a connection the
// Assembler holds nothing of. Which end is the client is not known.
type CloseOnly struct {
	From, To netip.AddrPort
	Kind     CloseKind // CloseRST when the RST flag is set, else CloseFIN
	Time     time.Time
	// TSval and TSecr are the segment's TCP timestamps (RFC 7323), when
	// TS says it carries them: TSecr echoes the TSval of the last segment
	// From got from To, so the peer's answer tells how long before it
	// the peer last sent anything, in the peer's clock.
	TS           bool
	TSval, TSecr uint32
}

// CloseSink is implemented by sinks that want CloseOnly events.
type CloseSink interface {
	CloseOnly(*CloseOnly)
}

// closeOnly reports a segment of a connection nothing holds, when it is a
// bare FIN or RST.
func (a *Assembler) closeOnly(nf gopacket.Flow, tcp *layers.TCP, t time.Time) {
	if a.closeSink == nil || tcp.SYN || len(tcp.Payload) > 0 || !tcp.FIN && !tcp.RST {
		return
	}
	k := CloseFIN
	if tcp.RST {
		k = CloseRST
	}
	if a.opt.slowOnly && a.resetLately(nf, tcp, t) {
		return
	}
	c := &CloseOnly{
		From: addrPort(nf.Src(), uint16(tcp.SrcPort)), To: addrPort(nf.Dst(), uint16(tcp.DstPort)),
		Kind: k, Time: t,
	}
	if len(tcp.Contents) > 20 {
		c.TSval, c.TSecr, c.TS = timestamps(tcp.Contents[20:])
	}
	a.closeSink.CloseOnly(c)
}

// timestamps finds the TCP timestamps option among a header's options.
func timestamps(opts []byte) (val, ecr uint32, ok bool) {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return 0, 0, false
		case 1: // no-op
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return 0, 0, false
		}
		if opts[0] == 8 && opts[1] == 10 {
			return binary.BigEndian.Uint32(opts[2:]), binary.BigEndian.Uint32(opts[6:]), true
		}
		opts = opts[opts[1]:]
	}
	return 0, 0, false
}

// gopacket forgets a connection a RST ended at once, where the fast path
// lets it linger (fastpath.go): in slowOnly mode (tests that compare the
// two) the 4-tuples reset lately are remembered, so that a second RST is
// swallowed in both.

// noteReset remembers the connection the segment nf/tcp reset.
func (a *Assembler) noteReset(nf gopacket.Flow, tcp *layers.TCP, t time.Time) {
	if !a.opt.slowOnly {
		return
	}
	if a.resets == nil {
		a.resets = map[connKey]time.Time{}
	}
	k := connKey{nf, uint16(tcp.SrcPort), uint16(tcp.DstPort), 0}
	a.resets[k], a.resets[k.reverse()] = t, t
}

func (a *Assembler) resetLately(nf gopacket.Flow, tcp *layers.TCP, t time.Time) bool {
	at, ok := a.resets[connKey{nf, uint16(tcp.SrcPort), uint16(tcp.DstPort), 0}]
	return ok && t.Sub(at) < linger
}
