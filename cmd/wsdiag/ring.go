package main

import (
	"net/netip"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
)

// packetRing keeps the most recent packets (up to a byte budget) so that
// --write-failing can write the packets of an attempt once its verdict is
// known. Packet bytes live in one arena that wraps; nothing is allocated
// per packet.
type packetRing struct {
	arena   []byte
	head    int // next write offset in arena
	entries []ringEntry
	first   int // index of the oldest entry
	n       int // entries in use
}

type ringEntry struct {
	ci     gopacket.CaptureInfo
	off, l int
	a, b   netip.AddrPort // the two ends, in packet order
	// claimed: on a leg of some verdict; written: in the -w file
	claimed, written bool
	// plain: a piece of TLS plaintext (--tls-plaintext) from a to b, at
	// offset poff of its direction, pstart and pend its marks
	plain, pstart, pend bool
	poff                uint32
}

// ringEntrySize is what an entry costs, for the memory budget.
const ringEntrySize = int(unsafe.Sizeof(ringEntry{}))

func newPacketRing(bytes, packets int) *packetRing {
	return &packetRing{arena: make([]byte, bytes), entries: make([]ringEntry, packets)}
}

func (r *packetRing) pop() {
	r.first = (r.first + 1) % len(r.entries)
	r.n--
}

// add copies a packet in, dropping the oldest packets it overwrites.
func (r *packetRing) add(p *capture.Packet, raw []byte) {
	if e := r.put(raw); e != nil {
		e.ci, e.a, e.b = p.CI, endpoint(p.Net.Src().Raw(), p.TCP.SrcPort), endpoint(p.Net.Dst().Raw(), p.TCP.DstPort)
	}
}

// addPlain copies a piece of TLS plaintext in, as add a packet.
func (r *packetRing) addPlain(pt *capture.Plaintext) {
	if e := r.put(pt.Data); e != nil {
		e.ci.Timestamp, e.a, e.b = pt.Time, pt.Src, pt.Dst
		e.plain, e.pstart, e.pend, e.poff = true, pt.Start, pt.End, pt.Off
	}
}

// plaintext is the piece e holds.
func (r *packetRing) plaintext(e *ringEntry) capture.Plaintext {
	return capture.Plaintext{Time: e.ci.Timestamp, Src: e.a, Dst: e.b, Off: e.poff, Start: e.pstart, End: e.pend, Data: r.bytesOf(*e)}
}

// put copies raw into the arena, dropping the oldest entries it
// overwrites, and returns its entry (nil when raw does not fit at all).
func (r *packetRing) put(raw []byte) *ringEntry {
	if len(raw) > len(r.arena) {
		return nil
	}
	if r.head+len(raw) > len(r.arena) {
		r.head = 0
	}
	lo, hi := r.head, r.head+len(raw)
	for r.n > 0 {
		e := &r.entries[r.first]
		if e.off < hi && lo < e.off+e.l || r.n == len(r.entries) {
			r.pop()
			continue
		}
		break
	}
	copy(r.arena[lo:hi], raw)
	idx := (r.first + r.n) % len(r.entries)
	r.entries[idx] = ringEntry{off: lo, l: len(raw)}
	r.n++
	r.head = hi
	return &r.entries[idx]
}

func endpoint(ip []byte, port layers.TCPPort) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// take goes through the packets of the verdict's legs, and, when its
// upstream leg is missing (a failed connect), of connections to its
// backend that no verdict claimed, since shortly before the attempt. Every
// verdict claims its legs' packets; with write, those not written yet are
// written, oldest first, so each packet is written once: a packet by fn,
// a piece of plaintext by plain.
func (r *packetRing) take(v *analyze.Verdict, write bool, fn func(gopacket.CaptureInfo, []byte), plain func(*capture.Plaintext)) {
	from := v.Time.Add(-time.Second)
	connect := v.Backend.IsValid()
	for _, l := range v.Legs {
		if l.Server == v.Backend {
			connect = false
		}
	}
	for i := 0; i < r.n; i++ {
		e := &r.entries[(r.first+i)%len(r.entries)]
		if e.ci.Timestamp.Before(from) {
			continue
		}
		leg := onLegs(e, v)
		if leg {
			e.claimed = true
		}
		if !write || e.written || !leg && (!connect || e.claimed || e.a != v.Backend && e.b != v.Backend) {
			continue
		}
		e.written = true
		if e.plain {
			pt := r.plaintext(e)
			plain(&pt)
			continue
		}
		fn(e.ci, r.bytesOf(*e))
	}
}

func onLegs(e *ringEntry, v *analyze.Verdict) bool {
	for _, l := range v.Legs {
		if e.a == l.Client && e.b == l.Server || e.a == l.Server && e.b == l.Client {
			return true
		}
	}
	return false
}

func (r *packetRing) bytesOf(e ringEntry) []byte { return r.arena[e.off : e.off+e.l] }
