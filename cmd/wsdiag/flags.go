package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"
)

// common holds the flags the subcommands share: every one takes the
// output flags, read and live the capture flags too (registerCapture).
// Those a subcommand does not take keep newCommon's values.
type common struct {
	verbose     int
	format      string
	logFormat   string
	all         bool
	count       int
	clientPorts []string // live only
	ports       []uint16 // clientPorts, parsed: live's kernel filter watches them
	upstreams   []string
	showSecrets bool
	color       string
	progress    string
	maxFlows    int
	maxHeader   int
	maxPending  int
	keylogs     []string
	html        string
	maxMemory   string
	metrics     string // live only: serve Prometheus metrics here
}

// newCommon returns the flags' defaults.
func newCommon() *common {
	return &common{format: "text", logFormat: "text", color: "auto", progress: "auto",
		maxFlows: reassembly.DefaultOptions.MaxFlows, maxHeader: reassembly.DefaultLimits.MaxHeaderBytes,
		maxPending: analyze.DefaultOptions.MaxPending, maxMemory: defaultMaxMemory}
}

// registerOutput adds the flags that shape what is printed.
func (c *common) registerOutput(fs *pflag.FlagSet) {
	fs.CountVarP(&c.verbose, "verbose", "v", "show evidence, config block, error-log lines and fix under each verdict (-vv: every header of every leg)")
	fs.StringVar(&c.format, "format", c.format, "output format: text or json (one JSON object per line)")
	fs.StringVar(&c.logFormat, "log-format", c.logFormat, "warnings and errors on stderr: text or json (one JSON object per line)")
	fs.BoolVar(&c.showSecrets, "show-secrets", false, "quote Cookie, Authorization and Set-Cookie values instead of redacting them")
	fs.StringVar(&c.color, "color", c.color, "colour the text output: auto (on a terminal), always, never")
}

// registerCapture adds the output flags and those of judging captured
// traffic (read and live).
func (c *common) registerCapture(fs *pflag.FlagSet) {
	c.registerOutput(fs)
	fs.BoolVar(&c.all, "all", false, "report plain HTTP exchanges too")
	fs.IntVarP(&c.count, "count", "c", 0, "stop after this many attempts")
	fs.StringSliceVar(&c.upstreams, "upstream", nil, "HOST:PORT (or :PORT) of backends: only these count as upstream legs")
	fs.StringVar(&c.progress, "progress", c.progress, "progress line on stderr: auto (on a terminal), always, never")
	fs.IntVar(&c.maxFlows, "max-flows", c.maxFlows, "open TCP connections tracked at once; past it the idlest are evicted (counted in the summary)")
	fs.IntVar(&c.maxHeader, "max-header-bytes", c.maxHeader, "largest HTTP header block parsed; longer ones are cut and flagged")
	fs.StringArrayVar(&c.keylogs, "keylog", nil, "decrypt TLS with the secrets in FILE (NSS key log: SSLKEYLOGFILE); repeatable. Keys embedded in a pcapng (Decryption Secrets Blocks) are read anyway")
	fs.StringVar(&c.html, "html", "", "also write a self-contained HTML report to FILE (a live capture rewrites it as verdicts arrive)")
	fs.StringVar(&c.maxMemory, "max-memory", c.maxMemory, "bytes of state held at once (512M, 1G): connections, header blocks, TLS, waiting exchanges; past it the idlest are evicted, quiet connections first (counted in the summary)")
	fs.IntVar(&c.maxPending, "max-pending", c.maxPending, "HTTP exchanges kept waiting for a pairing partner; past it the oldest are decided unpaired")
}

// keyLog reads the --keylog files. With grow the result is never nil:
// the source adds secrets to it as it meets them (the capture readers
// those embedded in a pcapng, probe its own connections').
func (c *common) keyLog(grow bool) (*tlsrec.KeyLog, error) {
	var k *tlsrec.KeyLog
	if grow {
		k = tlsrec.NewKeyLog()
	}
	for _, name := range c.keylogs {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--keylog: %v", err)
		}
		x, err := tlsrec.ParseKeyLog(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--keylog %s: %v", name, err)
		}
		if x.Len() == 0 {
			return nil, fmt.Errorf("--keylog %s: no TLS secrets in it (NSS key log lines such as CLIENT_RANDOM …)", name)
		}
		if k == nil {
			k = tlsrec.NewKeyLog()
		}
		k.Add(x)
	}
	return k, nil
}

// reassemblyOptions applies the resource flags, naming the one out of
// range.
func (c *common) reassemblyOptions() (reassembly.Options, error) {
	o := reassembly.DefaultOptions
	switch {
	case c.maxFlows < 100:
		return o, fmt.Errorf("--max-flows: %d is below 100", c.maxFlows)
	case c.maxHeader < 1024 || c.maxHeader > 1<<20:
		return o, fmt.Errorf("--max-header-bytes: %d is not between 1024 and 1048576", c.maxHeader)
	case c.maxPending < 100:
		return o, fmt.Errorf("--max-pending: %d is below 100", c.maxPending)
	}
	o.MaxFlows, o.MaxHeaderBytes = c.maxFlows, c.maxHeader
	return o, nil
}

func (c *common) analyzeOptions() (analyze.Options, error) {
	opt := analyze.DefaultOptions
	opt.All = c.all
	opt.MaxPending = c.maxPending
	opt.Explain = c.verbose >= 2 // -vv: also the findings that change nothing here (host_rewritten)
	// Offline, wait long before deciding: dumpcap writes a pcapng of
	// several interfaces in per-interface blocks, not in time order, so the
	// other leg of an attempt may come later in the file.
	opt.Grace = 10 * time.Second
	opt.WaitSession = true
	if c.count < 0 {
		return opt, fmt.Errorf("--count: %d is negative", c.count)
	}
	c.ports = nil
	for _, p := range c.clientPorts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil {
			return opt, fmt.Errorf("--client-ports: %q is not a port", p)
		}
		c.ports = append(c.ports, uint16(n))
	}
	for _, u := range c.upstreams {
		u = strings.TrimSpace(u)
		if strings.HasPrefix(u, ":") {
			n, err := strconv.ParseUint(u[1:], 10, 16)
			if err != nil {
				return opt, fmt.Errorf("--upstream: %q is not HOST:PORT or :PORT", u)
			}
			opt.Upstreams = append(opt.Upstreams, netip.AddrPortFrom(netip.Addr{}, uint16(n)))
			continue
		}
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			return opt, fmt.Errorf("--upstream: %q is not HOST:PORT (an IP address and a port) or :PORT", u)
		}
		opt.Upstreams = append(opt.Upstreams, ap)
	}
	for _, f := range []struct{ name, v string }{{"--format", c.format}, {"--log-format", c.logFormat}} {
		if f.v != "text" && f.v != "json" {
			return opt, fmt.Errorf("%s: %q is not text or json", f.name, f.v)
		}
	}
	for _, f := range []struct{ name, v string }{{"--color", c.color}, {"--progress", c.progress}} {
		switch f.v {
		case "auto", "always", "never":
		default:
			return opt, fmt.Errorf("%s: %q is not auto, always or never", f.name, f.v)
		}
	}
	return opt, nil
}

func wantTTY(mode string, w any) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	f, _ := w.(*os.File)
	return f != nil && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
