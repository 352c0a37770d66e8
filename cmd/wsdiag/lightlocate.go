package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/analyze/nginxconf"
	"github.com/wsdiag/wsdiag/analyze/proxyconf"
)

// lightLocator answers from HAProxy's, Apache's or Caddy's config: the
// frontend, virtual host (and ProxyPass) or site, with file and line.
type lightLocator struct {
	cfg *proxyconf.Config
}

func loadLight(kind, file string) (analyze.ConfigLocator, error) {
	c, err := proxyconf.Load(kind, file)
	if err != nil {
		return nil, fmt.Errorf("--proxy-config %s:%s: %v", kind, file, oneLine(err))
	}
	return &lightLocator{cfg: c}, nil
}

func (l *lightLocator) Locate(proxy netip.AddrPort, host, path string) *analyze.ConfigBlock {
	s := l.cfg.Find(proxy, host)
	if s == nil {
		return nil
	}
	b := &analyze.ConfigBlock{File: s.File, Line: s.Line, Block: s.Block, ReadTimeout: s.Timeout, ReadTimeoutAt: s.TimeoutAt}
	if rt := s.Route(pathOnly(path)); rt != nil {
		b.Server, b.Block = s.Block, "ProxyPass "+rt.Prefix+" "+rt.Target
		b.File, b.Line = rt.File, rt.Line
		if !rt.Upgrade {
			b.Problems = append(b.Problems, "no upgrade=websocket on this ProxyPass: mod_proxy_http drops the upgrade (Apache ≥ 2.4.47; older: mod_proxy_wstunnel and a ws:// target)")
		}
	}
	return b
}

func pathOnly(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		return target[:i]
	}
	return target
}

// autoTimeout bounds each command run to find a proxy's configuration.
const autoTimeout = 10 * time.Second

// autoConfigs finds the proxies running on this host and reads their
// configurations as they were started: nginx through `nginx -T` with the
// master's own -p/-c/-g, haproxy's -f files, Apache's -f (or Debian's
// apache2.conf), Caddy's --config. It runs as the invoking user, before
// live drops root.
func autoConfigs() ([]analyze.ConfigLocator, []string) {
	var locs []analyze.ConfigLocator
	var warns []string
	seen := map[string]bool{}
	for _, p := range proxyProcesses() {
		key := p.kind + " " + strings.Join(p.args, " ")
		if seen[key] {
			continue
		}
		seen[key] = true
		var l analyze.ConfigLocator
		var err error
		switch p.kind {
		case "nginx":
			l, err = nginxDump(p.exe, p.args)
		case "haproxy":
			for i, a := range p.args {
				if a == "-f" && i+1 < len(p.args) {
					l, err = loadLight("haproxy", abs(p.cwd, p.args[i+1]))
					if l != nil {
						locs = append(locs, l)
					}
				}
			}
			l = nil
		case "apache":
			file := "/etc/apache2/apache2.conf"
			for i, a := range p.args {
				if a == "-f" && i+1 < len(p.args) {
					file = abs(p.cwd, p.args[i+1])
				}
			}
			l, err = loadLight("apache", file)
		case "caddy":
			file := "/etc/caddy/Caddyfile"
			for i, a := range p.args {
				if (a == "--config" || a == "-config") && i+1 < len(p.args) {
					file = abs(p.cwd, p.args[i+1])
				}
			}
			if strings.HasSuffix(file, ".json") {
				err = fmt.Errorf("%s: a JSON config has no site lines to name; give the Caddyfile with --proxy-config caddy:FILE", file)
			} else {
				l, err = loadLight("caddy", file)
			}
		}
		if err != nil {
			warns = append(warns, fmt.Sprintf("--proxy-config auto: %s (PID %d): %v", p.kind, p.pid, oneLine(err)))
		}
		if l != nil {
			locs = append(locs, l)
		}
	}
	if len(locs) == 0 && len(warns) == 0 {
		warns = append(warns, "--proxy-config auto: no nginx, haproxy, apache2 or caddy process found")
	}
	return locs, warns
}

func abs(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

type proxyProc struct {
	pid  int
	kind string
	exe  string
	args []string
	cwd  string
}

// proxyProcesses lists the masters of the proxies running here, oldest
// PID first.
func proxyProcesses() []proxyProc {
	ents, _ := os.ReadDir("/proc")
	var out []proxyProc
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		p := proxyProc{pid: pid, exe: exe, cwd: cwd}
		base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
		switch {
		case base == "nginx" && strings.HasPrefix(args[0], "nginx: master process"):
			// "nginx: master process /usr/sbin/nginx -p … -c …" is one string.
			p.kind, p.args = "nginx", strings.Fields(strings.TrimPrefix(args[0], "nginx: master process"))
			if len(p.args) > 0 {
				p.args = p.args[1:]
			}
		case base == "haproxy":
			p.kind, p.args = "haproxy", args[1:]
		case base == "apache2" || base == "httpd":
			if isProxyParent(ppid(e.Name()), base) {
				continue // a worker of a master already listed
			}
			p.kind, p.args = "apache", args[1:]
		case base == "caddy":
			p.kind, p.args = "caddy", args[1:]
		default:
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

func ppid(pid string) string {
	b, _ := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		if f := strings.Fields(s[i+1:]); len(f) > 1 {
			return f[1]
		}
	}
	return ""
}

func isProxyParent(pid, base string) bool {
	exe, _ := os.Readlink(filepath.Join("/proc", pid, "exe"))
	return filepath.Base(exe) == base
}

// nginxDump runs `nginx -T` with the master's -p, -c and -g and reads
// its output.
func nginxDump(exe string, master []string) (analyze.ConfigLocator, error) {
	var args []string
	for i := 0; i < len(master); i++ {
		switch master[i] {
		case "-p", "-c", "-g", "-e":
			if i+1 < len(master) {
				args = append(args, master[i], master[i+1])
				i++
			}
		}
	}
	// "-g daemon off;" arrives split in words: rejoin what followed -g.
	args = rejoinG(args, master)
	ctx, cancel := context.WithTimeout(context.Background(), autoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, append(args, "-T", "-q")...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -T: %v: %s", exe, err, strings.TrimSpace(errb.String()))
	}
	cfg, err := nginxconf.ParseDump(&out, exe+" -T")
	if err != nil {
		return nil, err
	}
	return &nginxLocator{cfg: cfg, name: exe + " -T"}, nil
}

// rejoinG: the master's title splits "-g 'daemon off;'" into words; the
// -g value runs to the next flag.
func rejoinG(args, master []string) []string {
	for i := 0; i < len(master); i++ {
		if master[i] != "-g" {
			continue
		}
		j := i + 1
		for j < len(master) && !strings.HasPrefix(master[j], "-") {
			j++
		}
		for k := 0; k+1 < len(args); k += 2 {
			if args[k] == "-g" {
				args[k+1] = strings.Join(master[i+1:j], " ")
			}
		}
	}
	return args
}
