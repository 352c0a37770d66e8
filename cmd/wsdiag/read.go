package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/filter"
	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
)

const readUsage = `Usage: wsdiag read [flags] FILE... [[--] FILTER EXPRESSION]
       wsdiag -r FILE [flags] [FILTER EXPRESSION]

Reads pcap or pcapng captures (gzip too; "-" is stdin) taken on a reverse-proxy host
and judges every WebSocket handshake attempt. Several files are merged by time.
The filter is a subset of pcap-filter: [src|dst] host|net|port|portrange, tcp, ip, ip6,
and/or/not, parentheses; the words after the files that are not files are the filter.

Flags:
%s`

func cmdRead(e *env, args []string) (int, error) {
	fs := pflag.NewFlagSet("wsdiag read", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c common
	var files []string
	var workers int
	var pf proxyFlags
	c.register(fs)
	pf.register(fs)
	fs.IntVar(&workers, "workers", runtime.NumCPU(), "goroutines that reassemble, connections sharded over them (1: all in one)")
	fs.StringArrayVarP(&files, "read", "r", nil, "read packets from FILE (tcpdump style; repeatable)")
	fs.Usage = func() { fmt.Fprintf(e.stderr, readUsage, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		return exitOK, err
	}
	e.log = newLogger(c.logFormat, e.stderr)
	files, expr, err := splitFilter(files, fs.Args(), fs.ArgsLenAtDash())
	if err != nil {
		return 0, err
	}
	opt, err := c.analyzeOptions()
	if err == nil && (workers < 1 || workers > 64) {
		err = fmt.Errorf("--workers: %d is not between 1 and 64", workers)
	}
	var hook *proxyHook
	if err == nil {
		hook, err = pf.setup(&opt, false)
	}
	if err != nil {
		return 0, err
	}
	ropt, err := c.reassemblyOptions()
	var mb *memBudget
	if err == nil {
		mb, err = c.budget(&ropt, &opt, workers, false)
	}
	if err == nil {
		ropt.KeyLog, err = c.keyLog(files)
	}
	var match filter.Matcher
	if err == nil && expr != "" {
		if match, err = filter.NewMatcher(expr); err != nil {
			err = errors.New(oneLine(err))
		}
	}
	if err != nil {
		return 0, err
	}

	var readers []*capture.Reader
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	for _, name := range files {
		stdin := e.stdin
		if stdin == nil {
			stdin = os.Stdin
		}
		r, err := capture.OpenStdin(name, stdin)
		if err != nil {
			return 0, err
		}
		r.SetKeyLog(ropt.KeyLog)
		readers = append(readers, r)
	}

	s := newSession(e, &c, opt, e.stdout)
	rep := c.newReport(strings.Join(files, " "), false)
	s.consumers = append(s.consumers, rep.Add)
	hook.attach(s)
	var prog *progress
	po := pipeline.PumpOptions{Stop: &s.full}
	if wantTTY(c.progress, e.stderr) {
		prog = newProgress(e.stderr, files)
		po.Tick = func() { prog.update(readers, s.attempts.Load()) }
	}
	p := pipeline.New(s.an, ropt, workers, exitOnPanic)
	var sink pipeline.Sink = p
	if expr != "" {
		sink = &pipeline.Filtered{Match: match, Next: p}
	}
	var cuts pipeline.Cuts
	po.Cuts = &cuts
	s.warnings = pipeline.Pump(readers, sink, po)
	if prog != nil {
		prog.done()
	}
	as := p.Close()
	s.an.Finish()

	st := s.an.Stats()
	var pk, tcp uint64
	for _, r := range readers {
		pk += r.Packets
		tcp += r.TCP
	}
	s.resourceWarnings(as.Evicted, as.QuietEvicted)
	mb.warnings(s, as.MemEvicted, st.MemEvicted)
	if st.TLSErrors > 0 {
		why := "wrong or missing keys"
		if cuts.Packets > 0 {
			why = "the snap length cut their records, which no key decrypts; or wrong or missing keys"
		}
		s.warn("%d TLS connections could not be decrypted (%s), e.g. %s", st.TLSErrors, why, st.TLSErrorSamples[0])
	}
	if cuts.Packets > 0 && (st.CutBlocks > 0 || as.HeaderCuts > 0) { // payloads cut behind whole headers change no verdict
		s.warn("%s", cutWarning(cuts, st.CutBlocks))
	}
	if st.Evicted > 0 {
		s.warn("%d exchanges decided before their partner could arrive: more than --max-pending=%d waiting", st.Evicted, c.maxPending)
	}
	hook.finishInto(s, textOut(c.format, e.stdout, e.stderr))
	s.flushWarnings()
	switch {
	case st.Attempts == 0 && as.HeaderCuts > 0:
		// A snap length that cut every handshake judged nothing: not ok.
		e.log.Info().Msgf("cannot tell: the snap length cut every request before it could show an upgrade (%d packets, %d TCP, %d HTTP exchanges)", pk, tcp, st.Exchanges)
		s.notOK = true
	case st.Attempts == 0:
		e.log.Info().Msgf("no WebSocket handshake attempts found (%d packets, %d TCP, %d HTTP exchanges)", pk, tcp, st.Exchanges)
	}
	sum := summary{packets: pk, tcp: tcp, conns: as.Connections, evictedFlows: as.Evicted + as.QuietEvicted}
	mb.summary(&sum)
	code := s.finish(sum)
	reportSummary(rep, sum, s.warnings)
	return code, rep.WriteFile(c.html)
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
