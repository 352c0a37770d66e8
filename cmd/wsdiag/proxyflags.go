package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/analyze/nginxconf"
)

// proxyFlags tie verdicts to the proxy's own files: its configuration
// (which block served each attempt, a patch for the failing ones) and
// its error log. read, live and probe share them.
type proxyFlags struct {
	nginxConfig  []string
	proxyConfigs []string
	patch        string
	errorLog     string
}

func (p *proxyFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&p.nginxConfig, "nginx-config", nil, "the nginx configuration: FILE: a saved nginx -T output, or the main config file (includes read from disk); names the server and location of every attempt")
	fs.StringArrayVar(&p.proxyConfigs, "proxy-config", nil, "auto (capturing on the proxy host: run nginx -T and read haproxy's, Apache's and Caddy's files before dropping root), or KIND:FILE with KIND nginx, haproxy, apache or caddy; repeatable")
	fs.StringVar(&p.patch, "patch", "", "write a unified diff to FILE that fixes every nginx location that failed to pass the upgrade (never edits the config itself)")
	fs.StringVar(&p.errorLog, "error-log", "", "the proxy's error log (nginx format): lines of the same moment naming an attempt's client or upstream are attached to its verdict (followed as it grows when capturing)")
}

// proxyHook is what the flags set up.
type proxyHook struct {
	locs    locators
	nginx   []*nginxLocator
	elog    *errorLog
	patch   string
	failing map[*nginxconf.Config]map[*nginxconf.Directive]nginxconf.Match
	// warnings are said at the end (with the summary's).
	warnings []string
}

// locators asks each configuration in turn: the first that has a
// listener at the proxy's address answers.
type locators []analyze.ConfigLocator

func (ls locators) Locate(proxy netip.AddrPort, host, path string) *analyze.ConfigBlock {
	for _, l := range ls {
		if b := l.Locate(proxy, host, path); b != nil {
			return b
		}
	}
	return nil
}

// setup reads the configurations and opens the error log; follow is set
// by live (follow the log as it grows). It sets opt.Config.
func (p *proxyFlags) setup(opt *analyze.Options, live bool) (*proxyHook, error) {
	h := &proxyHook{patch: p.patch, failing: map[*nginxconf.Config]map[*nginxconf.Directive]nginxconf.Match{}}
	specs := append([]string(nil), p.proxyConfigs...)
	for _, f := range p.nginxConfig {
		specs = append(specs, "nginx:"+f)
	}
	for _, s := range specs {
		if s == "auto" {
			if !live {
				return nil, fmt.Errorf("--proxy-config auto is for live and probe on the proxy host; reading a capture, give --nginx-config FILE (a saved nginx -T) or --proxy-config KIND:FILE")
			}
			ls, warns := autoConfigs()
			h.warnings = append(h.warnings, warns...)
			for _, l := range ls {
				h.add(l)
			}
			continue
		}
		kind, file, ok := strings.Cut(s, ":")
		if !ok || file == "" {
			return nil, fmt.Errorf("--proxy-config: %q is not auto or KIND:FILE (nginx:/etc/nginx/nginx.conf, haproxy:…, apache:…, caddy:…)", s)
		}
		l, err := loadConfig(kind, file)
		if err != nil {
			return nil, err
		}
		h.add(l)
	}
	if p.patch != "" && len(h.nginx) == 0 {
		return nil, fmt.Errorf("--patch needs an nginx configuration (--nginx-config FILE or --proxy-config auto)")
	}
	if p.errorLog != "" {
		el, err := openErrorLog(p.errorLog, live)
		if err != nil {
			return nil, err
		}
		h.elog = el
	}
	if len(h.locs) > 0 {
		opt.Config = h.locs
	}
	return h, nil
}

func (h *proxyHook) add(l analyze.ConfigLocator) {
	h.locs = append(h.locs, l)
	if n, ok := l.(*nginxLocator); ok {
		h.nginx = append(h.nginx, n)
	}
}

// loadConfig reads one proxy's configuration.
func loadConfig(kind, file string) (analyze.ConfigLocator, error) {
	switch kind {
	case "nginx":
		return loadNginx(file)
	case "haproxy", "apache", "caddy":
		return loadLight(kind, file)
	}
	return nil, fmt.Errorf("--proxy-config: unknown proxy %q (nginx, haproxy, apache or caddy)", kind)
}

// loadNginx reads a saved `nginx -T` output, or else a config file with
// its includes.
func loadNginx(file string) (*nginxLocator, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--nginx-config: %v", err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	var cfg *nginxconf.Config
	if strings.Contains(string(head[:n]), "# configuration file ") {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("--nginx-config: %v", err)
		}
		cfg, err = nginxconf.ParseDump(f, file)
	} else {
		cfg, err = nginxconf.Load(file)
	}
	if err != nil {
		return nil, fmt.Errorf("--nginx-config: %v", oneLine(err))
	}
	return &nginxLocator{cfg: cfg, name: file}, nil
}

// verdict attaches what the proxy's files say to v before it is shown,
// and remembers the nginx blocks a patch should fix.
func (h *proxyHook) verdict(v *analyze.Verdict) {
	if h == nil {
		return
	}
	if h.elog != nil && v.Attempt() {
		v.ErrorLogLines = h.elog.match(v)
	}
	if v.Config == nil || !needsUpgradeFix(v) {
		return
	}
	m, ok := v.Config.Ref.(nginxconf.Match)
	if !ok || m.Leaf() == nil {
		return
	}
	for _, n := range h.nginx {
		if n.owns(&m) {
			if h.failing[n.cfg] == nil {
				h.failing[n.cfg] = map[*nginxconf.Directive]nginxconf.Match{}
			}
			h.failing[n.cfg][m.Leaf()] = m
		}
	}
}

// owns reports whether m was found in n's configuration.
func (n *nginxLocator) owns(m *nginxconf.Match) bool {
	for _, d := range n.cfg.Main {
		if d == m.HTTP {
			return true
		}
	}
	return false
}

// needsUpgradeFix: the verdict shows the proxy not forwarding the upgrade.
func needsUpgradeFix(v *analyze.Verdict) bool {
	for _, f := range v.Findings {
		switch f {
		case analyze.UpgradeHeaderDropped, analyze.ConnectionNotUpgrade, analyze.UpstreamHTTP10, analyze.ConfigHeadersNotInherited:
			return true
		}
	}
	return false
}

// finishInto writes the patch (see finish) and hands its warnings to s.
func (h *proxyHook) finishInto(s *session, w io.Writer) {
	for _, x := range h.finish(w) {
		s.warn("%s", x)
	}
}

// finish writes the patch and says how to apply it; it returns warnings.
func (h *proxyHook) finish(stdout io.Writer) []string {
	if h == nil {
		return nil
	}
	w := h.warnings
	if h.elog != nil {
		w = append(w, h.elog.close()...)
	}
	if h.patch == "" {
		return w
	}
	var diff strings.Builder
	var prefixes []string
	for _, n := range h.nginx {
		ms := h.failing[n.cfg]
		if len(ms) == 0 {
			continue
		}
		list := make([]nginxconf.Match, 0, len(ms))
		for _, m := range ms {
			list = append(list, m)
		}
		sort.Slice(list, func(i, j int) bool {
			a, b := list[i].Leaf(), list[j].Leaf()
			return a.File < b.File || a.File == b.File && a.Line < b.Line
		})
		if d := n.cfg.Patch(list); d != "" {
			diff.WriteString(d)
			prefixes = append(prefixes, n.cfg.Prefix)
		}
	}
	if diff.Len() == 0 {
		fmt.Fprintf(stdout, "patch: nothing to fix in the nginx configuration for the attempts seen; %s not written\n", h.patch)
		return w
	}
	if err := os.WriteFile(h.patch, []byte(diff.String()), 0o644); err != nil {
		return append(w, fmt.Sprintf("--patch: %v", err))
	}
	for _, p := range prefixes {
		fmt.Fprintf(stdout, "patch: wrote %s; review it, then apply and check:\n  cd %s && patch -p0 < %s && nginx -t\n  and reload nginx (nginx -s reload, or systemctl reload nginx)\n", h.patch, p, absPath(h.patch))
	}
	return w
}

func absPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		return wd + "/" + p
	}
	return p
}

// textOut is where messages for people go: stdout, unless it carries
// JSON lines.
func textOut(format string, stdout, stderr io.Writer) io.Writer {
	if format == "json" {
		return stderr
	}
	return stdout
}
