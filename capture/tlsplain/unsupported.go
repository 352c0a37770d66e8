//go:build !linux || !amd64

package tlsplain

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Probe is not available on this system.
type Probe struct{}

// Check says why the probes cannot run here.
func Check() error {
	return fmt.Errorf("%w: it needs Linux on amd64 (this is %s/%s)", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

// Open returns Check's reason.
func Open(Options) (*Probe, error) { return nil, Check() }

func (*Probe) Read(*Record) error     { return errors.New("tlsplain: not open") }
func (*Probe) Time(*Record) time.Time { return time.Time{} }
func (*Probe) Stats() Stats           { return Stats{} }
func (*Probe) Procs() []Proc          { return nil }
func (*Probe) Close() error           { return nil }
func (*Probe) Caught() time.Time      { return time.Time{} }

const poll = 5 * time.Millisecond
