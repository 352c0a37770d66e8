package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/wsdiag/wsdiag/analyze"
)

// env is what a subcommand runs with. A subcommand returns its exit status
// (0 or 1) or an error, which run prints once, through log.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            zerolog.Logger
}

// session is what read and live share from their flags to their exit: the
// analyzer, the consumers of its verdicts, -c, the warnings and the
// closing summary.
type session struct {
	e    *env
	c    *common
	rend renderer
	an   *analyze.Analyzer
	// consumers take every verdict passed on, in order; the renderer is
	// the first. Other outputs (metrics, reports) append theirs.
	consumers []func(*analyze.Verdict)

	// -c: past limit attempts, verdicts are dropped and full is set.
	limit    uint64
	attempts atomic.Uint64 // read by the progress line from another goroutine
	full     atomic.Bool
	tally    analyze.Stats // of the verdicts passed on

	warnings []string
	printed  int // warnings already on stderr
	// notOK makes the run exit 1 whatever the verdicts (a snap length
	// that cut every handshake judged nothing).
	notOK bool
}

// newSession validates nothing: the caller has. out takes the verdicts.
func newSession(e *env, c *common, opt analyze.Options, out io.Writer) *session {
	s := &session{e: e, c: c, limit: uint64(c.count)}
	s.tally.ByCode, s.tally.BySev = map[analyze.Code]uint64{}, map[analyze.Severity]uint64{}
	s.rend = newRenderer(c.format, out, c.verbose, c.showSecrets, wantTTY(c.color, out) && os.Getenv("NO_COLOR") == "")
	s.consumers = append(s.consumers, s.rend.verdict)
	opt.Events = s.rend.event // mass_close: one line when the burst is over
	s.an = analyze.New(opt, s.verdict)
	return s
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
		}
	}
	for _, f := range s.consumers {
		f(v)
	}
}

// warn records a warning for stderr and the summary.
func (s *session) warn(format string, args ...any) {
	s.warnings = append(s.warnings, fmt.Sprintf(format, args...))
}

// flushWarnings prints the warnings not yet printed.
func (s *session) flushWarnings() {
	for _, w := range s.warnings[s.printed:] {
		s.e.log.Warn().Msg(w)
	}
	s.printed = len(s.warnings)
}

// finish prints the warnings and the summary (with the counts of the
// verdicts passed on, so -c N says N) and returns the exit status.
func (s *session) finish(sum summary) int {
	s.flushWarnings()
	sum.stats = s.an.Stats()
	sum.stats.Attempts, sum.stats.ByCode, sum.stats.BySev = s.tally.Attempts, s.tally.ByCode, s.tally.BySev
	sum.warnings = s.warnings
	s.rend.summary(sum)
	if s.tally.Attempts > s.tally.ByCode[analyze.OK] || s.notOK {
		return exitNotOK
	}
	return exitOK
}

// resourceWarnings are the warnings both commands give after the run.
func (s *session) resourceWarnings(evicted, quietEvicted uint64) {
	if evicted > 0 {
		s.warn("%d connections evicted early: more than --max-flows=%d open at once", evicted, s.c.maxFlows)
	}
	if quietEvicted > 0 {
		s.warn("%d connections that carried no HTTP or TLS ended early: more than %d such open at once (a tenth of --max-flows)", quietEvicted, max(100, s.c.maxFlows/10))
	}
}
