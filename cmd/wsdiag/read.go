package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/filter"
	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
	"github.com/wsdiag/wsdiag/reassembly"
)

const readUsage = `Usage: wsdiag read [flags] FILE... [[--] FILTER EXPRESSION]
       wsdiag -r FILE [flags] [FILTER EXPRESSION]

Reads pcap or pcapng captures (gzip too; "-" is stdin) taken on a reverse-proxy host
and judges every WebSocket handshake attempt. Several files are merged by time.
The filter is a subset of pcap-filter: [src|dst] host|net|port|portrange, tcp, ip, ip6,
and/or/not, parentheses; the words after the files that are not files are the filter.

Flags:
`

func cmdRead(e *env, args []string) (int, error) { return runCommand(e, args, &readSource{}) }

// readSource is read's input: capture files merged by time (pipeline.Pump),
// narrowed by the filter expression, reassembled inline or over --workers.
type readSource struct {
	files   []string
	workers int
	expr    string
	match   filter.Matcher
	readers []*capture.Reader
	// clockOffsets are --clock-offset's FILE=SECONDS; offsets what each
	// file's clock is ahead of the first's (given or estimated)
	clockOffsets []string
	offsets      []time.Duration
	// what the pipeline left: its reassembly counters, the snap length's
	// cuts, the files' read errors
	asm      reassembly.Stats
	cuts     pipeline.Cuts
	warnings []string
}

func (r *readSource) usage() string { return readUsage }

func (r *readSource) register(fs *pflag.FlagSet, c *common) {
	c.registerCapture(fs)
	fs.IntVar(&r.workers, "workers", runtime.NumCPU(), "goroutines that reassemble, connections sharded over them (1: all in one)")
	fs.StringArrayVarP(&r.files, "read", "r", nil, "read packets from FILE (tcpdump style; repeatable)")
	fs.StringArrayVar(&r.clockOffsets, "clock-offset", nil, "FILE=SECONDS: FILE's clock is SECONDS ahead of the first file's (negative: behind); without it the offset between files is estimated from the handshakes they share (repeatable)")
}

func (r *readSource) plan(s *session, fs *pflag.FlagSet) error {
	var err error
	if r.files, r.expr, err = splitFilter(r.files, fs.Args(), fs.ArgsLenAtDash()); err != nil {
		return err
	}
	if r.workers < 1 || r.workers > 64 {
		return fmt.Errorf("--workers: %d is not between 1 and 64", r.workers)
	}
	if r.expr != "" {
		if r.match, err = filter.NewMatcher(r.expr); err != nil {
			return errors.New(oneLine(err))
		}
	}
	s.plan.title, s.plan.shardWorkers, s.plan.keysGrow = strings.Join(r.files, " "), r.workers, true
	return nil
}

func (r *readSource) open(s *session) error {
	stdin := s.e.stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	s.onExit(func() {
		for _, rd := range r.readers {
			rd.Close()
		}
	})
	for _, name := range r.files {
		rd, err := capture.OpenStdin(name, stdin)
		if err != nil {
			return err
		}
		rd.SetKeyLog(s.ropt.KeyLog) // and the pcapng's own secrets join it
		r.readers = append(r.readers, rd)
	}
	return r.clocks(s)
}

// clocks sets how far each file's clock is ahead of the first's: given by
// --clock-offset, else estimated from the handshakes the files share (not
// for standard input, which cannot be read twice), and says so.
func (r *readSource) clocks(s *session) error {
	given, err := pipeline.ParseClockOffsets(r.clockOffsets, r.files)
	if err != nil {
		return err
	}
	if len(r.files) < 2 {
		return nil
	}
	for i, f := range r.files {
		if _, ok := given[i]; !ok && f == "-" {
			given[i] = 0 // standard input: read once
		}
	}
	offs, err := pipeline.EstimateOffsets(r.files, given, capture.Open, s.ropt)
	if err != nil {
		s.warn("clock offsets not estimated: %v", err)
		return nil
	}
	r.offsets = make([]time.Duration, len(offs))
	for i, o := range offs[1:] {
		if o.Applied() {
			r.offsets[i+1] = o.By
		}
		if d := o.Describe(r.files[i+1], r.files[0]); d != "" && !(o.Basis == "--clock-offset" && o.By == 0) {
			s.e.log.Info().Msg(d)
		}
	}
	return nil
}

func (r *readSource) run(s *session) error {
	p := pipeline.New(s.an, s.ropt, pipeline.Config{Workers: r.workers, Guard: exitOnPanic, Observer: s.met.observer()})
	var sink pipeline.Sink = p
	if r.expr != "" {
		sink = &pipeline.Filtered{Match: r.match, Next: p}
	}
	po := pipeline.PumpOptions{Stop: &s.stop, Cuts: &r.cuts, Offsets: r.offsets}
	if wantTTY(s.c.progress, s.e.stderr) {
		prog := newProgress(&s.status, r.files)
		defer prog.done()
		po.Tick = func() { prog.update(r.readers, s.attempts.Load()) }
	}
	r.warnings = pipeline.Pump(r.readers, sink, po)
	r.asm = p.Close()
	return nil
}

func (r *readSource) close(s *session, sum *SummaryLine) ending {
	for _, w := range r.warnings {
		s.warn("%s", w)
	}
	for _, rd := range r.readers {
		sum.Packets += rd.Packets
		sum.TCPPackets += rd.TCP
	}
	return ending{asm: r.asm, cuts: r.cuts}
}

func (r *readSource) done(s *session, sum *SummaryLine) {
	st := s.an.Stats()
	switch {
	case st.Attempts == 0 && r.asm.HeaderCuts > 0:
		s.e.log.Info().Msgf("cannot tell: the snap length cut every request before it could show an upgrade (%d packets, %d TCP, %d HTTP exchanges)", sum.Packets, sum.TCPPackets, st.Exchanges)
	case st.Attempts == 0:
		s.e.log.Info().Msgf("no WebSocket handshake attempts found (%d packets, %d TCP, %d HTTP exchanges)", sum.Packets, sum.TCPPackets, st.Exchanges)
	}
}

// splitFilter tells capture files from a trailing filter expression: the
// words after "--", or else (tcpdump style) every word after -r FILE, or
// after the first of the FILE arguments, from the first that is not a
// file. A word that looks like a capture's name stays a file, so a typo in
// it is reported as a missing file.
func splitFilter(files, args []string, dash int) ([]string, string, error) {
	switch {
	case len(files) > 0:
		return files, strings.Join(args, " "), nil
	case dash >= 0:
		return args[:dash], strings.Join(args[dash:], " "), nil
	case len(args) == 0:
		return nil, "", errors.New("read: no capture file given (use - for stdin)")
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "-" {
			continue
		}
		if _, err := os.Stat(a); err == nil {
			continue
		}
		if looksLikeFile(a) {
			return nil, "", fmt.Errorf("%s: no such file or directory (a filter expression goes after --)", a)
		}
		return args[:i], strings.Join(args[i:], " "), nil
	}
	return args, "", nil
}

func looksLikeFile(a string) bool {
	if strings.ContainsRune(a, '/') {
		return true
	}
	for _, ext := range []string{".pcap", ".pcapng", ".cap", ".gz"} {
		if strings.HasSuffix(a, ext) {
			return true
		}
	}
	return false
}
