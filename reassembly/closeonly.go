package reassembly

import (
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
	a.closeSink.CloseOnly(&CloseOnly{
		From: addrPort(nf.Src(), uint16(tcp.SrcPort)), To: addrPort(nf.Dst(), uint16(tcp.DstPort)),
		Kind: k, Time: t,
	})
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
	k := connKey{nf, uint16(tcp.SrcPort), uint16(tcp.DstPort)}
	a.resets[k], a.resets[k.reverse()] = t, t
}

func (a *Assembler) resetLately(nf gopacket.Flow, tcp *layers.TCP, t time.Time) bool {
	at, ok := a.resets[connKey{nf, uint16(tcp.SrcPort), uint16(tcp.DstPort)}]
	return ok && t.Sub(at) < linger
}
