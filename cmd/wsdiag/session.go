package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/report"
	"github.com/wsdiag/wsdiag/reassembly"
)

// env is what a subcommand runs with. A subcommand returns its exit status
// (0 or 1) or an error, which run prints once, through log.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            zerolog.Logger
}

// session is one run of read, live or probe from its flags to its exit:
// the options the runner assembled (runner.go), what the source chose in
// its plan, the analyzer and the views of its verdicts, -c, the warnings
// and the closing summary.
type session struct {
	e *env
	c *common

	// Assembled from the flags, before the source opens anything.
	opt  analyze.Options
	ropt reassembly.Options // with the budget and the TLS keys
	mem  *memBudget
	hook *proxyHook
	plan sourcePlan

	rend renderer
	an   *analyze.Analyzer
	rep  *report.Report
	// stopReport writes a live run's report a last time and ends its
	// rewriting.
	stopReport func() error
	met        *liveMetrics
	// outBuf buffers stdout when it is a file or a pipe (views).
	outBuf *bufio.Writer
	// consumers take every verdict passed on, in order: the proxy's
	// files first (they add to the verdict), the renderer, the report,
	// the metrics, then the source's own.
	consumers []func(*analyze.Verdict)

	// -c: past limit attempts, verdicts are dropped and full is set.
	limit    uint64
	attempts atomic.Uint64 // read by the progress line from another goroutine
	full     atomic.Bool
	// stop asks the source to end its input: -c is reached, or a signal
	// came.
	stop  atomic.Bool
	tally analyze.Stats // of the verdicts passed on

	// status is the progress line on a terminal's stderr (read, live):
	// cleared before anything else is printed.
	status statusLine

	warnings []string
	printed  int // warnings already on stderr
	// notOK makes the run exit 1 whatever the verdicts (a snap length
	// that cut every handshake judged nothing).
	notOK bool
	// cleanup runs when the run ends, last registered first.
	cleanup []func()
}

// sourcePlan is what a source decides in its plan, for the runner.
type sourcePlan struct {
	// out takes the verdicts (stdout; stderr when stdout carries
	// packets).
	out io.Writer
	// title names the input in the HTML report.
	title string
	// onHost: wsdiag runs on the proxy host, so the proxy's files are
	// its own (--proxy-config auto runs nginx -T; the error log is
	// followed as it grows).
	onHost bool
	// live: a capture as it happens; the report is rewritten as
	// verdicts arrive.
	live bool
	// dropTo is the user to become once the source is open ("": stay).
	dropTo string
	// shardWorkers is how many goroutines a reader deals segments to
	// (read --workers): the batches between them are part of the memory
	// budget. ring: --write-failing keeps recent packets.
	shardWorkers int
	ring         bool
	// keysGrow: the source adds TLS secrets while it runs (a pcapng's
	// embedded ones, probe's own), so the key log exists from the start.
	keysGrow bool
}

// views makes the analyzer and what shows its verdicts.
func (s *session) views() {
	c := s.c
	s.limit = uint64(c.count)
	s.tally.ByCode, s.tally.BySev = map[analyze.Code]uint64{}, map[analyze.Severity]uint64{}
	out := s.plan.out
	color := wantTTY(c.color, out) && os.Getenv("NO_COLOR") == ""
	if !s.plan.live && !wantTTY("auto", out) {
		// Reading into a file or a pipe: the verdicts in blocks, not a
		// write per line; everything else that goes to stdout goes
		// through the same buffer, written out when the run ends.
		bw := bufio.NewWriterSize(out, 64<<10)
		s.plan.out, out, s.outBuf = bw, bw, bw
		s.onExit(func() { bw.Flush() })
	}
	s.rend = newRenderer(c.format, out, c.verbose, c.showSecrets, color)
	s.rep = c.newReport(s.plan.title, s.plan.live)
	s.status.w = s.e.stderr
	show := func(v *analyze.Verdict) {
		s.status.clear() // the verdict starts its own line, not the status line's
		s.rend.verdict(v)
	}
	s.consumers = append(s.consumers, s.hook.verdict, show, s.rep.Add, s.met.verdict)
	opt := s.opt
	opt.Events = func(e *analyze.Event) { // mass_close: one line when the burst is over
		s.status.clear()
		s.rend.event(e)
	}
	s.an = analyze.New(opt, s.verdict)
}

// verdict is the analyzer's output: it counts, applies -c and hands the
// verdict on. The analyzer calls it from one goroutine at a time.
func (s *session) verdict(v *analyze.Verdict) {
	if s.full.Load() {
		return
	}
	if v.Attempt() {
		n := s.attempts.Add(1)
		s.tally.Attempts++
		s.tally.ByCode[v.Code]++
		s.tally.BySev[v.Severity]++
		if s.limit > 0 && n >= s.limit {
			s.full.Store(true)
			s.stop.Store(true)
		}
	}
	for _, f := range s.consumers {
		f(v)
	}
}

// flushOut writes out the verdicts still in stdout's buffer, so that
// what goes to stderr after them (the warnings) follows them where both
// go to one file. It is called once the analyzer has put out everything.
func (s *session) flushOut() {
	if s.outBuf != nil {
		s.outBuf.Flush()
	}
}

// warn records a warning for stderr and the summary.
func (s *session) warn(format string, args ...any) {
	s.warnings = append(s.warnings, fmt.Sprintf(format, args...))
}

// flushWarnings prints the warnings not yet printed.
func (s *session) flushWarnings() {
	if s.printed < len(s.warnings) {
		s.status.clear()
	}
	for _, w := range s.warnings[s.printed:] {
		s.e.log.Warn().Msg(w)
	}
	s.printed = len(s.warnings)
}

// onExit registers f to run when the run ends.
func (s *session) onExit(f func()) { s.cleanup = append(s.cleanup, f) }

func (s *session) release() {
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

// finish prints the warnings and the summary (with the counts of the
// verdicts passed on, so -c N says N) and returns the exit status.
func (s *session) finish(sum *SummaryLine) int {
	s.flushWarnings()
	st := s.an.Stats()
	sum.Attempts, sum.HTTPExchanges, sum.Evicted, sum.NoHandshake = s.tally.Attempts, st.Exchanges, st.Evicted, st.NoHandshake
	sum.TLSSelfAnswered, sum.TLSNoUpstream = st.TLSSelfAnswered, st.TLSNoUpstream
	for c, n := range s.tally.ByCode {
		sum.ByCode[string(c)] = n
	}
	sum.BySeverity = BySeverity{OK: s.tally.BySev[analyze.SevOK], Info: s.tally.BySev[analyze.SevInfo],
		Warn: s.tally.BySev[analyze.SevWarn], Error: s.tally.BySev[analyze.SevError]}
	sum.Warnings = append(sum.Warnings, s.warnings...)
	s.rend.summary(sum)
	if s.tally.Attempts > s.tally.ByCode[analyze.OK] || s.notOK {
		return exitNotOK
	}
	return exitOK
}
