package analyze

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Evidence is the literal lines of each leg and what they mean, as text:
// these helpers quote request and status lines and headers, and write
// times and durations the same way everywhere.

func requestLine(r *reassembly.Request) string {
	return r.Method + " " + r.Target + " " + r.Version
}

func statusLine(r *reassembly.Response) string {
	// as strings.TrimSpace(fmt.Sprintf("%s %d %s", ...)), in one allocation
	var a [128]byte
	b := append(a[:0], r.Version...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, r.Reason...)
	return strings.TrimSpace(string(b))
}

// headerEv quotes a header as evidence, or says it is absent.
func headerEv(leg, name string, h reassembly.Headers) string {
	v, ok := joinValues(h, name)
	if !ok {
		return leg + ": no " + name + " header"
	}
	return leg + ": " + canonicalName(h, name) + ": " + v
}

// headerEvCut quotes a header, says it is absent, or, in a block the
// capture cut, that it is not in the part kept.
func headerEvCut(leg, name string, r *reassembly.Request) string {
	if absentCut(r, name) {
		return leg + ": " + name + " not in the part the capture kept"
	}
	return headerEv(leg, name, r.Headers)
}

// joinValues is strings.Join(h.Values(name), ", "), allocating only when
// the header has several lines; ok is false when it has none.
func joinValues(h reassembly.Headers, name string) (v string, ok bool) {
	n := 0
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			if n == 0 {
				v = f.Value
			}
			n++
		}
	}
	if n > 1 {
		v = strings.Join(h.Values(name), ", ")
	}
	return v, n > 0
}

// canonicalName returns the header name as it was spelled on the wire.
func canonicalName(h reassembly.Headers, name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Name
		}
	}
	return name
}

func hasHeader(h reassembly.Headers, name string) bool {
	_, ok := h.Get(name)
	return ok
}

func isSecret(name string) bool {
	return strings.EqualFold(name, "Cookie") || strings.EqualFold(name, "Authorization") ||
		strings.EqualFold(name, "Set-Cookie") || strings.EqualFold(name, "Proxy-Authorization")
}

func ts(t time.Time) string { return t.UTC().Format("15:04:05.000") }

func dur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// secs writes a duration for advice: whole seconds from 10 s on.
func secs(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func sizeText(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// collapse folds repeated evidence lines in a row (a proxy retrying its
// connect) into one with a count, and drops a line quoted again later by
// another finding.
func collapse(ev []string) []string {
	out := ev[:0]
	seen := make(map[string]bool, len(ev))
	for i := 0; i < len(ev); {
		j := i + 1
		for j < len(ev) && ev[j] == ev[i] {
			j++
		}
		switch {
		case seen[ev[i]]:
		case j-i > 1:
			out = append(out, fmt.Sprintf("%s (×%d)", ev[i], j-i))
		default:
			out = append(out, ev[i])
		}
		seen[ev[i]] = true
		i = j
	}
	return out
}

// containsPrefix2 is containsPrefix(ss, a+b) without building a+b.
func containsPrefix2(ss []string, a, b string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, a) && strings.HasPrefix(s[len(a):], b) {
			return true
		}
	}
	return false
}

func containsPrefix(ss []string, p string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
