package main

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/visible"
	"github.com/wsdiag/wsdiag/reassembly"
)

// renderer writes verdicts and the closing summary.
type renderer interface {
	verdict(v *analyze.Verdict)
	event(e *analyze.Event)
	summary(s *SummaryLine)
}

func newRenderer(format string, w io.Writer, verbosity int, showSecrets, color bool) renderer {
	if format == "json" {
		return &jsonRenderer{w: w, headers: verbosity >= 2, showSecrets: showSecrets}
	}
	return &textRenderer{w: visible.NewWriter(w), verbose: verbosity >= 1, headers: verbosity >= 2, showSecrets: showSecrets, color: color}
}

// headerLines renders a header block, secrets redacted unless show.
func headerLines(h reassembly.Headers, show bool) []string {
	out := make([]string, len(h))
	for i, f := range h {
		out[i] = f.Name + ": " + analyze.Redacted(f.Name, f.Value, show)
	}
	return out
}

// textRenderer prints a table: one line per attempt, details under it
// with -v. What others wrote (paths, header lines, status lines, bodies,
// close reasons, log lines; evidence and fixes quote them) is shown with
// its control and bidi characters escaped (visible.String), and all it
// writes goes through a visible.Writer: only its own newlines and colour
// sequences reach the terminal raw.
type textRenderer struct {
	w           *visible.Writer
	verbose     bool
	headers     bool // -vv: every header of every leg
	showSecrets bool
	color       bool
	header      bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
	ansiCyan   = "\x1b[36m"
)

// line writes one line of parts; a painted part is coloured when colour
// is on.
func (t *textRenderer) line(parts ...part) {
	for _, p := range parts {
		if p.color != "" && t.color {
			t.w.Raw(p.color)
			io.WriteString(t.w, p.s)
			t.w.Raw(ansiReset)
			continue
		}
		io.WriteString(t.w, p.s)
	}
	io.WriteString(t.w, "\n")
}

// part is a piece of a line, and its colour ("": none).
type part struct{ s, color string }

func plain(s string) part             { return part{s: s} }
func painted(s, color string) part    { return part{s: s, color: color} }
func quoted(ind, s string) part       { return part{s: ind + visible.String(s)} }
func (t *textRenderer) text(s string) { t.line(plain(s)) }

func sevColor(s analyze.Severity) string {
	switch s {
	case analyze.SevError:
		return ansiRed
	case analyze.SevWarn:
		return ansiYellow
	case analyze.SevOK:
		return ansiGreen
	}
	return ansiCyan
}

func status(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// event writes a finding about many attempts as one line (with -v its
// evidence and fix), between the verdicts.
func (t *textRenderer) event(ev *analyze.Event) {
	at := ev.Time.In(time.Local)
	t.tableHeader(at)
	line := fmt.Sprintf("%-12s  EVENT %s: %s (%s) closed %d tunnels within %s: %s", at.Format("15:04:05.000"),
		ev.Code, ev.Server, ev.ClosedBy, ev.Count, ev.Window.Round(time.Microsecond), visible.String(ev.Cause))
	t.line(painted(line, ansiYellow))
	if !t.verbose {
		return
	}
	for _, e := range ev.Evidence {
		t.line(quoted("      ", e))
	}
	t.line(plain("    fix: "), quoted("", ev.Fix))
	t.text("")
}

// tableHeader writes the column heads once, before the first line.
func (t *textRenderer) tableHeader(at time.Time) {
	if !t.header {
		t.header = true
		// the column follows TZ, and says so unless it is UTC
		head := "TIME"
		if z, off := at.Zone(); z != "UTC" || off != 0 {
			head += " " + z
		}
		t.text(fmt.Sprintf("%-12s  %-21s  %-20s  %-24s  %-8s  %s", head, "CLIENT", "PATH", "CODE", "HOP", "BACKEND→CLIENT"))
	}
}

// column cuts escaped text to n runes, "…" last when cut.
func column(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func (t *textRenderer) verdict(v *analyze.Verdict) {
	at := v.Time.In(time.Local)
	t.tableHeader(at)
	path := column(visible.String(v.Path), 20)
	if path == "" {
		path = "-" // a session whose handshake is not in the capture
	}
	pad := strings.Repeat(" ", max(0, 20-utf8.RuneCountInString(path)))
	t.line(plain(fmt.Sprintf("%-12s  %-21s  %s%s  ", at.Format("15:04:05.000"), addrText(v.Client), path, pad)),
		painted(fmt.Sprintf("%-24s", v.Code), sevColor(v.Severity)),
		plain(fmt.Sprintf("  %-8s  %s→%s", v.Hop, status(v.StatusBackend), status(v.StatusClient))))
	if !t.verbose {
		return
	}
	ind := "    "
	var meta []string
	meta = append(meta, "severity "+string(v.Severity))
	if len(v.Findings) > 1 {
		fs := make([]string, len(v.Findings))
		for i, f := range v.Findings {
			fs[i] = string(f)
		}
		meta = append(meta, "findings "+strings.Join(fs, ", "))
	}
	if v.Proxy.IsValid() {
		p := "proxy " + v.Proxy.String()
		if v.ProxyProduct != "" {
			p += " (" + visible.String(v.ProxyProduct) + ")"
		}
		meta = append(meta, p)
	}
	if v.Backend.IsValid() {
		meta = append(meta, "backend "+v.Backend.String())
	}
	meta = append(meta, "pairing "+string(v.PairConfidence))
	t.line(plain(ind), painted(strings.Join(meta, " · "), ansiDim))
	for _, e := range v.Evidence {
		t.line(quoted(ind+"  ", e))
	}
	if s := v.Session; s != nil {
		t.text(ind + "session: " + sessionText(s))
	}
	if t.headers {
		for _, l := range v.Legs {
			t.text(fmt.Sprintf("%sleg %s → %s", ind, l.Client, l.Server))
			t.line(quoted(ind+"  > ", l.RequestLine))
			for _, h := range headerLines(l.RequestHeaders, t.showSecrets) {
				t.line(quoted(ind+"  > ", h))
			}
			if l.StatusLine != "" {
				t.line(quoted(ind+"  < ", l.StatusLine))
				for _, h := range headerLines(l.ResponseHeaders, t.showSecrets) {
					t.line(quoted(ind+"  < ", h))
				}
			}
		}
	}
	if v.Config != nil {
		t.line(quoted(ind+"config: ", v.Config.Where()))
	}
	t.errorLog(v, ind)
	if v.Fix != "" {
		lines := strings.Split(v.Fix, "\n")
		t.line(plain(ind), painted("fix: ", ansiGreen), quoted("", lines[0]))
		for _, l := range lines[1:] {
			t.line(quoted(ind+"     ", l))
		}
	}
	t.text("")
}

func sessionText(s *analyze.Session) string {
	frames := fmt.Sprintf("%s (%d bytes) client→server, %s (%d bytes) server→client, longest silence %s",
		plural(s.FramesC2S, "frame"), s.BytesC2S, plural(s.FramesS2C, "frame"), s.BytesS2C, s.LongestSilence.Round(time.Millisecond))
	if s.Open {
		return fmt.Sprintf("open at the end of the capture after %s; %s", s.Duration.Round(time.Millisecond), frames)
	}
	how := "closed by the " + s.ClosedBy
	if s.CloseCode != 0 {
		how += fmt.Sprintf(" with close %d", s.CloseCode)
		if s.CloseReason != "" {
			how += ` "` + visible.String(s.CloseReason) + `"`
		}
	} else {
		how += " without a close frame"
	}
	return fmt.Sprintf("%s; %s, then %s", s.Duration.Round(time.Millisecond), frames, how+" ("+s.CloseKind+")")
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func byCodeLine(m map[string]uint64) string {
	type kv struct {
		c string
		n uint64
	}
	var kvs []kv
	for c, n := range m {
		kvs = append(kvs, kv{c, n})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].n != kvs[j].n {
			return kvs[i].n > kvs[j].n
		}
		return kvs[i].c < kvs[j].c
	})
	parts := make([]string, len(kvs))
	for i, x := range kvs {
		parts[i] = fmt.Sprintf("%d %s", x.n, x.c)
	}
	return strings.Join(parts, ", ")
}

func (t *textRenderer) summary(s *SummaryLine) {
	notes := s.notes()
	if s.Attempts == 0 && len(notes) == 0 {
		return
	}
	if !t.verbose {
		t.text("")
	}
	if s.Attempts > 0 {
		t.text(fmt.Sprintf("%s: %s", plural(s.Attempts, "WebSocket attempt"), byCodeLine(s.ByCode)))
	}
	for _, n := range notes {
		t.text(n)
	}
	if s.Attempts > s.ByCode[string(analyze.OK)] && !t.verbose {
		t.text("run with -v for the evidence and the fix")
	}
}

// jsonRenderer writes one JSON object per line (jsonline.go); a verdict
// line through its own encoder (jsonenc.go).
type jsonRenderer struct {
	w           io.Writer
	buf         lineBuf
	line        []byte
	scratch     lineScratch
	headers     bool
	showSecrets bool
}

func (j *jsonRenderer) verdict(v *analyze.Verdict) {
	j.line = j.scratch.fill(v, j.headers, j.showSecrets).appendJSON(j.line[:0])
	j.w.Write(j.line)
}

// event writes a finding about many attempts (mass_close) as one line of
// type "event".
func (j *jsonRenderer) event(ev *analyze.Event) { writeLine(j.w, &j.buf, eventLine(ev)) }

func (j *jsonRenderer) summary(s *SummaryLine) { writeLine(j.w, &j.buf, s) }

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// addrText shows an address, or "-" when the capture does not tell it.
func addrText(a netip.AddrPort) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
