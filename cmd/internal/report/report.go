// Package report writes wsdiag's verdicts as one self-contained HTML file:
// a summary, a timeline of every attempt, and per attempt a ladder diagram,
// the header blocks of each hop side by side, the evidence and the fix.
//
// The page needs no network: its CSS and script are embedded, and the
// attempts travel as compact JSON (gzip-compressed when large) that the
// script turns into DOM a page at a time, so 100 000 attempts still open
// quickly.
package report

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// Options configure a Report.
type Options struct {
	// Title names what was analysed (file names, an interface).
	Title string
	// ShowSecrets keeps Cookie, Authorization… values; otherwise they are
	// redacted exactly as in the text output.
	ShowSecrets bool
	// Live marks a report rewritten while capturing.
	Live bool
	// MaxAttempts keeps only the latest attempts (0: DefaultMaxAttempts),
	// so a long live capture's report stays bounded.
	MaxAttempts int
}

// DefaultMaxAttempts bounds a report's attempts.
const DefaultMaxAttempts = 200000

// Summary holds the run's figures beyond the verdicts.
type Summary struct {
	Packets, TCP, Connections uint64
	KernelDrops               *uint64
	// Notes are figures said as sentences ("3 sessions began before the
	// capture …").
	Notes    []string
	Warnings []string
}

// Report collects verdicts; it is safe for use by one producer while
// another goroutine writes it.
type Report struct {
	opt  Options
	mu   sync.Mutex
	recs []*record // ring once full: start is the oldest
	head int
	// dropped counts attempts forgotten to stay under MaxAttempts.
	dropped uint64
	plain   uint64
	sum     Summary
	gen     uint64 // bumped by every change, for Autosave
	// canon shares one copy of repeated strings (header lines, evidence).
	canon map[string]string
}

// New returns an empty report.
func New(opt Options) *Report {
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = DefaultMaxAttempts
	}
	return &Report{opt: opt, canon: map[string]string{}}
}

// record is what the report keeps of a verdict: strings already redacted.
type record struct {
	start                       time.Time
	end                         time.Time // last event seen of the attempt
	code                        analyze.Code
	severity                    analyze.Severity
	hop                         analyze.Hop
	client                      string
	path                        string
	proxy                       string
	product                     string
	backend                     string
	statusBackend, statusClient int
	pairing                     string
	findings                    []string
	evidence                    []string
	errorLog                    string
	fix                         string
	legs                        []leg
	session                     *analyze.Session
	connects                    []analyze.Connect
	connServer                  []string
	// The client's Sec-WebSocket-Key and the Accept answered to it.
	key, accept string
}

type leg struct {
	client, server          string
	reqLine, statusLine     string
	reqHeaders, respHeaders []string
	reqCut, respCut         bool
	times                   analyze.LegTimes
}

// maxCanon bounds the shared-string table; past it strings are kept as
// they come.
const maxCanon = 1 << 20

func (r *Report) str(s string) string {
	if c, ok := r.canon[s]; ok {
		return c
	}
	if len(r.canon) < maxCanon && len(s) < 4096 {
		r.canon[s] = s
	}
	return s
}

func addr(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// headerLines renders a header block as the text output does (render.go):
// secrets redacted unless shown.
func (r *Report) headerLines(h reassembly.Headers) []string {
	out := make([]string, len(h))
	for i, f := range h {
		out[i] = r.str(f.Name + ": " + analyze.Redacted(f.Name, f.Value, r.opt.ShowSecrets))
	}
	return out
}

// Add records a verdict. Plain HTTP exchanges (--all) are only counted.
// A nil Report ignores it, so callers need no check.
func (r *Report) Add(v *analyze.Verdict) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	if !v.Attempt() {
		r.plain++
		return
	}
	rec := &record{start: v.Time, code: v.Code, severity: v.Severity, hop: v.Hop, client: addr(v.Client),
		path: r.str(v.Path), proxy: r.str(addr(v.Proxy)), product: r.str(v.ProxyProduct), backend: r.str(addr(v.Backend)),
		statusBackend: v.StatusBackend, statusClient: v.StatusClient, pairing: string(v.PairConfidence),
		errorLog: v.NginxWouldLog(), fix: r.str(v.Fix), session: v.Session, connects: v.Connects}
	for _, f := range v.Findings {
		rec.findings = append(rec.findings, string(f))
	}
	for _, e := range v.Evidence {
		rec.evidence = append(rec.evidence, r.str(e))
	}
	// The proxy's own word, when read: the config block and its error log.
	if c := v.Config; c != nil {
		rec.evidence = append(rec.evidence, r.str(fmt.Sprintf("config: %s:%d (%s)", c.File, c.Line, c.Block)))
	}
	for _, l := range v.ErrorLogLines {
		rec.evidence = append(rec.evidence, r.str("error log: "+l))
	}
	rec.end = v.Time
	later := func(t time.Time) {
		if t.After(rec.end) {
			rec.end = t
		}
	}
	for _, l := range v.Legs {
		rec.legs = append(rec.legs, leg{client: addr(l.Client), server: r.str(addr(l.Server)),
			reqLine: r.str(l.RequestLine), statusLine: r.str(l.StatusLine),
			reqHeaders: r.headerLines(l.RequestHeaders), respHeaders: r.headerLines(l.ResponseHeaders),
			reqCut: l.RequestCut, respCut: l.ResponseCut, times: l.Times})
		t := l.Times
		for _, x := range []time.Time{t.Response, t.ClientEnd, t.ServerEnd, t.Last} {
			later(x)
		}
	}
	for _, l := range v.Legs {
		if k, ok := l.RequestHeaders.Get("Sec-WebSocket-Key"); ok && rec.key == "" {
			rec.key = k
		}
		if a, ok := l.ResponseHeaders.Get("Sec-WebSocket-Accept"); ok && rec.accept == "" {
			rec.accept = a
		}
	}
	for _, c := range v.Connects {
		rec.connServer = append(rec.connServer, r.str(addr(c.Server)))
		later(c.Last)
	}
	if len(r.recs) < r.opt.MaxAttempts {
		r.recs = append(r.recs, rec)
		return
	}
	r.recs[r.head] = rec
	r.head = (r.head + 1) % len(r.recs)
	r.dropped++
}

// SetSummary records the run's figures; nil-safe.
func (r *Report) SetSummary(s Summary) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.sum = s
	r.gen++
	r.mu.Unlock()
}

// snapshot is a consistent copy to write from, sorted by time.
type snapshot struct {
	opt     Options
	recs    []*record
	dropped uint64
	plain   uint64
	sum     Summary
	at      time.Time
}

func (r *Report) snapshot() *snapshot {
	r.mu.Lock()
	s := &snapshot{opt: r.opt, dropped: r.dropped, plain: r.plain, sum: r.sum, at: time.Now()}
	s.recs = make([]*record, 0, len(r.recs))
	s.recs = append(s.recs, r.recs[r.head:]...)
	s.recs = append(s.recs, r.recs[:r.head]...)
	r.mu.Unlock()
	sort.SliceStable(s.recs, func(i, j int) bool { return s.recs[i].start.Before(s.recs[j].start) })
	return s
}

// Write writes the HTML page.
func (r *Report) Write(w io.Writer) error {
	return r.snapshot().write(w)
}

// WriteFile writes the page to name atomically: a temporary file in the
// same directory, renamed over name, so a browser never sees half a page.
// A nil Report writes nothing.
func (r *Report) WriteFile(name string) error {
	if r == nil {
		return nil
	}
	return r.snapshot().writeFile(name)
}

func (s *snapshot) writeFile(name string) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("--html %s: %v", name, err)
	}
	tmp := f.Name()
	err = s.write(f)
	if err2 := f.Chmod(0o644); err == nil {
		err = err2
	}
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--html %s: %v", name, err)
	}
	return nil
}

// Autosave rewrites name as verdicts arrive, at most once per every
// (and never more often than five times the last write took, so a huge
// report does not eat the capture's CPU). The returned stop writes the
// final page and reports the first error. A nil Report does nothing.
func (r *Report) Autosave(name string, every time.Duration) (stop func() error) {
	if r == nil {
		return func() error { return nil }
	}
	done := make(chan struct{})
	finished := make(chan error, 1)
	go func() {
		var firstErr error
		var written uint64
		wait := every
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-done:
				err := r.WriteFile(name)
				if firstErr == nil {
					firstErr = err
				}
				finished <- firstErr
				return
			case <-t.C:
			}
			r.mu.Lock()
			gen := r.gen
			r.mu.Unlock()
			wait = every
			if gen != written {
				start := time.Now()
				if err := r.WriteFile(name); err != nil && firstErr == nil {
					firstErr = err
				}
				written = gen
				wait = max(every, 5*time.Since(start))
			}
			t.Reset(wait)
		}
	}()
	return func() error {
		close(done)
		return <-finished
	}
}
