package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/tlsplain"
	"github.com/wsdiag/wsdiag/reassembly"
)

// live --tls-plaintext: the proxies' own TLS plaintext, read by eBPF
// uprobes on their libssl (capture/tlsplain), stands for the key log the
// host does not have. Each piece goes to the Assembler where decryption's
// would, before the first packet captured after the call that moved it
// returned; -w keeps it beside the packets as Wireshark exported PDUs,
// which read takes back. Without BPF a one-line warning says why, and
// live runs as without the flag.

// openProbes opens the probes (a variable: a test stands in a kernel
// without BPF).
var openProbes = tlsplain.Open

// plainSettle is how far behind the clock a quiet capture is sure to have
// every packet: the sockets hand their blocks over within 20 ms.
const plainSettle = 60 * time.Millisecond

// plainInput is --tls-plaintext's state in live; nil when the flag is
// off or the probes could not start (its methods then do nothing).
type plainInput struct {
	probe *tlsplain.Probe
	src   *tlsplain.Source
	feed  func(*capture.Plaintext) // (the worker's: one worker reads)
	asm   *reassembly.Assembler
	tap   *liveTap
}

// plainFlags are the flags.
type plainFlags struct {
	on     bool
	budget float64 // percent of one CPU
}

func (f *plainFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.on, "tls-plaintext", false, "read the proxies' own TLS plaintext (eBPF uprobes on libssl of nginx, haproxy, apache2/httpd and what listens on --client-ports; root, Linux ≥ 5.8 with BTF): wss:// judged without keys; one capture worker")
	fs.Float64Var(&f.budget, "tls-plaintext-budget", 100*tlsplain.DefaultBudget, "with --tls-plaintext: the percent of one CPU the probes may cost the proxies; above it new connections are captured by sampling (0: no limit)")
}

func (f *plainFlags) check() error {
	if f.budget < 0 || f.budget > 10000 {
		return fmt.Errorf("--tls-plaintext-budget: %v is not a percentage of a CPU", f.budget)
	}
	return nil
}

// open attaches the probes, or says in a warning why it cannot.
func (f *plainFlags) open(s *session) *plainInput {
	if !f.on {
		return nil
	}
	budget := f.budget / 100
	if budget == 0 {
		budget = -1 // no limit
	}
	p, err := openProbes(tlsplain.Options{Ports: s.c.ports, Budget: budget})
	if err != nil {
		// (tlsplain.ErrUnsupported's reason: not root, no BTF, an old
		// kernel; or an attach that failed.)
		s.warn("--tls-plaintext: %s; TLS client legs are judged without it", oneLine(err))
		s.flushWarnings()
		return nil
	}
	in := &plainInput{probe: p, src: tlsplain.NewSource(p, 0)}
	s.onExit(func() {
		in.src.Close()
		p.Close()
	})
	if len(p.Procs()) == 0 {
		s.warn("--tls-plaintext: no proxy process with libssl found (nginx, haproxy, apache2, httpd, or one listening on %v); it is looked for every 2 s", s.c.ports)
		s.flushWarnings()
	}
	return in
}

// due hands asm every piece whose call returned by upTo, and -w its copy.
func (in *plainInput) due(upTo time.Time, asm *reassembly.Assembler, tap *liveTap) {
	if in == nil {
		return
	}
	if in.feed == nil || in.asm != asm {
		in.asm, in.tap = asm, tap
		in.feed = func(pt *capture.Plaintext) {
			in.tap.plaintext(pt)
			in.asm.Plaintext(pt)
		}
	}
	in.src.Due(upTo, in.feed)
}

// close gives the summary its figures and warns of what was lost.
func (in *plainInput) close(s *session, sum *SummaryLine, as reassembly.Stats) {
	if in == nil {
		return
	}
	st := in.probe.Stats()
	sum.TLSPlaintext = &PlaintextSummary{Processes: st.Procs, Connections: st.Conns, Skipped: st.SkippedConns,
		RingDrops: st.Drops, LostBytes: as.PlainLost, MidStream: as.PlainMidStream, H2MidStream: as.PlainH2,
		Pauses: st.Pauses, PausedS: st.PausedFor.Seconds(), CostPct: 100 * st.Cost, PeakPct: 100 * st.Peak,
		CallUs: float64(st.Costs.Call) / 1e3}
	sum.PlainH2 = as.PlainH2
	if err := in.src.Err(); err != nil {
		s.warn("--tls-plaintext: reading the probes' ring: %v", err)
	}
	if st.Drops > 0 {
		s.warn("--tls-plaintext: the probes' ring was full %d times (%d bytes of plaintext lost): those connections are judged with a gap", st.Drops, st.DropBytes)
	}
	if st.Pauses > 0 {
		s.warn("--tls-plaintext: the probes were off %s in %d pauses: even with every new connection left out their traps cost more than --tls-plaintext-budget", st.PausedFor.Round(time.Second), st.Pauses)
	}
}

// figures are the probes' counters for the metrics (nil-safe).
func (in *plainInput) figures() *tlsplain.Stats {
	if in == nil {
		return nil
	}
	st := in.probe.Stats()
	return &st
}
