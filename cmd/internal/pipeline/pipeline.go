package pipeline

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/filter"
	"github.com/wsdiag/wsdiag/reassembly"
)

// Sink takes decoded TCP segments in capture order.
type Sink interface {
	Add(p *capture.Packet)
	// Behind says that segments may come up to d out of time order (the
	// interfaces of a pcapng): decisions must wait that much longer.
	Behind(d time.Duration)
}

// PlainSink is a Sink that also takes the TLS plaintext a capture file
// keeps beside its packets (capture.Reader.SetPlaintext), in file order.
type PlainSink interface {
	Sink
	AddPlaintext(p *capture.Plaintext)
}

// Filtered passes on the segments Match matches.
type Filtered struct {
	Match filter.Matcher
	Next  Sink
	tcp   layers.TCP // a plaintext piece's ports, matched as a segment's
}

func (f *Filtered) Add(p *capture.Packet) {
	if f.Match.Match(p.Net, p.TCP) {
		f.Next.Add(p)
	}
}

func (f *Filtered) Behind(d time.Duration) { f.Next.Behind(d) }

// AddPlaintext passes on the plaintext of the connections Match matches.
func (f *Filtered) AddPlaintext(p *capture.Plaintext) {
	ps, ok := f.Next.(PlainSink)
	if !ok {
		return
	}
	f.tcp.SrcPort, f.tcp.DstPort = layers.TCPPort(p.Src.Port()), layers.TCPPort(p.Dst.Port())
	if f.Match.Match(flowOf(p), &f.tcp) {
		ps.AddPlaintext(p)
	}
}

// flowOf is the network flow of a plaintext piece, as a packet of its
// direction would have it.
func flowOf(p *capture.Plaintext) gopacket.Flow {
	s, d := p.Src.Addr(), p.Dst.Addr()
	if s.Is4() && d.Is4() {
		s4, d4 := s.As4(), d.As4()
		return gopacket.NewFlow(layers.EndpointIPv4, s4[:], d4[:])
	}
	s16, d16 := s.As16(), d.As16()
	return gopacket.NewFlow(layers.EndpointIPv6, s16[:], d16[:])
}

// Pipeline reassembles segments and hands the events to an Analyzer,
// deciding settled attempts as capture time passes (schedule.go).
type Pipeline struct {
	single *single
	shard  *sharded
}

// Config says how a Pipeline or a Fanout runs; the zero value is one
// worker, no guard, no observer.
type Config struct {
	// Workers is how many goroutines reassemble (Pipeline: 0 or 1, all
	// inline on the caller's goroutine).
	Workers int
	// Guard, if not nil, is deferred by each goroutine the pipeline
	// starts, so that the caller may turn a panic into an exit of its own.
	Guard func()
	// Observer, if not nil, sees the events after the analyzer.
	Observer Observer
}

func (c *Config) guard() func() {
	if c.Guard == nil {
		return func() {}
	}
	return c.Guard
}

// New returns a pipeline that feeds an.
func New(an *analyze.Analyzer, opt reassembly.Options, c Config) *Pipeline {
	c.Guard = c.guard()
	opt.ManualFlush = true // the schedule flushes
	if c.Workers > 1 {
		return &Pipeline{shard: newSharded(c.Workers, an, opt, c)}
	}
	s := &single{an: an, obs: c.Observer}
	opt.NewID = s.log.newID
	s.asm = reassembly.New(&s.log, opt)
	return &Pipeline{single: s}
}

// Add feeds one segment.
func (p *Pipeline) Add(pkt *capture.Packet) {
	if p.single != nil {
		p.single.add(pkt)
	} else {
		p.shard.add(pkt)
	}
}

// Behind implements Sink.
func (p *Pipeline) Behind(d time.Duration) {
	if p.single != nil {
		p.single.sched.behind = max(p.single.sched.behind, d)
	} else {
		p.shard.sched.behind = max(p.shard.sched.behind, d)
	}
}

// AddPlaintext feeds a piece of a connection's TLS plaintext, where key-log
// decryption's would go (reassembly.Assembler.Plaintext). The schedule
// numbers it as it numbers a packet, so its events take their place in
// the one order whatever the workers.
func (p *Pipeline) AddPlaintext(pt *capture.Plaintext) {
	if p.single != nil {
		p.single.addPlaintext(pt)
	} else {
		p.shard.addPlaintext(pt)
	}
}

// Close ends every connection, waits until the analyzer has every event,
// and returns the reassembly counters. The caller then calls an.Finish.
func (p *Pipeline) Close() reassembly.Stats {
	if p.single != nil {
		p.single.close()
		return p.single.asm.Stats()
	}
	p.shard.close()
	return p.shard.stats()
}

// single is the one-goroutine pipeline: reassembly and analysis inline.
type single struct {
	asm   *reassembly.Assembler
	log   eventLog
	an    *analyze.Analyzer
	obs   Observer
	sched schedule
}

func (s *single) add(p *capture.Packet) {
	s.before(p.CI.Timestamp)
	s.asm.PacketVia(p.Net, p.TCP, p.CI, p.Cut, &p.Tunnel)
	s.applyPacket()
}

func (s *single) addPlaintext(pt *capture.Plaintext) {
	s.before(pt.Time)
	s.asm.Plaintext(pt)
	s.applyPacket()
}

// before numbers the next input item at ts and does what the schedule
// places before it: the flush, then the decision.
func (s *single) before(ts time.Time) {
	st := s.sched.next(ts)
	if st.flush {
		s.log.at = stamp(st.seq, atFlush)
		s.asm.Flush(s.sched.time(st.now))
		s.applyGroup()
	}
	if st.decide {
		s.an.Decide(s.sched.upTo(st.now))
	}
	s.log.at = stamp(st.seq, atPacket)
}

// applyPacket applies the events of one input item.
func (s *single) applyPacket() {
	if len(s.log.events) > 0 {
		apply(s.log.events, s.an, s.obs)
		s.log.events = s.log.events[:0]
	}
}

// applyGroup applies the events of a flush or of the close in their
// canonical order.
func (s *single) applyGroup() {
	canonical(s.log.events)
	apply(s.log.events, s.an, s.obs)
	s.log.events = s.log.events[:0]
}

func (s *single) close() {
	s.log.at = atClose
	s.asm.Close()
	s.applyGroup()
}

// PumpOptions are Pump's hooks, all optional.
type PumpOptions struct {
	// Tick is called every 64 Ki packets (a progress line).
	Tick func()
	// Stop, once true, ends the pump before the next packet.
	Stop *atomic.Bool
	// Cuts, when set, counts the packets the snap length cut.
	Cuts *Cuts
	// Offsets, when set, are how far each reader's clock is ahead
	// (offset.go): taken off its timestamps before they are merged.
	Offsets []time.Duration
}

// Cuts tallies the packets a capture's snap length cut (tcpdump -s 96 or
// -s 200): Snaplen is the longest captured length of a cut packet.
type Cuts struct {
	Packets uint64
	Snaplen int
}

// Count counts p when the snap length cut it.
func (c *Cuts) Count(p *capture.Packet) {
	if p.Cut > 0 {
		c.Packets++
		c.Snaplen = max(c.Snaplen, p.CI.CaptureLength)
	}
}

// Add sums x into c: the counts of several inputs.
func (c *Cuts) Add(x Cuts) {
	c.Packets += x.Packets
	c.Snaplen = max(c.Snaplen, x.Snaplen)
}

// interfaceSkew is how far out of time order the packets of a pcapng of
// several interfaces may come: dumpcap writes each interface's packets in
// blocks, as its capture hands them over, so the file is in time order
// per interface only. A pcap, or a pcapng of one interface, is in time
// order, and so is the merge of several of them.
const interfaceSkew = 10 * time.Second

// Pump merges the readers by timestamp (like mergecap) and feeds every
// TCP segment to the sink, and to a PlainSink the TLS plaintext the files
// keep (as the reader meets it: in its file's order). A read error ends
// that file with a warning: the verdicts that can be made from what was
// read still are. Once a reader shows a second interface, the sink is
// told its input may come interfaceSkew out of order.
func Pump(readers []*capture.Reader, sink Sink, o PumpOptions) (warnings []string) {
	if ps, ok := sink.(PlainSink); ok {
		for _, r := range readers {
			r.SetPlaintext(ps.AddPlaintext)
		}
	}
	type head struct {
		r     *capture.Reader
		pkt   *capture.Packet
		iface int  // the interface of its first packet
		mixed bool // it showed another since
	}
	heads := make([]head, 0, len(readers))
	offsets := map[*capture.Reader]time.Duration{}
	for i, r := range readers {
		if i < len(o.Offsets) && o.Offsets[i] != 0 {
			offsets[r] = o.Offsets[i]
		}
	}
	advance := func(r *capture.Reader) *capture.Packet {
		p, err := r.Next()
		if err != nil {
			if err != io.EOF {
				warnings = append(warnings, err.Error()+"; verdicts use the packets before it")
			}
			return nil
		}
		if d, ok := offsets[r]; ok {
			p.CI.Timestamp = p.CI.Timestamp.Add(-d)
		}
		return p
	}
	for _, r := range readers {
		if p := advance(r); p != nil {
			heads = append(heads, head{r: r, pkt: p, iface: p.CI.InterfaceIndex})
		}
	}
	var n uint64
	for len(heads) > 0 {
		if o.Stop != nil && o.Stop.Load() {
			break
		}
		best := 0
		for i := 1; i < len(heads); i++ {
			if heads[i].pkt.CI.Timestamp.Before(heads[best].pkt.CI.Timestamp) {
				best = i
			}
		}
		h := &heads[best]
		if h.pkt.CI.InterfaceIndex != h.iface && !h.mixed {
			h.mixed = true
			sink.Behind(interfaceSkew)
		}
		if o.Cuts != nil {
			o.Cuts.Count(h.pkt)
		}
		sink.Add(h.pkt)
		n++
		if o.Tick != nil && n&0xffff == 0 {
			o.Tick()
		}
		if next := advance(h.r); next != nil {
			h.pkt = next
		} else {
			heads = append(heads[:best], heads[best+1:]...)
		}
	}
	for _, r := range readers {
		if r.Skipped > 0 {
			warnings = append(warnings, fmt.Sprintf("%s: skipped packets of link types wsdiag cannot decode: %s", r.Name(), r.SkippedLinkTypes()))
		}
	}
	return warnings
}
