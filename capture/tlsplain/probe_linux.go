//go:build linux && amd64

package tlsplain

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Probe is the probes attached to the proxies' processes and the ring
// their records come through.
type Probe struct {
	opt  Options
	objs probeObjects
	rd   *ringbuf.Reader
	raw  ringbuf.Record
	tps  []link.Link // the tracepoints
	self uint32

	mu    sync.Mutex // guards procs, exes, keep, ctl
	procs map[uint32]*traced
	exes  map[string]*link.Executable
	ctl   *controller
	base  [stNStats]uint64 // counters at the end of Open (calibration)
	// paused: the uprobes are off (pause); they come back at resumeAt.
	paused      bool
	pausedSince time.Time
	resumeAt    time.Time
	backoff     time.Duration
	lastPause   time.Time
	pauses      uint64
	pausedFor   time.Duration
	// forks are pids of new processes to attach; the manager does it.
	forks chan uint32
	stop  chan struct{}
	wg    sync.WaitGroup

	clock    monoClock
	emptyAt  atomic.Int64 // when Read last found the ring empty (Unix ns)
	looked   int64        // Read's: when its second look began (0: none)
	noSocket atomic.Uint64
	closed   atomic.Bool
	final    Stats // at Close
}

// traced is a process with its probes.
type traced struct {
	Proc
	links []link.Link
}

// The stats map's counters (enum in bpf/tlsplain.c).
const (
	stCalls = iota
	stBytes
	stSkipCalls
	stConns
	stSkipConns
	stDrops
	stDropBytes
	stFaults
	stFaultBytes
	stTruncBytes
	stForks
	stTraps
	stNStats
)

// Check says why the probes cannot run here, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: it needs root (CAP_BPF and CAP_PERFMON)", ErrUnsupported)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("%w: the kernel has no BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)", ErrUnsupported)
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return fmt.Errorf("%w: the kernel has no BPF ring buffer (Linux 5.8 or later): %v", ErrUnsupported, err)
	}
	return nil
}

// Open loads the probes, finds the proxies' processes and attaches to
// them. The processes found are traced from this moment: their
// connections that are already open show up from the middle
// (Record.Start unset).
func Open(opt Options) (*Probe, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if opt.Names == nil {
		opt.Names = DefaultNames
	}
	if opt.Budget == 0 {
		opt.Budget = DefaultBudget
	}
	if opt.RingMB <= 0 {
		opt.RingMB = 16
	}
	if opt.RingMB&(opt.RingMB-1) != 0 {
		return nil, fmt.Errorf("ring size %d MiB is not a power of two", opt.RingMB)
	}
	if opt.Rescan <= 0 {
		opt.Rescan = 2 * time.Second
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	spec, err := loadProbe()
	if err != nil {
		return nil, err
	}
	spec.Maps["events"].MaxEntries = uint32(opt.RingMB) << 20
	p := &Probe{opt: opt, self: uint32(os.Getpid()), procs: map[uint32]*traced{}, exes: map[string]*link.Executable{},
		forks: make(chan uint32, 256), stop: make(chan struct{})}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("%w: loading the BPF programs: %s", ErrUnsupported, lastLine(err))
	}
	ok := false
	defer func() {
		if !ok {
			p.release()
		}
	}()
	if err := p.setKeep(1); err != nil {
		return nil, err
	}
	for _, prog := range []*ebpf.Program{p.objs.OnSend, p.objs.OnRecv, p.objs.OnFork} {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			return nil, fmt.Errorf("%w: attaching %s: %v", ErrUnsupported, prog, err)
		}
		p.tps = append(p.tps, l)
	}
	if p.rd, err = ringbuf.NewReader(p.objs.Events); err != nil {
		return nil, err
	}
	p.rd.SetDeadline(time.Now().Add(poll))
	p.clock.sync()
	costs := opt.Costs
	if costs == nil {
		c, err := p.calibrate()
		if err != nil {
			return nil, fmt.Errorf("measuring the cost of a probe: %v", err)
		}
		costs = &c
	}
	p.base = p.counters()
	p.ctl = newController(*costs, opt.Budget)
	p.ctl.last = p.counts(p.base)
	p.rescan(true)
	p.wg.Add(1)
	go p.manage()
	ok = true
	return p, nil
}

// lastLine keeps a verifier log to its last line.
func lastLine(err error) string {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) && len(ve.Log) > 0 {
		return ve.Log[len(ve.Log)-1]
	}
	s := err.Error()
	if i := strings.LastIndexByte(strings.TrimSpace(s), '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// Procs lists the processes traced now.
func (p *Probe) Procs() []Proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Proc, 0, len(p.procs))
	for _, t := range p.procs {
		out = append(out, t.Proc)
	}
	return out
}

// Read returns the next record of a connection: plaintext (KindData) or
// the end of a direction (KindEnd). r.Data is valid until the next Read.
// It returns ErrEmpty when it found the ring empty (Caught says when),
// and after Close ErrClosed.
func (p *Probe) Read(r *Record) error {
	for n := 0; ; n++ {
		if err := p.rd.ReadInto(&p.raw); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The ring was empty. Every call that returned before now
				// has been read once a second look, begun after now, finds
				// it empty too (a thread preempted between the two would
				// otherwise claim records it has not read). The programs
				// wake the reader only when the ring fills up; otherwise
				// it looks every poll.
				if p.looked == 0 {
					p.looked = time.Now().UnixNano()
					p.rd.SetDeadline(time.Unix(1, 0))
					continue
				}
				p.emptyAt.Store(p.looked)
				p.looked = 0
				p.rd.SetDeadline(time.Now().Add(poll))
				return ErrEmpty
			}
			if p.closed.Load() || errors.Is(err, ringbuf.ErrClosed) {
				return ErrClosed
			}
			return err
		}
		p.looked = 0
		if err := r.Decode(p.raw.RawSample); err != nil {
			continue // (cannot happen: the programs write the records)
		}
		switch {
		case r.Kind == KindFork:
			select {
			case p.forks <- r.PID:
			default: // the rescan finds it by name
			}
			continue
		case r.PID == p.self:
			continue // the calibration's
		case !r.Local.IsValid():
			p.noSocket.Add(1)
			continue
		}
		if n&1023 == 0 {
			p.clock.maybeSync()
		}
		return nil
	}
}

// poll is how often Read looks at the ring when the programs have not
// woken it.
const poll = 5 * time.Millisecond

// Caught returns a time before which every call's record has been read:
// when Read last found the ring empty.
func (p *Probe) Caught() time.Time { return time.Unix(0, p.emptyAt.Load()) }

// Time converts a record's Mono to wall-clock time.
func (p *Probe) Time(r *Record) time.Time { return p.clock.wall(r.Mono) }

// Stats returns the counters so far.
func (p *Probe) Stats() Stats {
	if p.closed.Load() {
		return p.final
	}
	c := p.counters()
	for i := range c {
		c[i] -= p.base[i]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{Procs: len(p.procs), Calls: c[stCalls], Bytes: c[stBytes], Conns: c[stConns], SkippedConns: c[stSkipConns],
		SkippedCalls: c[stSkipCalls], Drops: c[stDrops], DropBytes: c[stDropBytes], FaultBytes: c[stFaultBytes],
		TruncBytes: c[stTruncBytes], Forks: c[stForks], Traps: c[stTraps], NoSocket: p.noSocket.Load(),
		Keep: p.ctl.keep, Cost: p.ctl.cost, Peak: p.ctl.peak, Costs: p.ctl.costs,
		Paused: p.paused, Pauses: p.pauses, PausedFor: p.pausedFor}
	if p.paused {
		st.PausedFor += time.Since(p.pausedSince)
	}
	return st
}

// counters sums the per-CPU counters.
func (p *Probe) counters() [stNStats]uint64 {
	var out [stNStats]uint64
	var vals []uint64
	for i := range out {
		if err := p.objs.Stats.Lookup(uint32(i), &vals); err != nil {
			continue
		}
		for _, v := range vals {
			out[i] += v
		}
	}
	return out
}

func (p *Probe) counts(c [stNStats]uint64) counts {
	return counts{traps: c[stTraps], calls: c[stCalls], bytes: c[stBytes], skipped: c[stSkipCalls]}
}

// setKeep sets the share of new connections captured.
func (p *Probe) setKeep(keep float64) error {
	// After a pause, a connection first seen in its middle opened while
	// the probes were off: it is left out, as it cannot be had whole.
	mid := uint32(1)
	if p.pauses > 0 {
		mid = 0
	}
	c := probeConfig{Keep: uint32(keep * 65536), Midstream: mid}
	if err := p.objs.Cfg.Update(uint32(0), &c, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("setting the sampling share: %v", err)
	}
	return nil
}

// manage attaches new processes, forgets ended ones, and holds the
// budget, until Close.
func (p *Probe) manage() {
	defer p.wg.Done()
	rescan := time.NewTicker(p.opt.Rescan)
	defer rescan.Stop()
	budget := time.NewTicker(time.Second)
	defer budget.Stop()
	lastBudget := time.Now()
	full := 0
	for {
		select {
		case <-p.stop:
			return
		case pid := <-p.forks:
			p.attachPID(pid)
		case <-rescan.C:
			// Listening sockets are looked for less often: it reads
			// every process's descriptors.
			full++
			p.rescan(full%15 == 0)
		case now := <-budget.C:
			c := p.counts(p.counters())
			p.mu.Lock()
			keep := p.ctl.step(c, now.Sub(lastBudget))
			paused, over := p.paused, p.ctl.over
			p.mu.Unlock()
			lastBudget = now
			switch {
			case paused && now.After(p.resumeAt):
				p.resume(now)
			case paused:
			case over >= pauseAfter && p.capturing() == 0:
				p.pause(now)
			default:
				p.setKeep(keep)
			}
		}
	}
}

// pause takes the uprobes off every process: the traps of the connections
// sampling leaves out cost more than the budget, and no connection is
// being captured, so none is cut.
func (p *Probe) pause(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ls []link.Link
	for _, t := range p.procs {
		ls = append(ls, t.links...)
		t.links = nil
	}
	go closeAll(ls)
	if p.backoff == 0 || now.Sub(p.lastPause) > 2*time.Minute {
		p.backoff = firstPause
	} else {
		p.backoff = min(2*p.backoff, time.Minute)
	}
	p.paused, p.pausedSince, p.resumeAt, p.lastPause = true, now, now.Add(p.backoff), now
	p.pauses++
}

// resume puts the uprobes back, for connections that start from now on
// (the open ones are forgotten, and left out when seen again), with a
// small share that the budget then adjusts.
func (p *Probe) resume(now time.Time) {
	var keys []probeConnKey
	var k probeConnKey
	var v probeConn
	it := p.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	for i := range keys {
		p.objs.Conns.Delete(&keys[i])
	}
	const restart = 1.0 / 64
	p.mu.Lock()
	p.ctl.keep, p.ctl.over = restart, 0
	p.pausedFor += now.Sub(p.pausedSince)
	p.paused = false
	var failed []*traced
	for _, t := range p.procs {
		if p.attachLinks(t) != nil {
			failed = append(failed, t)
		}
	}
	for _, t := range failed {
		p.detach(t)
	}
	p.mu.Unlock()
	p.setKeep(restart)
}

// capturing counts the connections being captured now (of processes
// traced).
func (p *Probe) capturing() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	var k probeConnKey
	var v probeConn
	it := p.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		if v.Skip == 0 && p.procs[k.Pid] != nil {
			n++
		}
	}
	return n
}

// rescan attaches to proxies not traced yet and forgets processes that
// have ended.
func (p *Probe) rescan(ports bool) {
	var ps []uint16
	if ports {
		ps = p.opt.Ports
	}
	found := findProcs(p.opt.Names, ps, p.self)
	if p.opt.PIDs != nil {
		found = found[:0]
		for _, pid := range withChildren(p.opt.PIDs) {
			dir := fmt.Sprintf("%s/%d", procRoot, pid)
			if lib := sslFile(dir); lib != "" {
				found = append(found, Proc{PID: pid, Name: comm(dir), Lib: lib})
			}
		}
	}
	for _, pr := range found {
		p.mu.Lock()
		_, ok := p.procs[pr.PID]
		p.mu.Unlock()
		if !ok {
			p.attach(pr)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for pid, t := range p.procs {
		if _, err := os.Stat(fmt.Sprintf("%s/%d", procRoot, pid)); err != nil {
			p.detach(t)
		}
	}
}

// attachPID traces a process a traced one made.
func (p *Probe) attachPID(pid uint32) {
	p.mu.Lock()
	_, ok := p.procs[pid]
	p.mu.Unlock()
	if ok {
		return
	}
	dir := fmt.Sprintf("%s/%d", procRoot, pid)
	if lib := sslFile(dir); lib != "" {
		p.attach(Proc{PID: pid, Name: comm(dir), Lib: lib})
	}
}

// The functions probed: entry and return for the data and handshake
// calls; SSL_free's entry alone.
var probed = []struct {
	fn       string
	required bool
}{{"SSL_read", true}, {"SSL_write", true}, {"SSL_read_ex", false}, {"SSL_write_ex", false}, {"SSL_do_handshake", true}}

// attach traces one process: its PID in the filter (for the
// tracepoints and fork), and its uprobes unless the probes are paused. A
// process whose probes do not all attach is not traced.
func (p *Probe) attach(pr Proc) {
	if _, err := p.executable(pr.Lib); err != nil {
		return
	}
	if err := p.objs.Pids.Update(pr.PID, uint8(1), ebpf.UpdateAny); err != nil {
		return
	}
	t := &traced{Proc: pr}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		if err := p.attachLinks(t); err != nil {
			p.objs.Pids.Delete(pr.PID)
			return
		}
	}
	p.procs[pr.PID] = t
}

// attachLinks puts a process's uprobes on, all or none (p.mu held).
func (p *Probe) attachLinks(t *traced) error {
	ex, err := p.executableLocked(t.Lib)
	if err != nil {
		return err
	}
	enter := map[string]*ebpf.Program{"SSL_read": p.objs.SslReadEnter, "SSL_write": p.objs.SslWriteEnter,
		"SSL_read_ex": p.objs.SslReadExEnter, "SSL_write_ex": p.objs.SslWriteExEnter, "SSL_do_handshake": p.objs.SslHandshakeEnter}
	opts := &link.UprobeOptions{PID: int(t.PID)}
	fail := func(err error) error {
		closeLinks(t)
		return err
	}
	for _, f := range probed {
		in, err := ex.Uprobe(f.fn, enter[f.fn], opts)
		if err != nil {
			if f.required || !errors.Is(err, link.ErrNoSymbol) {
				return fail(err)
			}
			continue
		}
		t.links = append(t.links, in)
		out, err := ex.Uretprobe(f.fn, p.objs.SslLeave, opts)
		if err != nil {
			return fail(err)
		}
		t.links = append(t.links, out)
	}
	free, err := ex.Uprobe("SSL_free", p.objs.SslFree, opts)
	if err != nil {
		return fail(err)
	}
	t.links = append(t.links, free)
	return nil
}

func closeLinks(t *traced) {
	closeAll(t.links)
	t.links = nil
}

// closeAll closes links at once: taking a uprobe off waits for the
// kernel's readers of it to finish (an RCU grace period, milliseconds),
// which, one link after another, adds up to seconds.
func closeAll(ls []link.Link) {
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Close()
		}()
	}
	wg.Wait()
}

// executable opens (once) the file a process's SSL functions are in.
func (p *Probe) executable(path string) (*link.Executable, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.executableLocked(path)
}

func (p *Probe) executableLocked(path string) (*link.Executable, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	if ex := p.exes[key]; ex != nil {
		return ex, nil
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, err
	}
	p.exes[key] = ex
	return ex, nil
}

// detach removes a process's probes (p.mu held).
func (p *Probe) detach(t *traced) {
	closeLinks(t)
	p.objs.Pids.Delete(t.PID)
	delete(p.procs, t.PID)
}

// Close detaches everything; a Read in progress returns.
func (p *Probe) Close() error {
	if p.closed.Load() {
		return nil
	}
	p.final = p.Stats()
	p.closed.Store(true)
	close(p.stop)
	p.wg.Wait()
	p.release()
	return nil
}

func (p *Probe) release() {
	p.mu.Lock()
	var ls []link.Link
	for pid, t := range p.procs {
		ls = append(ls, t.links...)
		t.links = nil
		p.objs.Pids.Delete(pid)
		delete(p.procs, pid)
	}
	p.mu.Unlock()
	closeAll(ls)
	for _, l := range p.tps {
		l.Close()
	}
	if p.rd != nil {
		p.rd.Close()
	}
	p.objs.Close()
}

// monoClock turns CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) into
// wall-clock time, as packet timestamps are.
type monoClock struct {
	mu     sync.Mutex
	offset int64 // realtime − monotonic, ns
	synced time.Time
}

// syncTries and syncWindow bound how the offset is measured: the wall
// clock is read between two readings of the monotonic one, and only a
// reading whose two bracket it closely is taken. A thread preempted
// between two clock reads (a loaded proxy host) would otherwise put every
// piece of plaintext milliseconds late, after the packets it caused.
const (
	syncTries  = 8
	syncWindow = 50 * time.Microsecond
)

// sync measures the offset; a first measurement is always taken (the
// closest of the tries), a later one only when it is close.
func (c *monoClock) sync() {
	best, bestWin := int64(0), int64(-1)
	for range syncTries {
		var m1, w, m2 unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1)
		unix.ClockGettime(unix.CLOCK_REALTIME, &w)
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &m2)
		if win := m2.Nano() - m1.Nano(); bestWin < 0 || win < bestWin {
			best, bestWin = w.Nano()-(m1.Nano()+win/2), win
		}
	}
	c.mu.Lock()
	if c.synced.IsZero() || bestWin <= int64(syncWindow) {
		c.offset = best
	}
	c.synced = time.Now()
	c.mu.Unlock()
}

// maybeSync follows adjustments of the wall clock, once a second at most.
func (c *monoClock) maybeSync() {
	c.mu.Lock()
	stale := time.Since(c.synced) > time.Second
	c.mu.Unlock()
	if stale {
		c.sync()
	}
}

func (c *monoClock) wall(mono uint64) time.Time {
	c.mu.Lock()
	o := c.offset
	c.mu.Unlock()
	return time.Unix(0, int64(mono)+o)
}
