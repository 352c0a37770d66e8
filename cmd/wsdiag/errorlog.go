package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Bounds of the error log kept in memory: entries naming a client or an
// upstream, each line cut at maxLogLine.
const (
	maxLogEntries = 100000
	maxLogLine    = 2048
	maxLogRead    = 4 << 20 // bytes read per catch-up while following
	maxPerVerdict = 8
	logSlack      = time.Second // nginx logs whole seconds
)

// logEntry is one error-log line that names a client or an upstream.
type logEntry struct {
	t        time.Time // whole seconds, the log's local time
	kind     logKind
	client   netip.Addr
	server   string // nginx's server_name of the server block
	method   string // the request line's method and target
	target   string
	upstream netip.AddrPort // the upstream peer the line is about
	host     string
	conn     uint64 // nginx's connection number (*12); 0: none
	claimed  bool   // attached to a verdict already
	line     string
}

// errorLog holds the nginx error log's lines (read whole, or followed
// as it grows with live).
type errorLog struct {
	name    string
	f       *os.File
	follow  bool
	off     int64
	partial []byte
	entries []logEntry // in file order; oldest dropped past maxLogEntries
	dropped uint64
	parsed  uint64
	bad     uint64
	badEx   string
	// The span of the log's lines and of the attempts matched against
	// it, to tell a log in another time zone (nginx logs local time).
	logFirst, logLast time.Time
	vFirst, vLast     time.Time
	attached          int
}

func openErrorLog(name string, follow bool) (*errorLog, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--error-log: %v", err)
	}
	el := &errorLog{name: name, f: f, follow: follow}
	if follow {
		// Only what is logged from now on: older lines are of other attempts.
		if el.off, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, fmt.Errorf("--error-log: %v", err)
		}
		return el, nil
	}
	defer func() { el.f.Close(); el.f = nil }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		el.add(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--error-log %s: %v", name, err)
	}
	return el, nil
}

// catchUp reads what was appended since the last call (bounded), and
// starts over when the file was rotated or truncated.
func (el *errorLog) catchUp() {
	if el.f == nil {
		return
	}
	if st, err := os.Stat(el.name); err == nil {
		if fst, err2 := el.f.Stat(); err2 == nil && (!os.SameFile(st, fst) || st.Size() < el.off) {
			if nf, err := os.Open(el.name); err == nil {
				el.f.Close()
				el.f, el.off, el.partial = nf, 0, nil
			}
		}
	}
	buf := make([]byte, 64<<10)
	for read := 0; read < maxLogRead; {
		n, err := el.f.ReadAt(buf, el.off)
		if n > 0 {
			el.off += int64(n)
			read += n
			data := append(el.partial, buf[:n]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				el.add(data[:i])
				data = data[i+1:]
			}
			if len(data) > maxLogLine*4 {
				data = data[:0] // a line without end: drop it
			}
			el.partial = append(el.partial[:0], data...)
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// add parses one line: "2026/11/21 13:34:11 [error] 8852#8852: *1 …,
// client: 127.0.0.1, server: …, request: "GET /ws HTTP/1.1", upstream:
// "http://127.0.0.1:9009/ws", host: "…"". The fields are read in the
// order nginx writes them, each after the one before, so that a quoted
// value (a request line, a referrer) does not pose as a later field.
func (el *errorLog) add(b []byte) {
	line := strings.TrimRight(string(b), "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	if len(line) < 21 || line[19] != ' ' || line[20] != '[' {
		el.noteBad(line)
		return
	}
	t, err := time.ParseInLocation("2006/01/02 15:04:05", line[:19], time.Local)
	if err != nil {
		el.noteBad(line)
		return
	}
	el.parsed++
	if el.logFirst.IsZero() || t.Before(el.logFirst) {
		el.logFirst = t
	}
	if t.After(el.logLast) {
		el.logLast = t
	}
	e := logEntry{t: t}
	rest := line
	// "[error] 8852#8852: *1 " then the message
	if i := strings.Index(rest, ": *"); i >= 0 {
		j := i + 3
		for j < len(rest) && j < i+23 && rest[j] >= '0' && rest[j] <= '9' {
			e.conn = e.conn*10 + uint64(rest[j]-'0')
			j++
		}
		if j < len(rest) && rest[j] == ' ' {
			rest = rest[j+1:]
		} else {
			e.conn = 0
		}
	}
	msg, rest, ok := strings.Cut(rest, ", client: ")
	if ok {
		e.kind = kindOf(msg)
		var c string
		c, rest, _ = strings.Cut(rest, ", ")
		e.client, _ = netip.ParseAddr(c)
		if v, r, ok := logField(rest, "server: ", false); ok {
			e.server, rest = v, r
		}
		if v, r, ok := logField(rest, "request: ", true); ok {
			if f := strings.Fields(v); len(f) >= 2 {
				e.method, e.target = f[0], f[1]
			}
			rest = r
		}
		if _, r, ok := logField(rest, "subrequest: ", true); ok {
			rest = r
		}
		if v, r, ok := logField(rest, "upstream: ", true); ok {
			// "http://127.0.0.1:9009/ws": the peer's address (a unix
			// socket's "http://unix:/run/app.sock:/ws" has none)
			if _, hp, ok := strings.Cut(v, "://"); ok {
				hp, _, _ = strings.Cut(hp, "/")
				if a, err := netip.ParseAddrPort(hp); err == nil {
					e.upstream = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
				}
			}
			rest = r
		}
		e.host, _, _ = logField(rest, "host: ", true)
	}
	e.client = e.client.Unmap()
	if !e.client.IsValid() && !e.upstream.IsValid() {
		return
	}
	if len(line) > maxLogLine {
		line = line[:maxLogLine] + "…"
	}
	e.line = line
	if len(el.entries) >= maxLogEntries {
		n := maxLogEntries / 10
		el.dropped += uint64(n)
		el.entries = append(el.entries[:0], el.entries[n:]...)
	}
	el.entries = append(el.entries, e)
}

func (el *errorLog) noteBad(line string) {
	el.bad++
	if el.badEx == "" {
		if len(line) > 80 {
			line = line[:80] + "…"
		}
		el.badEx = line
	}
}

// logField returns the value of the field key at the start of s and what
// follows it: "key: value, next…" or, quoted, "key: "value", next…". A
// quoted value ends before the next field nginx writes after it, or at
// the line's last quote: nginx does not escape quotes inside it.
func logField(s, key string, quoted bool) (v, rest string, ok bool) {
	if !strings.HasPrefix(s, key) {
		return "", s, false
	}
	s = s[len(key):]
	if !quoted {
		v, rest, _ = strings.Cut(s, ", ")
		return v, rest, true
	}
	if !strings.HasPrefix(s, `"`) {
		return "", s, false
	}
	s = s[1:]
	for _, next := range []string{`", subrequest: "`, `", upstream: "`, `", host: "`, `", referrer: "`} {
		if i := strings.Index(s, next); i >= 0 {
			return s[:i], s[i+3:], true
		}
	}
	if strings.HasSuffix(s, `"`) {
		return s[:len(s)-1], "", true
	}
	return "", s, false
}

// close ends following and returns warnings about the log.
func (el *errorLog) close() []string {
	if el.f != nil {
		el.f.Close()
		el.f = nil
	}
	var w []string
	if el.bad > 0 && el.parsed == 0 {
		w = append(w, fmt.Sprintf("--error-log %s: not an nginx error log (no line starts \"YYYY/MM/DD HH:MM:SS [level]\"; e.g. %q): no lines attached", el.name, el.badEx))
	} else if el.bad > 0 {
		w = append(w, fmt.Sprintf("--error-log %s: %d lines not in nginx's format skipped, e.g. %q", el.name, el.bad, el.badEx))
	}
	if h := el.zoneHint(); h != "" {
		w = append(w, "--error-log "+el.name+": "+h)
	}
	if el.dropped > 0 {
		w = append(w, fmt.Sprintf("--error-log %s: %d older lines forgotten (more than %d kept)", el.name, el.dropped, maxLogEntries))
	}
	return w
}

// zoneHint: nothing was attached, and the log's lines and the attempts
// do not overlap in time but would a whole number of hours apart: nginx
// logs local time, and the log comes from a host in another zone.
func (el *errorLog) zoneHint() string {
	if el.attached > 0 || el.parsed == 0 || el.vFirst.IsZero() {
		return ""
	}
	if !el.logLast.Before(el.vFirst.Add(-logSlack)) && !el.logFirst.After(el.vLast.Add(logSlack)) {
		return "" // they overlap: the lines are just about other attempts
	}
	mid := func(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }
	off := mid(el.logFirst, el.logLast).Sub(mid(el.vFirst, el.vLast)).Round(time.Hour)
	if off == 0 || off > 14*time.Hour || off < -14*time.Hour {
		return "no line of the log's time span matches the capture's"
	}
	// Read in our zone, the log's times are off from the truth by the
	// proxy's UTC offset minus ours.
	_, ours := el.vFirst.In(time.Local).Zone()
	h := int((time.Duration(ours)*time.Second + off) / time.Hour)
	tz := "UTC"
	switch {
	case h > 0:
		tz = fmt.Sprintf("Etc/GMT-%d", h) // POSIX signs: GMT-3 is UTC+3
	case h < 0:
		tz = fmt.Sprintf("Etc/GMT+%d", -h)
	}
	return fmt.Sprintf("its times are %s off the capture's: nginx logs local time, and the proxy host's zone seems to be UTC%+d; run wsdiag with TZ=%s", off, h, tz)
}
