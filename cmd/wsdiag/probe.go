package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
	"github.com/wsdiag/wsdiag/cmd/internal/visible"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"
)

const probeUsage = `Usage: wsdiag probe [flags] ws://HOST[:PORT]/PATH   (or wss://)

Makes its own WebSocket handshake to URL and judges it, and ends its
session with a close handshake. As root on the proxy host it captures
its own connections and the upstream connections the proxy opens for
them (the backends' ports from --upstream or the nginx configuration;
without either, all TCP but the proxy's other clients), decrypting its
own TLS (it holds the keys), and prints the verdict of its attempt as
"wsdiag read" would; as a normal user it sees only its own side and says
what that proves. Exit status as for read: 0 ok, 1 not ok, 2 could not
run.

Flags:
`

// maxProbeCapture bounds the temporary capture of a probe.
const maxProbeCapture = 256 << 20

func cmdProbe(e *env, args []string) (int, error) { return runCommand(e, args, &probeSource{}) }

// probeSource is probe's input: its own WebSocket attempts and, as root, a
// capture of the interface while they run, judged as read judges a file.
// Only the verdicts of its own attempts are passed on, in the order they
// were made; an attempt the capture did not show is judged from what the
// client saw.
type probeSource struct {
	o       probeOptions
	count   int
	iface   string
	noCap   bool
	headers []string

	keys    bytes.Buffer // the TLS secrets of the probe's connections
	keysMu  sync.Mutex
	results []*probeResult
	cp      *probeCapture
	capErr  error
	filt    *probeFilter // nil until the first connection
}

func (p *probeSource) usage() string { return probeUsage }

func (p *probeSource) register(fs *pflag.FlagSet, c *common) {
	c.registerOutput(fs)
	o := &p.o
	fs.StringVar(&o.origin, "origin", "", "send Origin: ORIGIN")
	fs.StringArrayVar(&p.headers, "header", nil, `send header "Name: value", replacing probe's own of that name (Host: for a virtual host; repeatable)`)
	fs.StringVar(&o.subprotocol, "subprotocol", "", "offer this Sec-WebSocket-Protocol")
	fs.DurationVar(&o.idle, "idle", 0, "after the handshake stay silent this long, to find the idle timeout on the path (who closes, after how long)")
	fs.IntVar(&o.size, "size", 0, "send one message of N bytes, to find a message size limit")
	fs.IntVar(&p.count, "count", 1, "make N attempts, one after the other")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "connect and handshake timeout")
	fs.BoolVar(&o.insecure, "insecure", false, "wss: do not verify the server's certificate")
	fs.StringVarP(&p.iface, "interface", "i", "", `capture on this interface (default: "lo" for a loopback URL, else "any")`)
	fs.BoolVar(&p.noCap, "no-capture", false, "do not capture even as root: judge from the client's side only")
	fs.StringSliceVar(&c.upstreams, "upstream", nil, "HOST:PORT (or :PORT) of the proxy's backends: capture their connections (default: from the proxy's configuration, --nginx-config or --proxy-config, else all TCP but the proxy's other clients)")
}

func (p *probeSource) plan(s *session, fs *pflag.FlagSet) error {
	fail := func(format string, a ...any) error { return fmt.Errorf("probe: "+format, a...) }
	if fs.NArg() != 1 {
		return fail("give one ws:// or wss:// URL")
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fail("%q is not a ws:// or wss:// URL", fs.Arg(0))
	}
	if u.Path == "" {
		u.Path = "/"
	}
	p.o.url = u
	for _, h := range p.headers {
		name, _, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(h, "\r\n") {
			return fail("--header %q is not \"Name: value\"", h)
		}
		p.o.headers = append(p.o.headers, h)
	}
	if p.count < 1 || p.count > 1000 || p.o.size < 0 || p.o.size > 1<<30 || p.o.idle < 0 {
		return fail("--count 1…1000, --size 0…1 GiB, --idle ≥ 0")
	}
	if p.iface == "" {
		p.iface = "any"
		if ips, err := net.LookupIP(u.Hostname()); err == nil && len(ips) > 0 && ips[0].IsLoopback() {
			p.iface = "lo"
		}
	}
	s.plan.onHost, s.plan.keysGrow = true, true
	return nil
}

// open starts the capture, when allowed to capture. Its filter takes
// nothing until the first connection: each is named in it before its SYN
// leaves (dialing), with the upstream connections the proxy opens.
func (p *probeSource) open(s *session) error {
	if !p.noCap {
		p.cp, p.capErr = startProbeCapture(p.iface)
	}
	if p.cp != nil {
		s.onExit(func() {
			p.cp.stop()
			p.cp.remove()
		})
		p.o.dialing = func(local, remote netip.AddrPort) error {
			if p.filt == nil {
				p.filt = &probeFilter{upstreams: p.upstreams(s, remote)}
			}
			return p.cp.l.SetFilter(p.filt.add(local, remote))
		}
	}
	return nil
}

// upstreams are the proxy's backends the capture takes: --upstream, or
// those the proxy's configuration sends the probe's request to.
func (p *probeSource) upstreams(s *session, proxy netip.AddrPort) []netip.AddrPort {
	if len(s.opt.Upstreams) > 0 {
		return s.opt.Upstreams
	}
	host := p.o.url.Host
	for _, h := range p.o.headers {
		if n, v, _ := strings.Cut(h, ":"); strings.EqualFold(strings.TrimSpace(n), "Host") {
			host = strings.TrimSpace(v)
		}
	}
	var out []netip.AddrPort
	if s.hook != nil {
		for _, l := range s.hook.locs {
			if u, ok := l.(upstreamFinder); ok {
				out = append(out, u.upstreams(proxy, host, p.o.url.Path)...)
			}
		}
	}
	return out
}

// run makes the attempts, one after the other, then judges them.
func (p *probeSource) run(s *session) error {
	p.o.keyLog = lockedWriter{&p.keysMu, &p.keys}
	for i := 0; i < p.count && !s.stop.Load(); i++ {
		r, err := runProbe(&p.o)
		if err != nil {
			return fmt.Errorf("probe: %v", err)
		}
		p.results = append(p.results, r)
		describeProbe(visible.NewWriter(s.e.stderr), r, &p.o)
	}
	own := p.judgeCapture(s)
	p.judgeClientSide(s, own)
	judged := 0
	for _, r := range p.results {
		v := own.got[r.local]
		if v == nil {
			continue
		}
		if p.cp != nil && p.iface == "lo" && v.Code == analyze.Unpaired {
			s.warn("the proxy's upstream leg was not on lo: when the backend is on another host, probe with -i any")
		}
		s.verdict(v)
		judged++
	}
	if judged < len(p.results) {
		s.notOK = true
	}
	return nil
}

// ownVerdicts keeps the first verdict of each of the probe's attempts, by
// its client address.
type ownVerdicts struct {
	ours map[netip.AddrPort]bool
	got  map[netip.AddrPort]*analyze.Verdict
}

func (o *ownVerdicts) collect(v *analyze.Verdict) {
	if o.ours[v.Client] && v.Attempt() && o.got[v.Client] == nil {
		o.got[v.Client] = v
	}
}

// judgeCapture runs the capture through read's pipeline with the probe's
// keys.
func (p *probeSource) judgeCapture(s *session) *ownVerdicts {
	own := &ownVerdicts{ours: map[netip.AddrPort]bool{}, got: map[netip.AddrPort]*analyze.Verdict{}}
	for _, r := range p.results {
		own.ours[r.local] = true
	}
	if p.cp == nil {
		why := "not root (capturing needs CAP_NET_RAW)"
		if p.noCap {
			why = "--no-capture"
		} else if p.capErr != nil {
			why = oneLine(p.capErr)
		}
		fmt.Fprintf(visible.NewWriter(s.e.stderr), "wsdiag: probe: %s: wsdiag sees only its own side of the path; the verdict says what the client's leg proves, not which hop did it (as root on the proxy host it captures the upstream leg too)\n", why)
		return own
	}
	p.cp.stop()
	p.keysMu.Lock()
	kl, _ := tlsrec.ParseKeyLog(bytes.NewReader(p.keys.Bytes()))
	p.keysMu.Unlock()
	s.ropt.KeyLog.Add(kl)
	if err := p.cp.judge(s, analyze.New(s.opt, own.collect)); err != nil {
		s.warn("%s", err)
	}
	for _, w := range p.cp.warnings {
		if p.cp.full.Load() && p.filt != nil && len(p.filt.upstreams) == 0 {
			w += " (the backends' ports were not known, so all TCP but the proxy's other clients was captured: give --upstream HOST:PORT or the nginx configuration)"
		}
		s.warn("%s", w)
	}
	return own
}

// judgeClientSide judges each attempt the capture did not show from what
// the client saw.
func (p *probeSource) judgeClientSide(s *session, own *ownVerdicts) {
	for _, r := range p.results {
		if own.got[r.local] != nil {
			continue
		}
		opt := s.opt
		opt.ClientLegOnly = "probe sees only its own connection as a normal user: run it as root on the proxy host, where it captures the proxy's upstream leg too"
		if p.cp != nil {
			s.warn("the capture on %s did not show the attempt from %s: judged from the client's side", p.iface, r.local)
			opt.ClientLegOnly = fmt.Sprintf("the capture on %s did not show this attempt: probe -i any, or --upstream HOST:PORT of the backend", p.iface)
		}
		clientSideVerdict(r, &p.o, opt, func(v *analyze.Verdict) {
			if !v.OK() && v.Code != analyze.Unpaired {
				v.Fix += "\n(judged from the client's side alone: " + opt.ClientLegOnly + ")"
			}
			own.collect(v)
		})
	}
}

// close: the summary counts the probe's attempts and the packets its
// capture took (its own connections and the upstream ones).
func (p *probeSource) close(s *session, sum *SummaryLine) ending {
	if p.cp != nil {
		sum.Packets = uint64(p.cp.packets.Load())
		sum.TCPPackets = sum.Packets
	}
	return ending{}
}

func (p *probeSource) done(s *session, sum *SummaryLine) {}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// describeProbe says on stderr what the client itself saw.
func describeProbe(w io.Writer, r *probeResult, o *probeOptions) {
	say := func(format string, a ...any) { fmt.Fprintf(w, "wsdiag: probe: "+format+"\n", a...) }
	if r.err != nil {
		say("%s → %s: %v", r.local, r.remote, r.err)
		return
	}
	what := r.statusLine
	if r.upgraded && !r.acceptOK {
		what += " (wrong Sec-WebSocket-Accept)"
	}
	say("%s → %s %s: %s", r.local, r.remote, r.reqLine, what)
	if !r.upgraded {
		return
	}
	if o.idle > 0 {
		switch {
		case r.idleSurvived:
			say("idle %s: still open after %s of silence: the idle timeout on the path is longer than that", o.idle, o.idle)
		case r.closeKind != "":
			how := "without a close frame"
			if r.closeCode != 0 {
				how = fmt.Sprintf("with close %d", r.closeCode)
			}
			say("idle: the server side closed after %.2f s of silence (%s, %s)", r.closedAt.Sub(r.lastFrameBeforeClose()).Seconds(), r.closeKind, how)
		}
	}
	if o.size > 0 {
		say("message of %d bytes: %s back, %s", o.size, plural(uint64(r.received), "frame"), closeText(r))
	}
}

// lastFrameBeforeClose is when the silence that ended in the close began.
func (r *probeResult) lastFrameBeforeClose() time.Time {
	return r.lastFrame
}

func closeText(r *probeResult) string {
	switch {
	case r.closeKind == "" || r.closedBy == "client":
		return "the connection stayed open"
	case r.closeCode != 0:
		return fmt.Sprintf("then the server side closed with %d (%s)", r.closeCode, r.closeKind)
	}
	return "then the server side closed without a close frame (" + r.closeKind + ")"
}

// probeCapture records the probe's connections and the proxy's upstream
// connections into a temporary pcapng while the probe runs (the kernel
// filter follows each new connection: probefilter.go); judge then reads
// it back through the read pipeline, with the probe's TLS keys.
type probeCapture struct {
	l        *capture.Live
	f        *os.File
	w        *capture.Writer
	done     chan struct{}
	full     atomic.Bool
	packets  atomic.Int64 // written to the file
	warnings []string
}

func startProbeCapture(iface string) (*probeCapture, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("not root")
	}
	// Nothing until the first connection is named (dialing).
	l, err := capture.OpenLive(iface, capture.LiveOptions{Timeout: 100 * time.Millisecond, Filter: "tcp and port 0"})
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "wsdiag-probe-*.pcapng")
	if err != nil {
		l.Close()
		return nil, err
	}
	w, err := capture.NewWriter(f, l.LinkType())
	if err != nil {
		l.Close()
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	p := &probeCapture{l: l, f: f, w: w, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var n int64
		for {
			pk, err := l.Next()
			if errors.Is(err, capture.ErrTimeout) {
				continue
			}
			if err != nil {
				return
			}
			if n += int64(len(l.Raw())); n > maxProbeCapture {
				p.full.Store(true)
				continue
			}
			w.WritePacket(pk.CI, l.Raw())
			p.packets.Add(1)
		}
	}()
	// The ring is attached; give the filter a moment to settle.
	time.Sleep(200 * time.Millisecond)
	return p, nil
}

// stop ends the capture once the last packets are through the ring
// (the kernel hands them over in blocks).
func (p *probeCapture) stop() {
	if p.l == nil {
		return
	}
	time.Sleep(time.Second)
	st := p.l.Stats()
	p.l.Close()
	<-p.done
	p.w.Flush()
	p.l = nil
	if st.KernelDrops > 0 {
		p.warnings = append(p.warnings, fmt.Sprintf("the kernel dropped %d packets during the probe: the verdict may lack a leg", st.KernelDrops))
	}
	if p.full.Load() {
		p.warnings = append(p.warnings, fmt.Sprintf("more than %d MB captured during the probe: later packets not judged", maxProbeCapture>>20))
	}
}

func (p *probeCapture) remove() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// judge runs the read pipeline over the probe's capture, into an.
func (p *probeCapture) judge(s *session, an *analyze.Analyzer) error {
	r, err := capture.Open(p.f.Name())
	if err != nil {
		return err
	}
	defer r.Close()
	pl := pipeline.New(an, s.ropt, pipeline.Config{Guard: exitOnPanic})
	p.warnings = append(p.warnings, pipeline.Pump([]*capture.Reader{r}, pl, pipeline.PumpOptions{})...)
	pl.Close()
	an.Finish()
	return nil
}

// clientSideVerdict judges an attempt from what the client saw: its own
// request and the answer, fed to the analyzer as a capture of the client
// leg alone would be.
func clientSideVerdict(r *probeResult, o *probeOptions, opt analyze.Options, out func(*analyze.Verdict)) {
	conn := reassembly.Conn{ID: 1, Client: r.local, Server: r.remote, TLS: o.url.Scheme == "wss"}
	an := analyze.New(opt, out)
	req := &reassembly.Request{Conn: conn, Method: "GET", Target: o.url.RequestURI(), Version: "HTTP/1.1", Start: r.start, End: r.start}
	for _, h := range r.reqHeaders {
		n, v, _ := strings.Cut(h, ":")
		req.Headers = append(req.Headers, reassembly.Header{Name: strings.TrimSpace(n), Value: strings.TrimSpace(v)})
	}
	an.Request(req)
	end := &reassembly.ConnEnd{Conn: conn, First: r.start, Last: time.Now(), SYN: true, SYNACK: true, HTTP: true, Reason: reassembly.EndClosed, Requests: 1}
	if r.status != 0 {
		resp := &reassembly.Response{Conn: conn, Status: r.status, Body: r.body, Start: r.start, End: r.start, Request: req}
		resp.Version, resp.Reason, _ = strings.Cut(r.statusLine, " ")
		if _, reason, ok := strings.Cut(resp.Reason, " "); ok {
			resp.Reason = reason
		}
		names := make([]string, 0, len(r.respHeaders))
		for n := range r.respHeaders {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			for _, v := range r.respHeaders[n] {
				resp.Headers = append(resp.Headers, reassembly.Header{Name: n, Value: v})
			}
		}
		an.Response(resp)
		end.Responses = 1
	}
	if r.upgraded {
		// What the probe sent, its close frame included, is certain.
		end.Upgraded, end.UpgradeTime, end.WS = true, r.start, r.wsSummary()
	}
	// The server's side ended when the probe read its end (FIN or RST);
	// the probe closes its own after, or at the end when the server kept
	// its side open.
	end.ClientClose = reassembly.Close{Kind: reassembly.CloseFIN, Time: end.Last}
	end.ServerClose = reassembly.Close{Kind: reassembly.CloseFIN, Time: end.Last}
	if r.closeKind != "" {
		kind := reassembly.CloseFIN
		if r.closeKind == "RST" {
			kind = reassembly.CloseRST
		}
		end.ServerClose = reassembly.Close{Kind: kind, Time: r.closedAt}
	}
	an.ConnEnd(end)
	an.Finish()
}
