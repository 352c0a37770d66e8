package reassembly

import (
	"encoding/binary"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// The fast path. Almost every segment of a capture arrives in order, and
// for those gopacket's reassembly (a locked connection pool, page lists,
// scatter-gather) is pure overhead: the Assembler keeps its own map of
// connections and feeds in-order payload straight to the parsers. The
// first segment that leaves a hole is the moment reassembly is needed:
// the connection is handed over to gopacket, primed with where each
// direction stands, and stays there until it ends. Retransmissions and
// overlaps of bytes already delivered are trimmed here, as gopacket would.

// connKey names one direction of a connection. The map holds each
// connection under both directions' keys, so that a segment needs one
// lookup and no comparison of its endpoints. tun tells apart connections
// with one 4-tuple in different overlay tunnels (two tenants' VNIs): 0
// for a segment that came in none (the field fills what was padding, so
// the key hashes as one block of memory).
type connKey struct {
	net          gopacket.Flow
	sport, dport uint16
	tun          uint32
}

// reverse is the key of the other direction.
func (k connKey) reverse() connKey { return connKey{k.net.Reverse(), k.dport, k.sport, k.tun} }

// connRef is a map entry: the connection, and which direction the key is.
type connRef struct {
	s *stream
	d flow.Dir
}

// fast is a stream's in-order state while the fast path owns it.
type fast struct {
	key connKey // flow.Fwd's
	// seq is the next expected sequence number of each direction, once
	// started says a segment fixed it; isn is the SYN's, when one was seen.
	seq     [2]uint32
	isn     [2]uint32
	started [2]bool
	synSeen [2]bool
	finned  [2]bool // an in-order FIN ended the direction
	slow    bool    // handed over to gopacket's reassembly
	// dead: a RST ended the connection. It lingers a while, so that
	// segments already in flight do not look like a new connection.
	dead bool
	// engaged: a direction was recognised as HTTP or TLS. Until then the
	// connection is quiet (a handshake, a SYN flood, a protocol we ignore)
	// and is kept under a tighter budget.
	engaged bool
	linked  bool // in one of the lists below (here: the struct packs tighter)
	// older and newer link the stream into one of the Assembler's lists
	// (live or quiet by last activity, or dead by time of death).
	older, newer *stream
}

// linger is how long (capture time) a connection ended by a RST keeps
// swallowing its 4-tuple's late segments.
const linger = 10 * time.Second

// connList is a list of streams through their older/newer links.
type connList struct {
	oldest, newest *stream
	n              int
}

func (l *connList) push(s *stream) {
	s.older, s.linked = l.newest, true
	if l.newest != nil {
		l.newest.newer = s
	} else {
		l.oldest = s
	}
	l.newest = s
	l.n++
}

func (l *connList) remove(s *stream) {
	if s.older != nil {
		s.older.newer = s.newer
	} else {
		l.oldest = s.newer
	}
	if s.newer != nil {
		s.newer.older = s.older
	} else {
		l.newest = s.older
	}
	s.older, s.newer, s.linked = nil, nil, false
	l.n--
}

// fastPacket handles a segment of a connection gopacket does not hold; s
// is nil when the connection is new.
func (a *Assembler) fastPacket(s *stream, d flow.Dir, k connKey, nf gopacket.Flow, tcp *layers.TCP, ci gopacket.CaptureInfo, cut int) {
	t := ci.Timestamp
	if s != nil && s.dead {
		if !tcp.SYN || tcp.ACK || s.synSeen[d] && s.isn[d] == uint32(tcp.Seq) {
			return // in flight when the RST ended the connection
		}
		a.forget(s) // a new connection on the 4-tuple
		s = nil
	}
	if s != nil && tcp.SYN && !tcp.ACK && !s.packetless() {
		if !s.synSeen[d] || s.isn[d] != uint32(tcp.Seq) {
			// A SYN with a new sequence number: the 4-tuple is reused for
			// a new connection (a retransmitted SYN repeats its number).
			s.finish()
			a.forget(s)
			s = nil
		}
	}
	if s == nil {
		// Only a SYN or data opens a connection: the last ACK after both
		// FINs, or a stray RST, must not open one that lingers.
		if !tcp.SYN && len(tcp.Payload) == 0 {
			a.closeOnly(nf, tcp, t)
			return
		}
		s, d = a.open(nf, tcp, t, k), flow.Fwd
	}
	seq := uint32(tcp.Seq)
	payload := tcp.Payload
	if tcp.SYN {
		if s.started[d] {
			// A retransmitted SYN: its payload is not new stream data.
			s.flags(tcp, t, d)
			a.touch(s)
			return
		}
		s.synSeen[d], s.isn[d] = true, seq
		seq++
	}
	if !s.started[d] {
		s.started[d], s.seq[d] = true, seq
	}
	diff := int32(seq - s.seq[d])
	if diff > 0 && (len(payload) > 0 || tcp.FIN) && !s.ignored && !s.finned[d] {
		// A hole: from here on gopacket reassembles this connection.
		nf = slowFlow(nf, s.key.tun)
		a.handover(s, nf, tcp, d)
		a.slowPacket(nf, tcp)
		return
	}
	s.flags(tcp, t, d)
	a.touch(s)
	if diff <= 0 && !s.finned[d] {
		// got and end are how far the captured bytes and the whole
		// segment reach past what was delivered.
		got := diff + int32(len(payload))
		end := got + int32(cut)
		if got > 0 {
			s.deliver(d, payload[len(payload)-int(got):], t)
		}
		if end > 0 {
			s.seq[d] += uint32(end)
			if lost := end - max(got, 0); lost > 0 {
				s.cut(d, int(lost)) // not lost on the wire: the capture kept less
			}
		}
		if tcp.FIN && end >= 0 {
			s.seq[d]++
			s.finned[d] = true
		}
	}
	switch {
	case tcp.RST:
		s.finish()
		a.unlink(s)
		s.dead = true
		a.dead.push(s)
	case s.finned[flow.Fwd] && s.finned[flow.Rev]:
		s.finish()
		a.forget(s)
	}
}

// open starts tracking a connection whose first segment this is.
func (a *Assembler) open(nf gopacket.Flow, tcp *layers.TCP, t time.Time, k connKey) *stream {
	s := a.newStream(nf, tcp, t)
	s.key = k
	a.conns[k] = connRef{s, flow.Fwd}
	if r := k.reverse(); r != k { // (a connection to itself has one key)
		a.conns[r] = connRef{s, flow.Rev}
	}
	if k.tun != 0 {
		a.alias(s, k)
	}
	a.touch(s)
	return s
}

// handover gives connection s to gopacket: for each direction seen, a
// synthetic SYN (and FIN, when the direction has ended) puts gopacket's
// next expected sequence number where the fast path's is. flow.Fwd goes
// first, so that gopacket's client-to-server direction is ours.
func (a *Assembler) handover(s *stream, nf gopacket.Flow, tcp *layers.TCP, dp flow.Dir) {
	a.unlink(s)
	s.slow = true
	a.stats.Handovers++
	a.handing = s
	for _, d := range [...]flow.Dir{flow.Fwd, flow.Rev} {
		if !s.started[d] {
			continue
		}
		f, sp, dpt := nf, tcp.SrcPort, tcp.DstPort
		if d != dp {
			f, sp, dpt = nf.Reverse(), dpt, sp
		}
		if s.finned[d] {
			a.synthetic(f, sp, dpt, s.seq[d]-2, true, false)
			a.synthetic(f, sp, dpt, s.seq[d]-1, false, true)
		} else {
			a.synthetic(f, sp, dpt, s.seq[d]-1, true, false)
		}
	}
	a.handing = nil
}

// synthetic feeds gopacket an empty segment made up for handover.
func (a *Assembler) synthetic(nf gopacket.Flow, sp, dp layers.TCPPort, seq uint32, syn, fin bool) {
	var b [20]byte
	binary.BigEndian.PutUint16(b[0:], uint16(sp))
	binary.BigEndian.PutUint16(b[2:], uint16(dp))
	binary.BigEndian.PutUint32(b[4:], seq)
	b[12] = 5 << 4
	if syn {
		b[13] |= 0x02
	}
	if fin {
		b[13] |= 0x01
	}
	if a.synth.DecodeFromBytes(b[:], gopacket.NilDecodeFeedback) != nil {
		return
	}
	a.asm.AssembleWithContext(nf, &a.synth, &a.ctx)
}

// forget drops s from the fast path's map (it has ended, or gopacket has
// let go of it).
func (a *Assembler) forget(s *stream) {
	if a.conns[s.key].s == s {
		delete(a.conns, s.key)
		delete(a.conns, s.key.reverse())
		a.deletes++
		if s.key.tun != 0 {
			a.unalias(s)
		}
		if a.deletes > len(a.conns)+1<<16 {
			a.rebuild()
		}
	}
	a.unlink(s)
	if s.hasPlain {
		delete(a.plains, s)
	}
	s.release()
	if s.hasNode {
		delete(a.nodes, s)
	}
}

// rebuild copies the map into a new one: a Go map never shrinks, and
// deletions leave tombstones that make it grow, so that under a flood of
// short connections it would outgrow what is open (and the memory budget's
// estimate). Done once per as many deletions as entries, it costs O(1) a
// connection.
func (a *Assembler) rebuild() {
	m := make(map[connKey]connRef, len(a.conns))
	for k, r := range a.conns {
		m[k] = r
	}
	a.conns, a.deletes = m, 0
}

// touch makes s the most recently active connection of its list.
func (a *Assembler) touch(s *stream) {
	l := a.listOf(s)
	if l.newest == s {
		return
	}
	if s.linked {
		l.remove(s)
	}
	l.push(s)
	if l == &a.quiet && l.n > a.maxQuiet {
		a.evictQuiet()
	}
}

// listOf is the list s belongs in.
func (a *Assembler) listOf(s *stream) *connList {
	switch {
	case s.dead:
		return &a.dead
	case s.engaged:
		return &a.live
	}
	return &a.quiet
}

func (a *Assembler) unlink(s *stream) {
	if s.linked {
		a.listOf(s).remove(s)
	}
}

// engage moves s from the quiet list to the live one: it carries HTTP or
// TLS.
func (s *stream) engage() {
	if s.engaged {
		return
	}
	a := s.asm
	linked := s.linked
	a.unlink(s)
	s.engaged = true
	if linked {
		a.live.push(s)
	}
	s.account()
}

// evictQuiet ends the oldest quiet connections until a tenth of the quiet
// budget is free: a flood of SYNs or of some other protocol must not
// crowd out, or outgrow memory with, the connections wsdiag is for.
func (a *Assembler) evictQuiet() {
	goal := a.maxQuiet - a.maxQuiet/10
	for s := a.quiet.oldest; s != nil && a.quiet.n > goal; s = a.quiet.oldest {
		s.finish()
		a.forget(s)
		a.stats.QuietEvicted++
	}
}
