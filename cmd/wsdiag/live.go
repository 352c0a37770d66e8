package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
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
portrange, tcp, ip, ip6, and/or/not, parentheses).

Flags:
`

// liveFlags are the flags of live beyond the common ones.
type liveFlags struct {
	iface        string
	list         bool
	write        string
	writeFailing bool
	duration     time.Duration
	user         string
	snaplen      int
	bufferMB     int
	workers      int
	metrics      string
}

func cmdLive(e *env, args []string) (int, error) {
	fs := pflag.NewFlagSet("wsdiag live", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c common
	var lf liveFlags
	var pf proxyFlags
	c.register(fs)
	pf.register(fs)
	fs.StringSliceVar(&c.clientPorts, "client-ports", []string{"80", "443"}, "the proxy's client-facing ports, watched with --upstream by the kernel filter (legs are recognised by pairing, not by port)")
	fs.StringVarP(&lf.iface, "interface", "i", "any", "interface to capture on (\"any\": all)")
	fs.BoolVarP(&lf.list, "list-interfaces", "D", false, "list the interfaces and exit")
	fs.StringVarP(&lf.write, "write", "w", "", "also write the captured packets to FILE as pcapng (mode 0600; - for stdout, the text then goes to stderr)")
	fs.BoolVar(&lf.writeFailing, "write-failing", false, "with -w: write only the packets of attempts whose verdict is not ok")
	fs.DurationVar(&lf.duration, "duration", 0, "stop after this long (e.g. 30s, 10m)")
	fs.StringVarP(&lf.user, "user", "Z", "nobody", "drop root to USER once the capture socket is open (-Z root keeps it)")
	fs.IntVarP(&lf.snaplen, "snaplen", "s", 0, "bytes kept of each packet (default 262144)")
	fs.IntVarP(&lf.bufferMB, "buffer-size", "B", 32, "kernel ring size in MiB (per worker)")
	fs.StringVar(&lf.metrics, "metrics", "", "serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9469): /metrics and /healthz")
	fs.IntVar(&lf.workers, "workers", runtime.NumCPU(), "capture sockets in one PACKET_FANOUT group, each with its own reassembly goroutine (connections hashed over them)")
	fs.Usage = func() { fmt.Fprintf(e.stderr, "%s%s", liveUsage, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		return exitOK, err
	}
	e.log = newLogger(c.logFormat, e.stderr)
	if lf.list {
		return listInterfaces(e.stdout)
	}
	opt, err := c.analyzeOptions()
	if err == nil && lf.writeFailing && lf.write == "" {
		err = errors.New("--write-failing needs -w FILE")
	}
	if err == nil && (lf.workers < 1 || lf.workers > 64) {
		err = fmt.Errorf("--workers: %d is not between 1 and 64", lf.workers)
	}
	if err != nil {
		return 0, err
	}
	ropt, err := c.reassemblyOptions()
	var mb *memBudget
	if err == nil {
		mb, err = c.budget(&ropt, &opt, 1, lf.writeFailing)
	}
	if err == nil && !fs.Changed("buffer-size") {
		// The kernel rings are mapped into the process: their share of
		// the budget, an eighth, at most the default each.
		lf.bufferMB = min(lf.bufferMB, max(2, int(mb.b.Limit()>>20)/8/lf.workers))
	}
	if err == nil {
		mb.b.Add(reassembly.MemFixed, int64(lf.bufferMB)<<20*int64(lf.workers))
		ropt.KeyLog, err = c.keyLog(nil)
	}
	if err != nil {
		return 0, err
	}
	// Verdicts as they happen: the other legs' events trail the client's
	// answer by milliseconds.
	opt.Grace = 500 * time.Millisecond
	// The proxy's files are read while still root (nginx -T needs it).
	hook, err := pf.setup(&opt, true)
	if err != nil {
		return 0, err
	}

	met, err := startMetrics(lf.metrics)
	if err != nil {
		return 0, err
	}
	defer met.close()
	filter := strings.Join(fs.Args(), " ")
	socks, err := capture.OpenLiveFanout(lf.iface, capture.LiveOptions{Snaplen: lf.snaplen, BufferMB: lf.bufferMB,
		Filter: filter, ClientPorts: c.ports, Upstreams: opt.Upstreams, Timeout: 100 * time.Millisecond}, lf.workers)
	if err != nil {
		return 0, errors.New(oneLine(err))
	}
	l := socks[0]
	defer func() {
		for _, l := range socks {
			l.Close()
		}
	}()
	// -w -: stdout carries the packets alone, the text goes to stderr.
	out := e.stdout
	tap := &liveTap{}
	if lf.write != "" {
		var w *capture.Writer
		if lf.write == "-" {
			w, err = capture.NewWriter(e.stdout, l.LinkType())
			out = e.stderr
		} else {
			w, err = capture.CreateWriter(lf.write, l.LinkType())
		}
		if err != nil {
			return 0, err
		}
		tap.pw = &pcapOut{w: w}
		defer tap.pw.close()
	}
	rep := c.newReport("live on "+lf.iface, true)
	if err := rep.WriteFile(c.html); err != nil { // while still root: the file exists for the -Z user
		return 0, err
	}
	// The socket and the output file are open: root is no longer needed.
	if os.Geteuid() == 0 && lf.user != "root" {
		if err := capture.DropPrivileges(lf.user); err != nil {
			return 0, fmt.Errorf("%v (use -Z root to keep root)", err)
		}
	}

	s := newSession(e, &c, opt, out)
	s.consumers = append(s.consumers, rep.Add)
	stopReport := rep.Autosave(c.html, 2*time.Second)
	hook.attach(s)
	if len(c.upstreams) > 0 && filter == "" && !fs.Changed("client-ports") {
		s.warn("--upstream without --client-ports or a filter expression: the kernel filter captures only ports %s and the upstreams (a proxy listening elsewhere: --client-ports PORT)", strings.Join(c.clientPorts, ", "))
		s.flushWarnings()
	}
	if lf.writeFailing {
		tap.ring = newPacketRing(mb.ringSize, mb.ringSize/335)
		s.consumers = append(s.consumers, func(v *analyze.Verdict) {
			tap.mu.Lock()
			defer tap.mu.Unlock()
			tap.ring.take(v, !v.OK(), func(ci gopacket.CaptureInfo, b []byte) { tap.pw.write(ci, b) })
		})
	}

	s.consumers = append(s.consumers, met.verdict)

	var stop atomic.Bool
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			stop.Store(true)
		}
	}()

	status := wantTTY(c.progress, e.stderr)
	start := time.Now()
	var deadline time.Time
	if lf.duration > 0 {
		deadline = start.Add(lf.duration)
	}
	feeds := make([]pipeline.Feed, len(socks))
	for i, l := range socks {
		feeds[i] = socketFeed{l, tap}
	}
	fan := pipeline.NewFanout(feeds, ropt, pipeline.Config{Guard: exitOnPanic})
	var lastStatus, lastFlush time.Time
	readErr := fan.Run(s.an, pipeline.Hooks{Observer: met.observer(), Stop: &stop, Tick: func(now time.Time) bool {
		if met != nil {
			met.tick(now, sockStats(socks), fan.Stats(), s.an)
		}
		if status && time.Since(lastStatus) >= time.Second {
			lastStatus = time.Now()
			drawStatus(e.stderr, sockStats(socks), fan.Stats().Open, s.an)
		}
		if time.Since(lastFlush) >= time.Second {
			lastFlush = time.Now()
			tap.flush()
		}
		return s.full.Load() || tap.failed() || !deadline.IsZero() && time.Now().After(deadline)
	}})
	if status {
		fmt.Fprint(e.stderr, "\r\x1b[K")
	}
	s.an.Finish()
	ls, as := sockStats(socks), fan.Stats()
	var wErr error
	if tap.pw != nil {
		wErr = tap.pw.close()
	}
	if readErr != nil {
		s.warn("%s", oneLine(readErr))
	}
	if ls.kernelDrops > 0 {
		s.warn("the kernel dropped %d of %d packets (ring full): verdicts may be missing or wrong; raise -B or narrow the filter", ls.kernelDrops, ls.accepted)
	}
	s.resourceWarnings(as.Evicted, as.QuietEvicted)
	mb.warnings(s, as.MemEvicted, s.an.Stats().MemEvicted)
	if wErr != nil {
		s.warn("-w: %v", wErr)
	}
	hook.finishInto(s, textOut(c.format, out, e.stderr))
	s.flushWarnings()
	e.log.Info().Msgf("%d packets captured on %s, %d dropped by kernel, %d attempts", ls.tcp, l.Name(), ls.kernelDrops, s.attempts.Load())
	drops := ls.kernelDrops
	sum := summary{packets: ls.received, tcp: ls.tcp, conns: as.Connections, evictedFlows: as.Evicted + as.QuietEvicted, kernelDrops: &drops}
	mb.summary(&sum)
	code := s.finish(sum)
	reportSummary(rep, sum, s.warnings)
	if err := stopReport(); err != nil {
		return 0, fmt.Errorf("%v (the directory must be writable by the -Z user)", err)
	}
	if readErr != nil || wErr != nil {
		return exitTrouble, nil
	}
	return code, nil
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

func drawStatus(w io.Writer, ls sockFigures, open int, an *analyze.Analyzer) {
	st := an.Stats()
	fmt.Fprintf(w, "\r\x1b[Kwsdiag: %d packets, %d open flows, %d attempts (%d ok, %d warn, %d error), %d kernel drops",
		ls.tcp, open, st.Attempts, st.BySev[analyze.SevOK], st.BySev[analyze.SevWarn], st.BySev[analyze.SevError], ls.kernelDrops)
}

func listInterfaces(stdout io.Writer) (int, error) {
	ifs, err := capture.ListInterfaces()
	if err != nil {
		return 0, err
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
	return exitOK, nil
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
