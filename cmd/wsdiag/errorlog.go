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
	maxLogEntry   = 16 << 10 // an entry of several lines, as read
	maxLogRead    = 4 << 20  // bytes read per catch-up while following
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
	// pending is the entry being read: nginx writes an entry at once, but
	// a message that quotes a client's bytes ("broken header: …") spans
	// lines, its client and server on the last one.
	pending []byte
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
		el.line(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--error-log %s: %v", name, err)
	}
	el.flush()
	return el, nil
}

// line takes one line of the log: the start of an entry ("YYYY/MM/DD
// HH:MM:SS [level] …"), or a line of the entry before it.
func (el *errorLog) line(b []byte) {
	b = bytes.TrimSuffix(b, []byte("\r")) // as bufio.ScanLines does
	switch {
	case entryStart(b):
		el.flush()
		el.pending = append(el.pending[:0], b...)
	case el.pending != nil:
		if len(el.pending)+1+len(b) <= maxLogEntry {
			el.pending = append(append(el.pending, '\n'), b...)
		}
	default:
		if len(bytes.TrimSpace(b)) > 0 {
			el.noteBad(strings.TrimRight(string(b), "\r"))
		}
	}
}

// flush parses the entry read so far.
func (el *errorLog) flush() {
	if el.pending != nil {
		el.add(el.pending)
		el.pending = nil
	}
}

// entryStart: b begins like a line nginx starts an entry with.
func entryStart(b []byte) bool {
	if len(b) < 21 || b[19] != ' ' || b[20] != '[' {
		return false
	}
	_, err := time.Parse("2006/01/02 15:04:05", string(b[:19]))
	return err == nil
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
				el.line(data[:i])
				data = data[i+1:]
			}
			if len(data) > maxLogLine*4 {
				data = data[:0] // a line without end: drop it
			}
			el.partial = append(el.partial[:0], data...)
		}
		if err != nil || n == 0 {
			break
		}
	}
	if len(el.partial) == 0 && el.whole() {
		el.flush()
	}
}

// whole: the pending entry is complete, as far as can be told before the
// next one starts: one line, or lines whose last names the client (where
// nginx ends what it quotes).
func (el *errorLog) whole() bool {
	i := bytes.LastIndexByte(el.pending, '\n')
	return i < 0 || bytes.Contains(el.pending[i:], []byte(", client: "))
}

// add parses one entry: "2026/11/21 13:34:11 [error] 8852#8852: *1 …,
// client: 127.0.0.1, server: …, request: "GET /ws HTTP/1.1", upstream:
// "http://127.0.0.1:9009/ws", host: "…"". The fields are read in the
// order nginx writes them, each after the one before, so that a quoted
// value (a request line, a referrer) does not pose as a later field; in
// an entry of several lines they are on the last.
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
	rest := e.readConn(line)
	last := strings.LastIndexByte(rest, '\n') + 1
	msg, after, ok := strings.Cut(rest[last:], ", client: ")
	msg = rest[:last] + msg
	if ok {
		e.kind = kindOf(msg)
		e.readFields(after)
		if e.kind == kindProxyProtocol {
			e.method, e.target, e.host = quotedRequest(msg)
		}
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

// readConn reads the connection number of "[error] 8852#8852: *1 …" and
// returns what follows it, the message.
func (e *logEntry) readConn(line string) string {
	i := strings.Index(line, ": *")
	if i < 0 {
		return line
	}
	j := i + 3
	for j < len(line) && j < i+23 && line[j] >= '0' && line[j] <= '9' {
		e.conn = e.conn*10 + uint64(line[j]-'0')
		j++
	}
	if j < len(line) && line[j] == ' ' {
		return line[j+1:]
	}
	e.conn = 0
	return line
}

// readFields reads what follows ", client: ": the client's address, then
// server, request, subrequest, upstream and host, each after the one
// before.
func (e *logEntry) readFields(rest string) {
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

// quotedRequest reads the request nginx quotes in "broken header:
// \"GET /ws HTTP/1.1\r\nhost: …\"": its method, target and Host, as far
// as they are in it.
func quotedRequest(msg string) (method, target, host string) {
	_, q, ok := strings.Cut(msg, `broken header: "`)
	if !ok {
		return "", "", ""
	}
	lines := strings.Split(q, "\n")
	if f := strings.Fields(lines[0]); len(f) == 3 && strings.HasPrefix(f[2], "HTTP/") {
		method, target = f[0], f[1]
	}
	for _, l := range lines[1:] {
		if name, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":"); ok && strings.EqualFold(name, "host") {
			host = strings.TrimSpace(v)
			break
		}
	}
	return method, target, host
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
