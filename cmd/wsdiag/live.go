package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
	"github.com/wsdiag/wsdiag/reassembly"
)

const liveUsage = `Usage: sudo wsdiag live [flags] [FILTER EXPRESSION]

Captures on the proxy host (Linux, root or CAP_NET_RAW) and prints a verdict
for every WebSocket attempt as soon as it is decided. The optional trailing
expression narrows the capture (a subset of pcap-filter: host, net, port,
portrange, tcp, ip, ip6, and/or/not, parentheses). Overlay packets (VXLAN on
UDP 4789 and 8472, Geneve on 6081, GRE, IP in IP) are unwrapped, and the
expression applies to the connection inside: on a node's underlay interface
'port 9001' is the pods' port 9001, not the outer UDP port.

Flags:
`

func cmdLive(e *env, args []string) (int, error) { return runCommand(e, args, &liveSource{}) }

// liveSource is live's input: one AF_PACKET socket per worker in a
// PACKET_FANOUT group, each read by its own pipeline.Fanout worker; the
// raw packets also go to -w.
type liveSource struct {
	iface        string
	list         bool
	write        string
	writeFailing bool
	duration     time.Duration
	user         string
	snaplen      int
	bufferMB     int
	workers      int
	filter       string
	clientPorts  bool // --client-ports given
	bufferSet    bool // -B given
	plainFlags
	plain        *plainInput // --tls-plaintext's probes, once attached
	rootForPlain bool        // root is kept for them (no -Z given)

	socks   []*capture.Live
	feeds   []*socketFeed
	tap     *liveTap
	fan     *pipeline.Fanout
	status  bool // the status line on stderr
	readErr error
}

func (l *liveSource) usage() string { return liveUsage }

func (l *liveSource) register(fs *pflag.FlagSet, c *common) {
	c.registerCapture(fs)
	fs.StringSliceVar(&c.clientPorts, "client-ports", []string{"80", "443"}, "the proxy's client-facing ports, watched with --upstream by the kernel filter (legs are recognised by pairing, not by port)")
	fs.StringVarP(&l.iface, "interface", "i", "any", "interface to capture on (\"any\": all)")
	fs.BoolVarP(&l.list, "list-interfaces", "D", false, "list the interfaces and exit")
	fs.StringVarP(&l.write, "write", "w", "", "also write the captured packets to FILE as pcapng (mode 0600; - for stdout, the text then goes to stderr)")
	fs.BoolVar(&l.writeFailing, "write-failing", false, "with -w: write only the packets of attempts whose verdict is not ok")
	fs.DurationVar(&l.duration, "duration", 0, "stop after this long (e.g. 30s, 10m)")
	fs.StringVarP(&l.user, "user", "Z", "nobody", "drop root to USER once the capture socket is open (-Z root keeps it)")
	fs.IntVarP(&l.snaplen, "snaplen", "s", 0, "bytes kept of each packet (default 262144)")
	fs.IntVarP(&l.bufferMB, "buffer-size", "B", 32, "kernel ring size in MiB (per worker)")
	fs.StringVar(&c.metrics, "metrics", "", "serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9469): /metrics and /healthz")
	fs.IntVar(&l.workers, "workers", runtime.NumCPU(), "capture sockets in one PACKET_FANOUT group, each with its own reassembly goroutine (connections hashed over them)")
	l.plainFlags.register(fs)
}

func (l *liveSource) plan(s *session, fs *pflag.FlagSet) error {
	if l.list {
		if err := listInterfaces(s.e.stdout); err != nil {
			return err
		}
		return errDone
	}
	if l.writeFailing && l.write == "" {
		return errors.New("--write-failing needs -w FILE")
	}
	if l.workers < 1 || l.workers > 64 {
		return fmt.Errorf("--workers: %d is not between 1 and 64", l.workers)
	}
	l.filter, l.clientPorts, l.bufferSet = strings.Join(fs.Args(), " "), fs.Changed("client-ports"), fs.Changed("buffer-size")
	if err := l.plainFlags.check(); err != nil {
		return err
	}
	if l.plainFlags.on {
		// One worker: a connection's plaintext must reach the Assembler
		// that holds its packets, and the kernel's fanout hash is not
		// ours to compute. Root stays: the proxies' new processes (a
		// reload's workers) need it to be probed.
		l.workers = 1
		if !fs.Changed("user") {
			l.user, l.rootForPlain = "root", true
		}
	}
	// Verdicts as they happen: the other legs' events trail the client's
	// answer by milliseconds.
	s.opt.Grace = 500 * time.Millisecond
	s.opt.Assemblers = l.workers - 1 // the verdicts' bodies over the other cores
	if l.write == "-" {
		s.plan.out = s.e.stderr // stdout carries the packets alone
	}
	s.plan.title, s.plan.onHost, s.plan.live, s.plan.dropTo = "live on "+l.iface, true, true, l.user
	s.plan.shardWorkers, s.plan.ring = 1, l.writeFailing // the Fanout's batches hold events only
	return nil
}

// open opens the sockets and -w; the kernel rings are mapped into the
// process, so they are part of the memory budget.
func (l *liveSource) open(s *session) error {
	if !l.bufferSet {
		// An eighth of the budget, at most the default each.
		l.bufferMB = min(l.bufferMB, max(2, int(s.mem.b.Limit()>>20)/8/l.workers))
	}
	s.mem.b.Add(reassembly.MemFixed, int64(l.bufferMB)<<20*int64(l.workers))
	// The probes first: a connection the capture sees open is then seen
	// by the probes from its handshake.
	l.plain = l.plainFlags.open(s)
	if l.plain == nil && l.rootForPlain {
		s.plan.dropTo = "nobody" // no probes to follow new processes with
	}
	socks, err := capture.OpenLiveFanout(l.iface, capture.LiveOptions{Snaplen: l.snaplen, BufferMB: l.bufferMB,
		Filter: l.filter, ClientPorts: s.c.ports, Upstreams: s.opt.Upstreams, Timeout: 100 * time.Millisecond}, l.workers)
	if err != nil {
		return errors.New(oneLine(err))
	}
	l.socks = socks
	s.onExit(func() {
		for _, sock := range socks {
			sock.Close()
		}
	})
	l.tap = &liveTap{}
	if l.write == "" {
		return nil
	}
	var w *capture.Writer
	if l.write == "-" {
		w, err = capture.NewWriter(s.e.stdout, socks[0].LinkType())
	} else {
		w, err = capture.CreateWriter(l.write, socks[0].LinkType())
	}
	if err != nil {
		return err
	}
	l.tap.pw = &pcapOut{w: w}
	s.onExit(func() { l.tap.pw.close() })
	return nil
}

func (l *liveSource) run(s *session) error {
	if len(s.c.upstreams) > 0 && l.filter == "" && !l.clientPorts {
		s.warn("--upstream without --client-ports or a filter expression: the kernel filter captures only ports %s and the upstreams (a proxy listening elsewhere: --client-ports PORT)", strings.Join(s.c.clientPorts, ", "))
		s.flushWarnings()
	}
	if l.writeFailing {
		l.tap.ring = newPacketRing(s.mem.ringSize, s.mem.ringSize/335)
		s.consumers = append(s.consumers, l.tap.verdict)
	}
	feeds := make([]pipeline.Feed, len(l.socks))
	for i, sock := range l.socks {
		l.feeds = append(l.feeds, &socketFeed{l: sock, tap: l.tap, plain: l.plain})
		feeds[i] = l.feeds[i]
	}
	l.fan = pipeline.NewFanout(feeds, s.ropt, pipeline.Config{Guard: exitOnPanic})
	l.status = wantTTY(s.c.progress, s.e.stderr)
	l.readErr = l.fan.Run(s.an, pipeline.Hooks{Observer: s.met.observer(), Stop: &s.stop, Tick: l.ticker(s)})
	s.status.clear()
	return nil
}

// ticker returns what runs after each decision: the metrics, the status
// line, -w's flush, and whether to stop.
func (l *liveSource) ticker(s *session) func(time.Time) bool {
	var deadline, lastStatus, lastFlush time.Time
	if l.duration > 0 {
		deadline = time.Now().Add(l.duration)
	}
	return func(now time.Time) bool {
		s.met.tick(now, sockStats(l.socks), l.fan.Stats(), s.an, l.plain)
		if l.status && time.Since(lastStatus) >= time.Second {
			lastStatus = time.Now()
			drawStatus(&s.status, sockStats(l.socks), l.fan.Stats().Open, s.an)
		}
		if time.Since(lastFlush) >= time.Second {
			lastFlush = time.Now()
			l.tap.flush()
		}
		return l.tap.failed() || !deadline.IsZero() && time.Now().After(deadline)
	}
}

func (l *liveSource) close(s *session, sum *SummaryLine) ending {
	ls := sockStats(l.socks)
	var wErr error
	if l.tap.pw != nil {
		wErr = l.tap.pw.close()
	}
	if l.readErr != nil {
		s.warn("%s", oneLine(l.readErr))
	}
	if ls.kernelDrops > 0 {
		s.warn("the kernel dropped %d of %d packets (ring full): verdicts may be missing or wrong; raise -B or narrow the filter", ls.kernelDrops, ls.accepted)
	}
	if wErr != nil {
		s.warn("-w: %v", wErr)
	}
	drops := ls.kernelDrops
	sum.Packets, sum.TCPPackets, sum.KernelDrops = ls.received, ls.tcp, &drops
	l.plain.close(s, sum, l.fan.Stats())
	var cuts pipeline.Cuts
	for _, f := range l.feeds {
		cuts.Add(f.cuts)
	}
	return ending{asm: l.fan.Stats(), cuts: cuts, failed: l.readErr != nil || wErr != nil}
}

func (l *liveSource) done(s *session, sum *SummaryLine) {
	s.e.log.Info().Msgf("%d packets captured on %s, %d dropped by kernel, %d attempts", sum.TCPPackets, l.socks[0].Name(), *sum.KernelDrops, s.attempts.Load())
}

// pcapOut writes -w: the first error stops the writing (and the capture)
// and is reported.
type pcapOut struct {
	w      *capture.Writer
	err    error
	closed bool
}

func (o *pcapOut) write(ci gopacket.CaptureInfo, b []byte) {
	if o.err == nil {
		o.err = o.w.WritePacket(ci, b)
	}
}

func (o *pcapOut) writePlain(pt *capture.Plaintext) {
	if o.err == nil {
		o.err = o.w.WritePlaintext(pt)
	}
}

func (o *pcapOut) flush() {
	if o.err == nil {
		o.err = o.w.Flush()
	}
}

func (o *pcapOut) close() error {
	if o.closed {
		return o.err
	}
	o.closed = true
	if err := o.w.Close(); o.err == nil {
		o.err = err
	}
	return o.err
}

// drawStatus draws live's status line on a terminal.
func drawStatus(line *statusLine, ls sockFigures, open int, an *analyze.Analyzer) {
	st := an.Stats()
	line.draw(fmt.Sprintf("wsdiag: %d packets, %d open flows, %d attempts (%d ok, %d warn, %d error), %d kernel drops",
		ls.tcp, open, st.Attempts, st.BySev[analyze.SevOK], st.BySev[analyze.SevWarn], st.BySev[analyze.SevError], ls.kernelDrops))
}

// listInterfaces is live -D.
func listInterfaces(stdout io.Writer) error {
	ifs, err := capture.ListInterfaces()
	if err != nil {
		return err
	}
	for i, ifc := range ifs {
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{ifc.Up, "Up"}, {ifc.Running, "Running"}, {ifc.Loopback, "Loopback"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		desc := ""
		if ifc.Description != "" {
			desc = " (" + ifc.Description + ")"
		}
		fmt.Fprintf(stdout, "%d.%s%s [%s]\n", i+1, ifc.Name, desc, strings.Join(flags, ", "))
	}
	return nil
}

// oneLine keeps an error message on one line (the filter error's syntax
// help comes after a newline).
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
