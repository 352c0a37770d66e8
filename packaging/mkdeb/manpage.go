package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// manPage writes wsdiag(1), gzipped, from the binary's own help texts, so
// the page says exactly what the installed binary does.
func manPage(bin, version string, when time.Time) ([]byte, error) {
	help := func(args ...string) (string, error) {
		// --help exits 0 and prints on stderr; codes on stdout
		b, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, b)
		}
		return string(b), nil
	}
	var sections [4]string
	for i, args := range [][]string{{"--help"}, {"read", "--help"}, {"live", "--help"}, {"codes"}} {
		s, err := help(args...)
		if err != nil {
			return nil, err
		}
		sections[i] = s
	}
	var b strings.Builder
	fmt.Fprintf(&b, ".TH WSDIAG 1 %q %q \"User Commands\"\n", when.Format("2006-01-02"), "wsdiag "+version)
	b.WriteString(".SH NAME\nwsdiag \\- why WebSocket upgrades fail behind a reverse proxy\n")
	b.WriteString(".SH SYNOPSIS\n")
	pre(&b, sections[0])
	b.WriteString(".SH DESCRIPTION\n" + text(
		"wsdiag reads the traffic on both sides of a reverse proxy (a pcap or pcapng file, or live on the proxy host), "+
			"reassembles TCP into HTTP, pairs each client's Upgrade request with the request the proxy sent to the backend "+
			"and the answers on both legs, and prints one verdict per attempt: the code, the hop it blames, the literal "+
			"header lines of each leg as evidence, and the fix.") + "\n")
	b.WriteString(".SH READ\n")
	pre(&b, sections[1])
	b.WriteString(".SH LIVE\n")
	pre(&b, sections[2])
	b.WriteString(".SH VERDICT CODES\n")
	pre(&b, sections[3])
	b.WriteString(".SH EXIT STATUS\n" + text("0: every attempt ok; 1: at least one attempt not ok; 2: wsdiag could not run (a one-line error on stderr).") + "\n")
	b.WriteString(".SH FILES\n")
	for _, f := range [][2]string{
		{"/lib/systemd/system/wsdiag.service", "runs wsdiag live as a service: verdicts as JSON lines in the journal (journalctl -u wsdiag -o cat), Prometheus metrics on /metrics and /healthz; not enabled at install: systemctl enable --now wsdiag"},
		{"/etc/default/wsdiag", "the service's options: WSDIAG_METRICS (the metrics address) and WSDIAG_OPTS (everything else live takes)"},
		{"/usr/share/doc/wsdiag/examples/alerts.yml", "example Prometheus alerting rules: the share of failing upgrades, tunnels cut at one age, kernel drops"},
	} {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", f[0], text(f[1]))
	}
	b.WriteString(".SH SEE ALSO\n.BR tcpdump (8),\n.BR nginx (8),\n.BR prometheus (1)\n")

	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.ModTime = when // the same page for the same commit
	zw.Write([]byte(b.String()))
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return z.Bytes(), nil
}

// text escapes running text for roff.
func text(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// pre writes s as a block set as is.
func pre(b *strings.Builder, s string) {
	b.WriteString(".nf\n")
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(text(line) + "\n")
	}
	b.WriteString(".fi\n")
}
