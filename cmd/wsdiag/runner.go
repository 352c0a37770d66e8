package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/capture"
)

// The runner: one run of read, live or probe. They differ only in their
// source (source.go); the rest is assembled here, once, in this order:
//
//  1. the flags: the source's, the common ones it takes, the proxy's
//     files;
//  2. the options: the analyzer's, the source's plan, the reassembly's,
//     the memory budget, the TLS keys, the proxy's configuration and
//     error log;
//  3. the views of the verdicts: text or JSON lines, the HTML report,
//     Prometheus metrics;
//  4. the source opened, the report's first write, root dropped;
//  5. the source run, until its input ends, -c is reached or a signal
//     comes;
//  6. the warnings (the source's, then those every run gives) and the
//     summary, the exit status.

// errDone ends a command after its plan, with nothing to run (live -D).
var errDone = errors.New("nothing to run")

// runCommand runs src as a subcommand with args.
func runCommand(e *env, args []string, src source) (int, error) {
	s, err := assemble(e, args, src)
	if errors.Is(err, errDone) {
		return exitOK, nil
	}
	if err != nil {
		return 0, err
	}
	defer s.release()
	if err := s.start(src); err != nil {
		return 0, err
	}
	stopOnSignal(s)
	if err := src.run(s); err != nil {
		return 0, err
	}
	s.an.Finish()
	return s.end(src)
}

// assemble reads the flags and builds the session: everything a run
// needs before its source opens anything.
func assemble(e *env, args []string, src source) (*session, error) {
	c := newCommon()
	fs := pflag.NewFlagSet("wsdiag", pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var pf proxyFlags
	pf.register(fs)
	src.register(fs, c)
	fs.Usage = func() { fmt.Fprintf(e.stderr, "%s%s", src.usage(), fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	e.log = newLogger(c.logFormat, e.stderr)
	opt, err := c.analyzeOptions()
	if err != nil {
		return nil, err
	}
	s := &session{e: e, c: c, opt: opt, plan: sourcePlan{out: e.stdout}}
	if err := src.plan(s, fs); err != nil {
		return nil, err
	}
	if s.ropt, err = c.reassemblyOptions(); err != nil {
		return nil, err
	}
	if s.mem, err = c.budget(&s.ropt, &s.opt, s.plan.shardWorkers, s.plan.ring); err != nil {
		return nil, err
	}
	if s.ropt.KeyLog, err = c.keyLog(s.plan.keysGrow); err != nil {
		return nil, err
	}
	// The proxy's files are read while still root (nginx -T needs it).
	if s.hook, err = pf.setup(&s.opt, s.plan.onHost); err != nil {
		return nil, err
	}
	return s, nil
}

// start serves the metrics and makes the views, opens the source and
// writes a live report's first page while still root, then drops root.
func (s *session) start(src source) error {
	met, err := startMetrics(s.c.metrics)
	if err != nil {
		return err
	}
	s.met = met
	s.onExit(met.close)
	s.views()
	if err := src.open(s); err != nil {
		return err
	}
	if s.plan.live {
		// While still root: the file exists for the -Z user.
		if err := s.rep.WriteFile(s.c.html); err != nil {
			return err
		}
	}
	if u := s.plan.dropTo; u != "" && u != "root" && os.Geteuid() == 0 {
		if err := capture.DropPrivileges(u); err != nil {
			return fmt.Errorf("%v (use -Z root to keep root)", err)
		}
	}
	if s.plan.live {
		s.stopReport = s.rep.Autosave(s.c.html, 2*time.Second)
	}
	return nil
}

// stopOnSignal asks the source to stop on the first SIGINT or SIGTERM, so
// that the verdicts decided so far and the summary are printed; a second
// one ends wsdiag at once.
func stopOnSignal(s *session) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	s.onExit(func() {
		signal.Stop(sigs)
		close(done)
	})
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs)
			s.stop.Store(true)
		case <-done:
		}
	}()
}

// end gives the warnings and the summary once the input has ended and
// the analyzer has decided everything, and returns the exit status.
func (s *session) end(src source) (int, error) {
	sum := newSummaryLine()
	end := src.close(s, sum)
	s.inputWarnings(end)
	s.hook.finishInto(s, textOut(s.c.format, s.plan.out, s.e.stderr))
	s.flushWarnings()
	if s.an.Stats().Attempts == 0 && end.asm.HeaderCuts > 0 {
		// A snap length that cut every handshake judged nothing: not ok.
		s.notOK = true
	}
	src.done(s, sum)
	sum.Connections, sum.EvictedFlows = end.asm.Connections, end.asm.Evicted+end.asm.QuietEvicted
	s.mem.summary(sum)
	code := s.finish(sum)
	reportSummary(s.rep, sum)
	if err := s.saveReport(); err != nil {
		return 0, err
	}
	if end.failed {
		return exitTrouble, nil
	}
	return code, nil
}

// saveReport writes the report's last page; live's had been rewritten
// since the start.
func (s *session) saveReport() error {
	if !s.plan.live {
		return s.rep.WriteFile(s.c.html)
	}
	if err := s.stopReport(); err != nil {
		return fmt.Errorf("%v (the directory must be writable by the -Z user)", err)
	}
	return nil
}
