package tlsplain

import (
	"errors"
	"time"
)

// Options configure Open.
type Options struct {
	// Names are the process names traced (nil: DefaultNames).
	Names []string
	// PIDs, when set, are the processes traced instead of those found by
	// Names and Ports (with the processes they make).
	PIDs []uint32
	// Ports are the proxy's client-facing ports: a process listening on
	// one is traced whatever its name.
	Ports []uint16
	// Budget is the share of one CPU the probes may cost the traced
	// processes (0: DefaultBudget; negative: no limit). Above it new
	// connections are captured by sampling (Stats.Keep).
	Budget float64
	// RingMB is the size of the ring buffer in MiB, a power of two (0: 16).
	RingMB int
	// Rescan is how often processes started since are looked for (0: 2 s).
	// Processes forked by a traced one are traced at once.
	Rescan time.Duration
	// Costs, when set, replace the costs Open measures.
	Costs *Costs
}

// DefaultBudget is 5 % of one CPU.
const DefaultBudget = 0.05

// Costs are what the probes cost a traced process.
type Costs struct {
	// Call is a captured call's cost (the traps at its entry and return,
	// the programs, a record), Byte each byte copied into the ring, and
	// Skip a call on a connection sampling left out (the traps alone: a
	// trap is half of it).
	Call, Skip time.Duration
	Byte       float64 // nanoseconds
}

// Stats count what the probes saw; figures count from Open.
type Stats struct {
	// Procs is how many processes are traced now.
	Procs int
	// Calls and Bytes were captured; Conns is how many connections were,
	// SkippedConns how many sampling left out (SkippedCalls their calls).
	Calls, Bytes        uint64
	Conns, SkippedConns uint64
	SkippedCalls        uint64
	// Drops and DropBytes are records (and their plaintext bytes) lost
	// because the ring was full; FaultBytes could not be read from the
	// process; TruncBytes are past the most one call may carry.
	Drops, DropBytes uint64
	FaultBytes       uint64
	TruncBytes       uint64
	// Forks counts processes traced because a traced one made them.
	Forks uint64
	// Traps counts the probes' hits in the traced processes: every call
	// to a probed function traps on entry, and all but SSL_free on
	// return (calls that moved no bytes and handshakes too).
	Traps uint64
	// NoSocket counts records of connections whose socket was not yet
	// known (left out: the connection is taken up when it is).
	NoSocket uint64
	// Keep is the share of new connections captured now (1: all).
	Keep float64
	// Cost is the estimated share of one CPU the probes cost the traced
	// processes over the last second; Peak the highest so far.
	Cost, Peak float64
	// Costs are the costs per call and byte the estimate uses.
	Costs Costs
	// Paused: the uprobes are off now, because the traps of the
	// connections left out cost more than the budget (nothing traps,
	// nothing is captured); Pauses counts the pauses, PausedFor their
	// time. After a pause only connections that start anew are captured.
	Paused    bool
	Pauses    uint64
	PausedFor time.Duration
}

// ErrUnsupported wraps the reason the probes cannot run here (not root,
// no BTF, an old kernel, another architecture).
var ErrUnsupported = errors.New("TLS plaintext capture is not available")

// ErrClosed is what Read returns once the Probe is closed.
var ErrClosed = errors.New("tlsplain: closed")

// ErrEmpty is what Read returns when the ring has nothing more for now:
// every call that returned before Probe.Caught has been read.
var ErrEmpty = errors.New("tlsplain: nothing to read")
