package main

import (
	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
	"github.com/wsdiag/wsdiag/reassembly"
)

// A source is what differs between read, live and probe: where their
// input comes from (capture files, the sockets of a fanout group, probe's
// own connections and its capture of them). The runner (runner.go) calls
// its methods in the order they are listed and does everything else.
//
// A new input plugs in as a source, or as a pipeline.Feed within one, and
// touches neither the runner nor the pipeline:
//
//   - live --tls-plaintext: liveSource registers the flag, attaches the
//     eBPF reader in open (as root) and in run wraps each socketFeed in a
//     Feed whose Next also hands the worker's Assembler the plaintext
//     chunks of the connections that Assembler holds, as decrypted TLS
//     legs beside their raw packets; its close sets the summary's new
//     counts (connections skipped by sampling, ring drops): a field each
//     in SummaryLine.
//   - probe's own connection: probeSource holds its plaintext already; it
//     feeds it the same way, through a Feed reading the capture, in place
//     of the events clientSideVerdict builds by hand.
type source interface {
	// usage is the subcommand's help, up to its list of flags.
	usage() string
	// register adds the source's flags (and the common ones it takes).
	register(fs *pflag.FlagSet, c *common)
	// plan checks the source's flags (fs.Args() are the words after
	// them) and sets what depends on the source: s.plan, and s.opt where
	// it differs (live decides sooner). The budget, keys and proxy files
	// are assembled after it, the views before open.
	plan(s *session, fs *pflag.FlagSet) error
	// open acquires the input, while wsdiag may still be root.
	open(s *session) error
	// run feeds the session's analyzer until the input ends or s.stop is
	// set. An error means there was nothing to judge (probe could not
	// connect): exit status 2, no summary. An input that fails midway is
	// said by close.
	run(s *session) error
	// close releases the input, says what went wrong with it (s.warn) and
	// sets the summary's figures about it; it returns what the runner's
	// own warnings need.
	close(s *session, sum *SummaryLine) ending
	// done logs what the source read, after the warnings.
	done(s *session, sum *SummaryLine)
}

// ending is what a source leaves the runner once its input has ended.
type ending struct {
	asm  reassembly.Stats // the Assemblers' counters
	cuts pipeline.Cuts    // packets the snap length cut
	// failed: writing or reading the input failed after it was open
	// (said in a warning): exit status 2.
	failed bool
}
