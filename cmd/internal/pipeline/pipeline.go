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
type Sink interface{ Add(p *capture.Packet) }

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
// deciding settled attempts as capture time passes.
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
	if c.Workers > 1 {
		return &Pipeline{shard: newSharded(c.Workers, an, opt, c)}
	}
	return &Pipeline{single: &single{asm: reassembly.New(Tee(an, c.Observer), opt), an: an}}
}

// Add feeds one segment.
func (p *Pipeline) Add(pkt *capture.Packet) {
	if p.single != nil {
		p.single.add(pkt)
	} else {
		p.shard.add(pkt)
	}
}

// AddPlaintext feeds a piece of a connection's TLS plaintext, where key-log
// decryption's would go (reassembly.Assembler.Plaintext).
func (p *Pipeline) AddPlaintext(pt *capture.Plaintext) {
	if p.single != nil {
		p.single.asm.Plaintext((*reassembly.Plain)(pt))
	} else {
		p.shard.addPlaintext(pt)
	}
}

// Close ends every connection, waits until the analyzer has every event,
// and returns the reassembly counters. The caller then calls an.Finish.
func (p *Pipeline) Close() reassembly.Stats {
	if p.single != nil {
		p.single.asm.Close()
		return p.single.asm.Stats()
	}
	p.shard.close()
	return p.shard.stats()
}

// single is the one-goroutine pipeline: reassembly and analysis inline.
type single struct {
	asm        *reassembly.Assembler
	an         *analyze.Analyzer
	now        time.Time
	lastDecide time.Time
	since      int // packets since the last decision
}

// decideEvery is the fewest packets between two decisions: deciding once
// per second of capture time alone would let a capture whose every packet
// is a second later make it once per packet.
const decideEvery = 4096

func (s *single) add(p *capture.Packet) {
	s.asm.PacketVia(p.Net, p.TCP, p.CI, p.Cut, &p.Tunnel)
	if t := p.CI.Timestamp; t.After(s.now) {
		s.now = t
	}
	s.since++
	if s.since >= decideEvery && s.now.Sub(s.lastDecide) >= time.Second {
		s.since = 0
		// Decide settled attempts as capture time passes, so memory stays
		// bounded on long captures.
		s.an.Decide(s.now)
		s.lastDecide = s.now
	}
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

// Pump merges the readers by timestamp (like mergecap) and feeds every
// TCP segment to the sink, and to a PlainSink the TLS plaintext the files
// keep (as the reader meets it: in its file's order). A read error ends
// that file with a warning: the verdicts that can be made from what was
// read still are.
func Pump(readers []*capture.Reader, sink Sink, o PumpOptions) (warnings []string) {
	if ps, ok := sink.(PlainSink); ok {
		for _, r := range readers {
			r.SetPlaintext(ps.AddPlaintext)
		}
	}
	type head struct {
		r   *capture.Reader
		pkt *capture.Packet
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
			heads = append(heads, head{r, p})
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
