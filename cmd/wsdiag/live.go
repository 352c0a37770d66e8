package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
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
	count        int
	user         string
	snaplen      int
	bufferMB     int
}

func cmdLive(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wsdiag live", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	var lf liveFlags
	c.register(fs)
	fs.StringVarP(&lf.iface, "interface", "i", "any", "interface to capture on (\"any\": all)")
	fs.BoolVarP(&lf.list, "list-interfaces", "D", false, "list the interfaces and exit")
	fs.StringVarP(&lf.write, "write", "w", "", "also write the captured packets to FILE as pcapng (mode 0600; - for stdout)")
	fs.BoolVar(&lf.writeFailing, "write-failing", false, "with -w: write only the packets of attempts whose verdict is not ok")
	fs.DurationVar(&lf.duration, "duration", 0, "stop after this long (e.g. 30s, 10m)")
	fs.IntVarP(&lf.count, "count", "c", 0, "stop after this many attempts")
	fs.StringVarP(&lf.user, "user", "Z", "nobody", "drop root to USER once the capture socket is open (-Z root keeps it)")
	fs.IntVarP(&lf.snaplen, "snaplen", "s", 0, "bytes kept of each packet (default 262144)")
	fs.IntVarP(&lf.bufferMB, "buffer-size", "B", 32, "kernel ring size in MiB")
	fs.Usage = func() { fmt.Fprintf(stderr, "%s%s", liveUsage, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "wsdiag: %v\n", err)
		return exitTrouble
	}
	if lf.list {
		return listInterfaces(stdout, stderr)
	}
	opt, err := c.analyzeOptions()
	if err == nil && lf.writeFailing && lf.write == "" {
		err = errors.New("--write-failing needs -w FILE")
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsdiag: %v\n", err)
		return exitTrouble
	}
	ropt, err := c.reassemblyOptions()
	if err == nil {
		ropt.KeyLog, err = c.keyLog(nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsdiag: %v\n", err)
		return exitTrouble
	}
	// Verdicts as they happen: the other legs' events trail the client's
	// answer by milliseconds.
	opt.Grace = 500 * time.Millisecond

	l, err := capture.OpenLive(lf.iface, capture.LiveOptions{Snaplen: lf.snaplen, BufferMB: lf.bufferMB,
		Filter: strings.Join(fs.Args(), " "), ClientPorts: c.ports, Upstreams: opt.Upstreams, Timeout: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintf(stderr, "wsdiag: %v\n", oneLine(err))
		return exitTrouble
	}
	defer l.Close()
	var w *capture.Writer
	if lf.write != "" {
		if w, err = capture.CreateWriter(lf.write, l.LinkType()); err != nil {
			fmt.Fprintf(stderr, "wsdiag: %v\n", err)
			return exitTrouble
		}
		defer w.Close()
	}
	// The socket and the output file are open: root is no longer needed.
	if os.Geteuid() == 0 && lf.user != "root" {
		if err := capture.DropPrivileges(lf.user); err != nil {
			fmt.Fprintf(stderr, "wsdiag: %v (use -Z root to keep root)\n", err)
			return exitTrouble
		}
	}

	outFile, _ := stdout.(*os.File)
	errFile, _ := stderr.(*os.File)
	rend := newRenderer(c.format, stdout, c.verbose, c.showSecrets, wantTTY(c.color, outFile) && os.Getenv("NO_COLOR") == "")
	var ring *packetRing
	if lf.writeFailing {
		ring = newPacketRing(64<<20, 200000)
	}
	var decided atomic.Int64
	an := analyze.New(opt, func(v *analyze.Verdict) {
		rend.verdict(v)
		if v.Attempt() {
			decided.Add(1)
		}
		if ring != nil && !v.OK() {
			for _, e := range ring.matching(v) {
				w.WritePacket(e.ci, ring.bytesOf(e))
			}
			w.Flush()
		}
	})
	asm := reassembly.New(an, ropt)

	var stop atomic.Bool
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			stop.Store(true)
		}
	}()

	status := wantTTY(c.progress, errFile)
	start := time.Now()
	var deadline time.Time
	if lf.duration > 0 {
		deadline = start.Add(lf.duration)
	}
	var lastDecide, lastStatus time.Time
	var readErr error
	for !stop.Load() {
		p, err := l.Next()
		var now time.Time
		switch {
		case err == nil:
			now = p.CI.Timestamp
			if w != nil && ring == nil {
				w.WritePacket(p.CI, l.Raw())
			}
			if ring != nil {
				ring.add(p, l.Raw())
			}
			asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
		case errors.Is(err, capture.ErrTimeout):
			now = time.Now()
			asm.Flush(now)
		case errors.Is(err, io.EOF):
			stop.Store(true)
			continue
		default:
			readErr = err
			stop.Store(true)
			continue
		}
		if now.Sub(lastDecide) >= 100*time.Millisecond {
			an.Decide(now)
			lastDecide = now
			if status && time.Since(lastStatus) >= time.Second {
				lastStatus = time.Now()
				drawStatus(stderr, l, asm, an)
			}
			if !deadline.IsZero() && time.Now().After(deadline) || lf.count > 0 && decided.Load() >= int64(lf.count) {
				break
			}
		}
	}
	if status {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	l.Close()
	asm.Close()
	an.Finish()
	ls := l.Stats()
	st := an.Stats()
	var warnings []string
	if readErr != nil {
		warnings = append(warnings, oneLine(readErr))
	}
	if ls.KernelDrops > 0 {
		warnings = append(warnings, fmt.Sprintf("the kernel dropped %d of %d packets (ring full): verdicts may be missing or wrong; raise -B or narrow the filter", ls.KernelDrops, ls.Packets))
	}
	if ev := asm.Stats().QuietEvicted; ev > 0 {
		warnings = append(warnings, quietWarning(ev, c.maxFlows))
	}
	if ev := asm.Stats().Evicted; ev > 0 {
		warnings = append(warnings, fmt.Sprintf("%d connections evicted early: more than --max-flows=%d open at once", ev, c.maxFlows))
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "wsdiag: warning: %s\n", w)
	}
	fmt.Fprintf(stderr, "wsdiag: %d packets captured on %s, %d dropped by kernel, %d attempts\n", ls.TCP, l.Name(), ls.KernelDrops, st.Attempts)
	drops := ls.KernelDrops
	rend.summary(summary{stats: st, packets: ls.Received, tcp: ls.TCP, conns: asm.Stats().Connections,
		evictedFlows: asm.Stats().Evicted + asm.Stats().QuietEvicted, kernelDrops: &drops, warnings: warnings})
	if readErr != nil {
		return exitTrouble
	}
	if st.Attempts > st.ByCode[analyze.OK] {
		return exitNotOK
	}
	return exitOK
}

func drawStatus(w io.Writer, l *capture.Live, asm *reassembly.Assembler, an *analyze.Analyzer) {
	ls, as, st := l.Stats(), asm.Stats(), an.Stats()
	fmt.Fprintf(w, "\r\x1b[Kwsdiag: %d packets, %d open flows, %d attempts (%d ok, %d warn, %d error), %d kernel drops",
		ls.TCP, as.Open, st.Attempts, st.BySev[analyze.SevOK], st.BySev[analyze.SevWarn], st.BySev[analyze.SevError], ls.KernelDrops)
}

func listInterfaces(stdout, stderr io.Writer) int {
	ifs, err := capture.ListInterfaces()
	if err != nil {
		fmt.Fprintf(stderr, "wsdiag: %v\n", err)
		return exitTrouble
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
	return exitOK
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
