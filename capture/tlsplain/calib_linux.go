//go:build linux && amd64

package tlsplain

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// The costs are measured here, on this kernel, at Open: the same probes
// put on a function of this binary that takes its arguments as SSL_write
// does, called in a loop with and without them. A trap costs the same in
// every process; only the bytes copied vary with the call.

func calibCall(ssl, buf uintptr, n int) int

//lint:ignore U1000 called by calibCall (assembly), probed by the calibration
func calibTarget()

func calibTargetAddr() uintptr

// calibRounds of calibCalls calls each; the fastest round counts (the
// least disturbed by the rest of the machine).
const (
	calibRounds = 5
	calibCalls  = 200
	calibBig    = MaxChunk
)

func (p *Probe) calibrate() (Costs, error) {
	detach, err := p.selfProbe()
	if err != nil {
		return Costs{}, err
	}
	buf := make([]byte, calibBig)
	base := uintptr(unsafe.Pointer(&buf[0]))
	// Without the probes: another SSL* is not traced (no entry in the
	// process's connections counts until its first call; the PID filter
	// passes, so this costs a map lookup more than a process not traced
	// at all, which is nothing against a trap).
	detach()
	plain := timeCalls(base, 64, 0x10)
	if detach, err = p.selfProbe(); err != nil {
		return Costs{}, err
	}
	defer detach()
	// Captured calls, small and big, on one connection (SSL* 1), then
	// calls on a connection left out (SSL* 2, first seen while the share
	// is 0).
	small := timeCalls(base, 64, 1)
	p.drain()
	big := timeCalls(base, calibBig, 1)
	p.drain()
	if err := p.setKeep(0); err != nil {
		return Costs{}, err
	}
	skip := timeCalls(base, 64, 2)
	if err := p.setKeep(1); err != nil {
		return Costs{}, err
	}
	p.drain()
	c := Costs{
		Skip: max(skip-plain, 0),
		Byte: max(float64(big-small), 0) / float64(calibBig-64),
	}
	c.Call = max(small-plain-time.Duration(64*c.Byte), 0)
	return c, nil
}

// selfProbe puts the probes on calibTarget, for this process only, and
// returns what takes them off.
func (p *Probe) selfProbe() (func(), error) {
	path, off, err := selfOffset(calibTargetAddr())
	if err != nil {
		return nil, err
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, err
	}
	if err := p.objs.Pids.Update(p.self, uint8(1), ebpf.UpdateAny); err != nil {
		return nil, err
	}
	opts := &link.UprobeOptions{Address: off, PID: int(p.self)}
	in, err := ex.Uprobe("", p.objs.SslWriteEnter, opts)
	if err != nil {
		p.objs.Pids.Delete(p.self)
		return nil, err
	}
	out, err := ex.Uretprobe("", p.objs.SslLeave, opts)
	if err != nil {
		in.Close()
		p.objs.Pids.Delete(p.self)
		return nil, err
	}
	return func() {
		out.Close()
		in.Close()
		p.objs.Pids.Delete(p.self)
	}, nil
}

// timeCalls is the least time one call took, over calibRounds rounds.
func timeCalls(buf uintptr, n int, ssl uintptr) time.Duration {
	best := time.Duration(1<<63 - 1)
	for r := 0; r < calibRounds; r++ {
		t := time.Now()
		for i := 0; i < calibCalls; i++ {
			calibCall(ssl, buf, n)
		}
		best = min(best, time.Since(t)/calibCalls)
	}
	return best
}

// drain reads and discards what the calibration put in the ring.
func (p *Probe) drain() {
	p.rd.SetDeadline(time.Now())
	defer p.rd.SetDeadline(time.Now().Add(poll))
	for p.rd.ReadInto(&p.raw) == nil {
	}
}

// selfOffset finds the file and the offset in it of an address of this
// process's code (what a uprobe is attached by): from /proc/self/maps,
// which holds for PIE and non-PIE builds alike.
func selfOffset(addr uintptr) (string, uint64, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		foff, err3 := strconv.ParseUint(fs[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || uint64(addr) < start || uint64(addr) >= end {
			continue
		}
		return fs[5], uint64(addr) - start + foff, nil
	}
	return "", 0, fmt.Errorf("address %#x is in no mapped file", addr)
}
