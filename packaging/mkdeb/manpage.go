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
// the page says exactly what the installed binary does. The help texts
// are set as running text and tagged paragraphs (a flag, then what it
// does), which man fills to the reader's terminal: no line is wider than
// the terminal, whatever the width of a flag's help.
func manPage(bin, version string, when time.Time) ([]byte, error) {
	help := func(args ...string) (string, error) {
		// --help exits 0 and prints on stderr; codes on stdout
		b, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, b)
		}
		return string(b), nil
	}
	var sections [5]string
	for i, args := range [][]string{{"--help"}, {"read", "--help"}, {"live", "--help"}, {"probe", "--help"}, {"codes"}} {
		s, err := help(args...)
		if err != nil {
			return nil, err
		}
		sections[i] = s
	}
	var b strings.Builder
	fmt.Fprintf(&b, ".TH WSDIAG 1 %q %q \"User Commands\"\n", when.Format("2006-01-02"), "wsdiag "+version)
	b.WriteString(".nh\n.ad l\n") // no hyphenation, ragged right: flags and paths stay whole
	b.WriteString(".SH NAME\nwsdiag \\- why WebSocket upgrades fail behind a reverse proxy\n")
	b.WriteString(".SH SYNOPSIS\n")
	helpText(&b, sections[0])
	b.WriteString(".SH DESCRIPTION\n" + text(
		"wsdiag reads the traffic on both sides of a reverse proxy (a pcap or pcapng file, or live on the proxy host), "+
			"reassembles TCP into HTTP, pairs each client's Upgrade request with the request the proxy sent to the backend "+
			"and the answers on both legs, and prints one verdict per attempt: the code, the hop it blames, the literal "+
			"header lines of each leg as evidence, and the fix.") + "\n")
	b.WriteString(".SH READ\n")
	helpText(&b, sections[1])
	b.WriteString(".SH LIVE\n")
	helpText(&b, sections[2])
	b.WriteString(".SH PROBE\n")
	helpText(&b, sections[3])
	b.WriteString(".SH VERDICT CODES\n" + text("Each code, the hop it blames and its severity, then what it means.") + "\n")
	codes(&b, sections[4])
	b.WriteString(".SH EXIT STATUS\n" + text("0: every attempt ok; 1: at least one attempt not ok; 2: wsdiag could not run (a one-line error on stderr).") + "\n")
	b.WriteString(".SH FILES\n")
	for _, f := range [][2]string{
		{"/lib/systemd/system/wsdiag.service", "runs wsdiag live as a service: verdicts as JSON lines in the journal (journalctl -u wsdiag -o cat), Prometheus metrics on /metrics and /healthz; not enabled at install: systemctl enable --now wsdiag"},
		{"/etc/default/wsdiag", "the service's options: WSDIAG_METRICS (the metrics address) and WSDIAG_OPTS (everything else live takes)"},
		{"/usr/share/doc/wsdiag/examples/alerts.yml", "example Prometheus alerting rules: the share of failing upgrades, tunnels cut at one age, kernel drops"},
	} {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", text(f[0]), text(f[1]))
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

// text escapes running text for roff: backslashes, hyphens (a literal
// minus in flags), a control character at the start, and every character
// outside ASCII as the glyph it names (no input encoding to agree on).
func text(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case (r == '.' || r == '\'') && i == 0:
			b.WriteString(`\&` + string(r))
		case r >= 0x80:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// helpText sets a help text (wsdiag's usage, a subcommand's --help) as
// roff. Paragraphs are separated by blank lines. A paragraph whose lines
// are indented is a list, two columns apart ("  -v, --verbose count   show
// …"; pflag's flags, the commands of the usage): each entry becomes a
// tagged paragraph. "Usage: …" lines are the synopsis, set as they are;
// a line "Flags:" heads the list after it; any other lines are text.
func helpText(b *strings.Builder, s string) {
	for _, para := range strings.Split(strings.TrimRight(s, "\n"), "\n\n") {
		lines := strings.Split(para, "\n")
		if h := lines[0]; !strings.HasPrefix(h, " ") && strings.HasSuffix(h, ":") && !strings.Contains(h, " ") {
			b.WriteString(".SS " + text(strings.TrimSuffix(h, ":")) + "\n")
			lines = lines[1:]
		}
		if len(lines) == 0 {
			continue
		}
		switch {
		case strings.HasPrefix(lines[0], "Usage: "):
			b.WriteString(".PP\n.nf\n")
			for i, l := range lines {
				if i == 0 {
					l = strings.TrimPrefix(l, "Usage: ")
				}
				b.WriteString(text(strings.TrimSpace(l)) + "\n")
			}
			b.WriteString(".fi\n")
		case strings.HasPrefix(lines[0], " "):
			list(b, lines)
		default:
			b.WriteString(".PP\n")
			for _, l := range lines {
				b.WriteString(text(strings.TrimSpace(l)) + "\n")
			}
		}
	}
}

// list sets indented two-column lines as tagged paragraphs. The second
// column starts where most lines have two spaces and then text; a line
// with text there whose first column fills it up to one space (pflag does
// that) splits at the same column; a line indented past it continues the
// entry above.
func list(b *strings.Builder, lines []string) {
	votes := map[int]int{}
	for _, l := range lines {
		t := strings.TrimLeft(l, " ")
		if i := strings.Index(t, "  "); i >= 0 {
			j := i + 2
			for j < len(t) && t[j] == ' ' {
				j++
			}
			if j < len(t) {
				votes[len(l)-len(t)+j]++
			}
		}
	}
	col := 0
	for c, n := range votes {
		if n > votes[col] || n == votes[col] && c < col {
			col = c
		}
	}
	for _, l := range lines {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		switch {
		case col > 0 && indent >= col:
			b.WriteString(text(strings.TrimSpace(l)) + "\n") // continues the entry above
		case col > 0 && len(l) > col && l[col-1] == ' ':
			fmt.Fprintf(b, ".TP\n.B %s\n%s\n", text(strings.TrimSpace(l[:col])), text(strings.TrimSpace(l[col:])))
		default:
			fmt.Fprintf(b, ".TP\n.B %s\n", text(strings.TrimSpace(l)))
		}
	}
}

// codes sets `wsdiag codes` (code, hop, severity, summary per line) as
// tagged paragraphs.
func codes(b *strings.Builder, s string) {
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		fmt.Fprintf(b, ".TP\n.B %s\n%s\n", text(f[0]), text("("+f[1]+", "+f[2]+") "+strings.Join(f[3:], " ")))
	}
}
