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
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"
)

const probeUsage = `Usage: wsdiag probe [flags] ws://HOST[:PORT]/PATH   (or wss://)

Makes its own WebSocket handshake to URL and judges it. As root on the
proxy host it captures both legs of the proxy while doing so (decrypting
its own TLS: it holds the keys) and prints the verdict of its attempt as
"wsdiag read" would; otherwise it sees only its own side and says what
that proves. Exit status as for read: 0 ok, 1 not ok, 2 could not run.

Flags:
`

// maxProbeCapture bounds the temporary capture of a probe (all TCP on
// the interface while the probe runs).
const maxProbeCapture = 256 << 20

func cmdProbe(e *env, args []string) (int, error) {
	stdout, stderr := e.stdout, e.stderr
	fs := pflag.NewFlagSet("wsdiag probe", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		c       common
		pf      proxyFlags
		o       probeOptions
		count   int
		iface   string
		noCap   bool
		headers []string
	)
	fs.CountVarP(&c.verbose, "verbose", "v", "show evidence, config block, error-log lines and fix (-vv: every header of every leg)")
	fs.StringVar(&c.format, "format", "text", "output format: text or json (one JSON object per line)")
	fs.StringVar(&c.logFormat, "log-format", "text", "warnings and errors on stderr: text or json (one JSON object per line)")
	fs.BoolVar(&c.showSecrets, "show-secrets", false, "quote Cookie, Authorization and Set-Cookie values instead of redacting them")
	fs.StringVar(&c.color, "color", "auto", "colour the text output: auto (on a terminal), always, never")
	pf.register(fs)
	fs.StringVar(&o.origin, "origin", "", "send Origin: ORIGIN")
	fs.StringArrayVar(&headers, "header", nil, `send header "Name: value", replacing probe's own of that name (Host: for a virtual host; repeatable)`)
	fs.StringVar(&o.subprotocol, "subprotocol", "", "offer this Sec-WebSocket-Protocol")
	fs.DurationVar(&o.idle, "idle", 0, "after the handshake stay silent this long, to find the idle timeout on the path (who closes, after how long)")
	fs.IntVar(&o.size, "size", 0, "send one message of N bytes, to find a message size limit")
	fs.IntVar(&count, "count", 1, "make N attempts, one after the other")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "connect and handshake timeout")
	fs.BoolVar(&o.insecure, "insecure", false, "wss: do not verify the server's certificate")
	fs.StringVarP(&iface, "interface", "i", "", `capture on this interface (default: "lo" for a loopback URL, else "any")`)
	fs.BoolVar(&noCap, "no-capture", false, "do not capture even as root: judge from the client's side only")
	fs.Usage = func() { fmt.Fprintf(stderr, "%s%s", probeUsage, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		return exitOK, err
	}
	e.log = newLogger(c.logFormat, stderr)
	fail := func(format string, a ...any) (int, error) {
		return 0, fmt.Errorf("probe: "+format, a...)
	}
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
	o.url = u
	for _, h := range headers {
		name, _, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(h, "\r\n") {
			return fail("--header %q is not \"Name: value\"", h)
		}
		o.headers = append(o.headers, h)
	}
	if count < 1 || count > 1000 || o.size < 0 || o.size > 1<<30 || o.idle < 0 {
		return fail("--count 1…1000, --size 0…1 GiB, --idle ≥ 0")
	}
	switch c.format {
	case "text", "json":
	default:
		return fail("--format: %q is not text or json", c.format)
	}
	opt := analyze.DefaultOptions
	opt.Grace, opt.WaitSession = 10*time.Second, true
	hook, err := pf.setup(&opt, true)
	if err != nil {
		return 0, err
	}
	if iface == "" {
		iface = "any"
		if ips, err := net.LookupIP(u.Hostname()); err == nil && len(ips) > 0 && ips[0].IsLoopback() {
			iface = "lo"
		}
	}

	// Both legs, when allowed to capture.
	var cp *probeCapture
	var capErr error
	if !noCap {
		cp, capErr = startProbeCapture(iface)
	}
	var keys bytes.Buffer
	var keysMu sync.Mutex
	o.keyLog = lockedWriter{&keysMu, &keys}
	var results []*probeResult
	for i := 0; i < count; i++ {
		r, err := runProbe(&o)
		if err != nil {
			if cp != nil {
				cp.stop()
				cp.remove()
			}
			return 0, fmt.Errorf("probe: %v", err)
		}
		results = append(results, r)
		describeProbe(stderr, r, &o)
	}

	sess := newSession(e, &c, opt, stdout)
	hook.attach(sess)
	ours := map[netip.AddrPort]bool{}
	for _, r := range results {
		ours[r.local] = true
	}
	got := map[netip.AddrPort]*analyze.Verdict{}
	collect := func(v *analyze.Verdict) {
		if ours[v.Client] && v.Attempt() && got[v.Client] == nil {
			got[v.Client] = v
		}
	}
	if cp != nil {
		cp.stop()
		keysMu.Lock()
		kl, _ := tlsrec.ParseKeyLog(bytes.NewReader(keys.Bytes()))
		keysMu.Unlock()
		if err := cp.judge(opt, kl, collect); err != nil {
			sess.warn("%s", err)
		}
		for _, w := range cp.warnings {
			sess.warn("%s", w)
		}
		cp.remove()
	} else {
		why := "not root (capturing needs CAP_NET_RAW)"
		if noCap {
			why = "--no-capture"
		} else if capErr != nil {
			why = oneLine(capErr)
		}
		fmt.Fprintf(stderr, "wsdiag: probe: %s: wsdiag sees only its own side of the path; the verdict says what the client's leg proves, not which hop did it\n", why)
	}
	// An attempt the capture did not show is judged from the client's side.
	for _, r := range results {
		if got[r.local] == nil {
			if cp != nil {
				sess.warn("the capture on %s did not show the attempt from %s: judged from the client's side", iface, r.local)
			}
			clientSideVerdict(r, &o, opt, func(v *analyze.Verdict) {
				const asRoot = "run wsdiag probe as root on the proxy host, where it captures the proxy's upstream leg too"
				switch {
				case v.Code == analyze.Unpaired:
					v.Fix = "the client's side alone does not show which hop refused the upgrade: " + asRoot
				case !v.OK():
					v.Fix += "\n(judged from the client's side alone: to see the upstream leg, " + asRoot + ")"
				}
				collect(v)
			})
		}
	}
	judged := 0
	for _, r := range results {
		v := got[r.local]
		if v == nil {
			continue
		}
		if cp != nil && iface == "lo" && v.Code == analyze.Unpaired {
			sess.warn("the proxy's upstream leg was not on lo: when the backend is on another host, probe with -i any")
		}
		sess.verdict(v)
		judged++
	}
	hook.finishInto(sess, textOut(c.format, stdout, stderr))
	code := sess.finish(summary{})
	if judged < len(results) {
		code = exitNotOK
	}
	return code, nil
}

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

// probeCapture records all TCP on an interface into a temporary pcapng
// while the probe runs; judge then reads it back through the read
// pipeline, with the probe's TLS keys.
type probeCapture struct {
	l        *capture.Live
	f        *os.File
	w        *capture.Writer
	done     chan struct{}
	full     atomic.Bool
	warnings []string
}

func startProbeCapture(iface string) (*probeCapture, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("not root")
	}
	l, err := capture.OpenLive(iface, capture.LiveOptions{Timeout: 100 * time.Millisecond})
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
		p.warnings = append(p.warnings, fmt.Sprintf("more than %d MB on the interface during the probe: later packets not judged", maxProbeCapture>>20))
	}
}

func (p *probeCapture) remove() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// judge runs the read pipeline over the probe's capture.
func (p *probeCapture) judge(opt analyze.Options, keys *tlsrec.KeyLog, out func(*analyze.Verdict)) error {
	r, err := capture.Open(p.f.Name())
	if err != nil {
		return err
	}
	defer r.Close()
	ropt := reassembly.DefaultOptions
	ropt.KeyLog = keys
	an := analyze.New(opt, out)
	asm := reassembly.New(an, ropt)
	for {
		pk, err := r.Next()
		if err != nil {
			if err != io.EOF {
				return err
			}
			break
		}
		asm.Packet(pk.Net, pk.TCP, pk.CI, pk.Cut)
	}
	asm.Close()
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
		end.Upgraded, end.UpgradeTime = true, r.start
		ws := &reassembly.WSSession{}
		ws.C2S.Frames, ws.S2C.Frames = uint64(r.sent), uint64(r.received)
		ws.S2C.Pings = uint32(r.pings)
		if r.closeCode != 0 && r.closedBy == "server" {
			ws.S2C.CloseCode, ws.S2C.CloseAt = r.closeCode, r.closedAt
		}
		end.WS = ws
	}
	kind := reassembly.CloseFIN
	if r.closeKind == "RST" {
		kind = reassembly.CloseRST
	}
	at := r.closedAt
	if at.IsZero() {
		at = end.Last
	}
	if r.closedBy == "server" {
		end.ServerClose = reassembly.Close{Kind: kind, Time: at}
		end.ClientClose = reassembly.Close{Kind: reassembly.CloseFIN, Time: end.Last}
	} else {
		end.ClientClose = reassembly.Close{Kind: reassembly.CloseFIN, Time: end.Last}
		end.ServerClose = reassembly.Close{Kind: reassembly.CloseFIN, Time: end.Last}
	}
	an.ConnEnd(end)
	an.Finish()
}
