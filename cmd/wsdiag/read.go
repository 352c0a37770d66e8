package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"
)

// common holds the flags shared by read and (later) live.
type common struct {
	verbose     int
	format      string
	all         bool
	clientPorts []string
	ports       []uint16 // clientPorts, parsed: live's kernel filter watches them
	upstreams   []string
	showSecrets bool
	color       string
	progress    string
	maxFlows    int
	maxHeader   int
	maxPending  int
	keylogs     []string
}

func (c *common) register(fs *pflag.FlagSet) {
	fs.CountVarP(&c.verbose, "verbose", "v", "show evidence, error-log line and fix under each verdict (-vv: every header of every leg)")
	fs.StringVar(&c.format, "format", "text", "output format: text or json (one JSON object per line)")
	fs.BoolVar(&c.all, "all", false, "report plain HTTP exchanges too")
	fs.StringSliceVar(&c.clientPorts, "client-ports", []string{"80", "443"}, "live: the proxy's client-facing ports, watched with --upstream by the kernel filter (legs are recognised by pairing, not by port)")
	fs.StringSliceVar(&c.upstreams, "upstream", nil, "HOST:PORT (or :PORT) of backends: only these count as upstream legs")
	fs.BoolVar(&c.showSecrets, "show-secrets", false, "quote Cookie, Authorization and Set-Cookie values instead of redacting them")
	fs.StringVar(&c.color, "color", "auto", "colour the text output: auto (on a terminal), always, never")
	fs.StringVar(&c.progress, "progress", "auto", "progress line on stderr: auto (on a terminal), always, never")
	fs.IntVar(&c.maxFlows, "max-flows", reassembly.DefaultOptions.MaxFlows, "open TCP connections tracked at once; past it the idlest are evicted (counted in the summary)")
	fs.IntVar(&c.maxHeader, "max-header-bytes", reassembly.DefaultLimits.MaxHeaderBytes, "largest HTTP header block parsed; longer ones are cut and flagged")
	fs.StringArrayVar(&c.keylogs, "keylog", nil, "decrypt TLS with the secrets in FILE (NSS key log: SSLKEYLOGFILE); repeatable. Keys embedded in a pcapng (Decryption Secrets Blocks) are read anyway")
	fs.IntVar(&c.maxPending, "max-pending", analyze.DefaultOptions.MaxPending, "HTTP exchanges kept waiting for a pairing partner; past it the oldest are decided unpaired")
}

// keyLog reads the --keylog files. When files (captures) are given, the
// result is never nil: the capture readers add the secrets embedded in a
// pcapng to it as they meet them (capture.Reader.SetKeyLog).
func (c *common) keyLog(files []string) (*tlsrec.KeyLog, error) {
	var k *tlsrec.KeyLog
	if len(files) > 0 {
		k = tlsrec.NewKeyLog()
	}
	for _, name := range c.keylogs {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--keylog: %v", err)
		}
		x, err := tlsrec.ParseKeyLog(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--keylog %s: %v", name, err)
		}
		if x.Len() == 0 {
			return nil, fmt.Errorf("--keylog %s: no TLS secrets in it (NSS key log lines such as CLIENT_RANDOM …)", name)
		}
		if k == nil {
			k = tlsrec.NewKeyLog()
		}
		k.Add(x)
	}
	return k, nil
}

// reassemblyOptions applies the resource flags.
func (c *common) reassemblyOptions() (reassembly.Options, error) {
	o := reassembly.DefaultOptions
	if c.maxFlows < 100 || c.maxHeader < 1024 || c.maxHeader > 1<<20 || c.maxPending < 100 {
		return o, fmt.Errorf("resource limits: --max-flows ≥ 100, --max-header-bytes 1024…1048576, --max-pending ≥ 100")
	}
	o.MaxFlows, o.MaxHeaderBytes = c.maxFlows, c.maxHeader
	return o, nil
}

func (c *common) analyzeOptions() (analyze.Options, error) {
	opt := analyze.DefaultOptions
	opt.All = c.all
	opt.MaxPending = c.maxPending
	// Offline, wait long before deciding: dumpcap writes a pcapng of
	// several interfaces in per-interface blocks, not in time order, so the
	// other leg of an attempt may come later in the file.
	opt.Grace = 10 * time.Second
	opt.WaitSession = true
	c.ports = nil
	for _, p := range c.clientPorts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil {
			return opt, fmt.Errorf("--client-ports: %q is not a port", p)
		}
		c.ports = append(c.ports, uint16(n))
	}
	for _, u := range c.upstreams {
		u = strings.TrimSpace(u)
		if strings.HasPrefix(u, ":") {
			n, err := strconv.ParseUint(u[1:], 10, 16)
			if err != nil {
				return opt, fmt.Errorf("--upstream: %q is not HOST:PORT or :PORT", u)
			}
			opt.Upstreams = append(opt.Upstreams, netip.AddrPortFrom(netip.Addr{}, uint16(n)))
			continue
		}
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			return opt, fmt.Errorf("--upstream: %q is not HOST:PORT (an IP address and a port) or :PORT", u)
		}
		opt.Upstreams = append(opt.Upstreams, ap)
	}
	switch c.format {
	case "text", "json":
	default:
		return opt, fmt.Errorf("--format: %q is not text or json", c.format)
	}
	for _, f := range []struct{ name, v string }{{"--color", c.color}, {"--progress", c.progress}} {
		switch f.v {
		case "auto", "always", "never":
		default:
			return opt, fmt.Errorf("%s: %q is not auto, always or never", f.name, f.v)
		}
	}
	return opt, nil
}

func wantTTY(mode string, f *os.File) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return f != nil && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func cmdRead(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wsdiag read", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	var files []string
	var workers int
	c.register(fs)
	fs.IntVar(&workers, "workers", defaultWorkers(), "goroutines that reassemble, connections sharded over them (1: all in one)")
	fs.StringArrayVarP(&files, "read", "r", nil, "read packets from FILE (tcpdump style; repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wsdiag read [flags] FILE... [-- FILTER EXPRESSION]\n       wsdiag -r FILE [flags] [FILTER EXPRESSION]\n\nReads pcap or pcapng captures (gzip too; \"-\" is stdin) taken on a reverse-proxy host\nand judges every WebSocket handshake attempt. Several files are merged by time.\nThe filter is a subset of pcap-filter: [src|dst] host|net|port|portrange, tcp, ip, ip6,\nand/or/not, parentheses.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "wsdiag: %v\n", err)
		return exitTrouble
	}
	// tcpdump style: with -r the words after the flags are a filter
	// expression; with "read FILE...", the expression follows "--".
	args, expr := fs.Args(), ""
	if len(files) > 0 {
		expr, args = strings.Join(args, " "), nil
	} else if at := fs.ArgsLenAtDash(); at >= 0 {
		expr, args = strings.Join(args[at:], " "), args[:at]
	}
	files = append(files, args...)
	if len(files) == 0 {
		fmt.Fprintln(stderr, "wsdiag: read: no capture file given (use - for stdin)")
		return exitTrouble
	}
	opt, err := c.analyzeOptions()
	if err == nil && (workers < 1 || workers > 64) {
		err = fmt.Errorf("--workers: %d is not between 1 and 64", workers)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsdiag: %v\n", err)
		return exitTrouble
	}
	ropt, err := c.reassemblyOptions()
	if err == nil {
		ropt.KeyLog, err = c.keyLog(files)
	}
	var match capture.Matcher
	if err == nil && expr != "" {
		if match, err = capture.NewMatcher(expr); err != nil {
			err = errors.New(oneLine(err))
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsdiag: %v\n", err)
		return exitTrouble
	}

	var readers []*capture.Reader
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	for _, name := range files {
		if stdin == nil {
			stdin = os.Stdin
		}
		r, err := capture.OpenStdin(name, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "wsdiag: %v\n", err)
			return exitTrouble
		}
		r.SetKeyLog(ropt.KeyLog)
		readers = append(readers, r)
	}

	outFile, _ := stdout.(*os.File)
	errFile, _ := stderr.(*os.File)
	rend := newRenderer(c.format, stdout, c.verbose, c.showSecrets, wantTTY(c.color, outFile) && os.Getenv("NO_COLOR") == "")
	var attempts atomic.Uint64 // for the progress line, read from another goroutine
	an := analyze.New(opt, func(v *analyze.Verdict) {
		if v.Attempt() {
			attempts.Add(1)
		}
		rend.verdict(v)
	})

	var prog *progress
	if wantTTY(c.progress, errFile) {
		prog = newProgress(stderr, files)
	}
	var (
		sink  packetSink
		asm   *reassembly.Assembler
		shard *sharded
	)
	if workers > 1 {
		shard = newSharded(workers, an, ropt)
		sink = shard
	} else {
		asm = reassembly.New(an, ropt)
		sink = &single{asm: asm, an: an}
	}
	if expr != "" {
		sink = &filtered{match: match, next: sink}
	}
	var cuts cutCount
	warnings := pump(readers, sink, prog, &attempts, &cuts)
	if prog != nil {
		prog.done()
	}
	var as reassembly.Stats
	if shard != nil {
		shard.close()
		as = shard.stats()
	} else {
		asm.Close()
		as = asm.Stats()
	}
	an.Finish()

	st := an.Stats()
	var pk, tcp uint64
	for _, r := range readers {
		pk += r.Packets
		tcp += r.TCP
	}
	if ev := as.Evicted; ev > 0 {
		warnings = append(warnings, fmt.Sprintf("%d connections evicted early: more than --max-flows=%d open at once", ev, c.maxFlows))
	}
	if ev := as.QuietEvicted; ev > 0 {
		warnings = append(warnings, quietWarning(ev, c.maxFlows))
	}
	if st.TLSErrors > 0 {
		why := "wrong or missing keys"
		if cuts.packets > 0 {
			why = "the snap length cut their records, which no key decrypts; or wrong or missing keys"
		}
		warnings = append(warnings, fmt.Sprintf("%d TLS connections could not be decrypted (%s), e.g. %s", st.TLSErrors, why, st.TLSErrorSamples[0]))
	}
	if cuts.packets > 0 && (st.CutBlocks > 0 || as.HeaderCuts > 0) { // payloads cut behind whole headers change no verdict
		warnings = append(warnings, cuts.warning(st.CutBlocks))
	}
	if st.Evicted > 0 {
		warnings = append(warnings, fmt.Sprintf("%d exchanges decided before their partner could arrive: more than --max-pending=%d waiting", st.Evicted, c.maxPending))
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "wsdiag: warning: %s\n", w)
	}
	if st.Attempts == 0 && as.HeaderCuts > 0 {
		fmt.Fprintf(stderr, "wsdiag: cannot tell: the snap length cut every request before it could show an upgrade (%d packets, %d TCP, %d HTTP exchanges)\n", pk, tcp, st.Exchanges)
	} else if st.Attempts == 0 {
		fmt.Fprintf(stderr, "wsdiag: no WebSocket handshake attempts found (%d packets, %d TCP, %d HTTP exchanges)\n", pk, tcp, st.Exchanges)
	}
	rend.summary(summary{stats: st, packets: pk, tcp: tcp, conns: as.Connections, evictedFlows: as.Evicted + as.QuietEvicted, warnings: warnings})
	if st.Attempts > st.ByCode[analyze.OK] || st.Attempts == 0 && as.HeaderCuts > 0 {
		return exitNotOK // a snap length that cut every handshake judged nothing: not ok
	}
	return exitOK
}

// packetSink takes decoded TCP segments in capture order.
type packetSink interface{ add(p *capture.Packet) }

// filtered passes on the segments a filter expression matches.
type filtered struct {
	match capture.Matcher
	next  packetSink
}

func (f *filtered) add(p *capture.Packet) {
	if f.match.Match(p) {
		f.next.add(p)
	}
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
	s.asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
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

// pump merges the readers by timestamp (like mergecap) and feeds every
// TCP segment to the sink. Read errors end that file with a warning: the
// verdicts that can be made from what was read still are.
func pump(readers []*capture.Reader, sink packetSink, prog *progress, attempts *atomic.Uint64, cuts *cutCount) (warnings []string) {
	type head struct {
		r   *capture.Reader
		pkt *capture.Packet
	}
	heads := make([]head, 0, len(readers))
	advance := func(r *capture.Reader) *capture.Packet {
		p, err := r.Next()
		if err != nil {
			if err != io.EOF {
				warnings = append(warnings, err.Error()+"; verdicts use the packets before it")
			}
			return nil
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
		best := 0
		for i := 1; i < len(heads); i++ {
			if heads[i].pkt.CI.Timestamp.Before(heads[best].pkt.CI.Timestamp) {
				best = i
			}
		}
		h := &heads[best]
		if h.pkt.Cut > 0 {
			cuts.add(h.pkt)
		}
		sink.add(h.pkt)
		n++
		if prog != nil && n&0xffff == 0 {
			prog.update(readers, attempts.Load())
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

// quietWarning reports connections ended early for carrying nothing
// wsdiag parses (a SYN flood, a port scan, another protocol).
func quietWarning(n uint64, maxFlows int) string {
	return fmt.Sprintf("%d connections that carried no HTTP or TLS ended early: more than %d such open at once (a tenth of --max-flows)", n, max(100, maxFlows/10))
}
