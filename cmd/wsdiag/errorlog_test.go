package main

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// TestErrorLogSamePath: three attempts from one client to the same Host
// and path about a second apart through real nginx (testdata/gen/
// errorlog.sh): 101, then 502 with the backend stopped, then 101 again.
// nginx's one "connect() failed … request: "GET /ws HTTP/1.1"" line,
// written within a second of both upgrades, goes under the 502 and under
// nothing else; its other lines (info, notice: no request) under none.
func TestErrorLogSamePath(t *testing.T) {
	vs, code, stderr := readConf(t, "--error-log", filepath.Join(capturesDir, "errorlog-same-path.nginx-error.log"),
		filepath.Join(capturesDir, "errorlog-same-path.pcap"))
	if code != exitNotOK || stderr != "" || len(vs) != 3 {
		t.Fatalf("exit %d, %d verdicts, stderr %q", code, len(vs), stderr)
	}
	for i, want := range []string{"ok", "upstream_connect_failed", "ok"} {
		v := vs[i]
		if v.Code != want {
			t.Errorf("attempt %d: %s, want %s", i+1, v.Code, want)
		}
		switch {
		case want == "ok" && len(v.ErrorLog) != 0:
			t.Errorf("attempt %d (101): error log %q, want none", i+1, v.ErrorLog)
		case want != "ok" && (len(v.ErrorLog) != 1 || !strings.Contains(v.ErrorLog[0], "*3 connect() failed (111: Connection refused) while connecting to upstream")):
			t.Errorf("attempt %d (502): error log %q, want nginx's connect() failed line", i+1, v.ErrorLog)
		}
	}
}

// TestErrorLogHostile: the error-log line of hostile-bytes quotes a
// request line with C1 and bidi bytes and a referrer with ESC sequences
// and quotes of its own: it is read field by field and goes under the
// attempt it names (the 502 of /down/…), not under the others.
func TestErrorLogHostile(t *testing.T) {
	vs, _, stderr := readConf(t, "--error-log", filepath.Join(capturesDir, "hostile-bytes.nginx-error.log"),
		filepath.Join(capturesDir, "hostile-bytes.pcap"))
	if len(vs) != 4 || stderr != "" {
		t.Fatalf("%d verdicts, stderr %q", len(vs), stderr)
	}
	for _, v := range vs {
		down := strings.HasPrefix(v.Path, "/down/")
		if got := len(v.ErrorLog); down && got != 1 || !down && got != 0 {
			t.Errorf("%s %q: %d error-log lines", v.Code, v.Path, got)
		}
	}
}

// TestErrorLogFits: what a line says decides where it may go, whatever
// its time, client and request line say.
func TestErrorLogFits(t *testing.T) {
	at := time.Date(2026, 11, 21, 13, 34, 11, 500e6, time.Local)
	client := netip.MustParseAddrPort("127.0.0.1:5000")
	proxy := netip.MustParseAddrPort("127.0.0.1:8080")
	backend := netip.MustParseAddrPort("127.0.0.1:9001")
	host := reassembly.Headers{{Name: "Host", Value: "app.test"}}
	legA := func(status int) analyze.Leg {
		return analyze.Leg{Client: client, Server: proxy, RequestLine: "GET /ws HTTP/1.1", RequestHeaders: host, Status: status,
			Times: analyze.LegTimes{Request: at, Response: at.Add(time.Millisecond)}}
	}
	legB := func(status int) analyze.Leg {
		return analyze.Leg{Client: netip.MustParseAddrPort("127.0.0.1:40000"), Server: backend, RequestLine: "GET /ws HTTP/1.1", Status: status,
			Times: analyze.LegTimes{Request: at, Response: at.Add(time.Millisecond)}}
	}
	upgraded := &analyze.Verdict{Time: at, End: at.Add(3 * time.Second), Legs: []analyze.Leg{legA(101), legB(101)}}
	refused := &analyze.Verdict{Time: at, End: at, Legs: []analyze.Leg{legA(502)},
		Connects: []analyze.Connect{{Server: backend, End: "RST"}}}
	timedOut := &analyze.Verdict{Time: at, End: at.Add(2 * time.Second), Legs: []analyze.Leg{legA(504), legB(0)}}
	timedOut.Legs[0].Times.Response = timedOut.End
	denied := &analyze.Verdict{Time: at, End: at, Legs: []analyze.Leg{legA(403)}}
	onlyA := &analyze.Verdict{Time: at, End: at, Legs: []analyze.Leg{legA(502)}} // leg B not on the wire

	const tail = `, client: 127.0.0.1, server: app.test, request: "GET /ws HTTP/1.1", upstream: "http://127.0.0.1:9001/ws", host: "app.test"`
	for _, c := range []struct {
		line  string
		fits  []*analyze.Verdict
		fails []*analyze.Verdict
	}{
		{"2026/11/21 13:34:11 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream" + tail,
			[]*analyze.Verdict{refused, onlyA}, []*analyze.Verdict{upgraded, timedOut, denied}},
		{"2026/11/21 13:34:13 [error] 1#1: *1 upstream timed out (110: Connection timed out) while reading response header from upstream" + tail,
			[]*analyze.Verdict{timedOut}, []*analyze.Verdict{upgraded, denied}},
		{"2026/11/21 13:34:14 [error] 1#1: *1 recv() failed (104: Connection reset by peer) while proxying upgraded connection" + tail,
			[]*analyze.Verdict{upgraded}, []*analyze.Verdict{refused, timedOut, denied, onlyA}},
		{`2026/11/21 13:34:11 [error] 1#1: *1 access forbidden by rule, client: 127.0.0.1, server: app.test, request: "GET /ws HTTP/1.1", host: "app.test"`,
			[]*analyze.Verdict{denied}, []*analyze.Verdict{upgraded, refused, timedOut}},
		// another upstream, another path, another Host, another client, another minute
		{strings.Replace("2026/11/21 13:34:11 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream"+tail, "9001", "9002", 1),
			nil, []*analyze.Verdict{refused}},
		{strings.Replace("2026/11/21 13:34:11 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream"+tail, "GET /ws ", "GET /other ", 1),
			nil, []*analyze.Verdict{refused, onlyA}},
		{strings.Replace("2026/11/21 13:34:11 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream"+tail, `host: "app.test"`, `host: "other.test"`, 1),
			nil, []*analyze.Verdict{refused, onlyA}},
		{strings.Replace("2026/11/21 13:34:11 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream"+tail, "client: 127.0.0.1", "client: 10.0.0.9", 1),
			nil, []*analyze.Verdict{refused, onlyA}},
		{"2026/11/21 13:35:11 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream" + tail,
			nil, []*analyze.Verdict{refused, onlyA}},
		// a referrer that poses as fields: read in nginx's order, it does not
		{"2026/11/21 13:34:11 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream" +
			strings.Replace(tail, "9001", "9002", 1) + `, referrer: "x", upstream: "http://127.0.0.1:9001/ws", host: "app.test"`,
			nil, []*analyze.Verdict{refused}},
	} {
		el := &errorLog{name: "test"}
		el.add([]byte(c.line))
		if len(el.entries) != 1 {
			t.Fatalf("%q: not parsed", c.line)
		}
		e := &el.entries[0]
		for _, v := range c.fits {
			if !e.fits(v) {
				t.Errorf("%q does not fit %d %v", c.line, v.Legs[0].Status, v.Connects)
			}
		}
		for _, v := range c.fails {
			if e.fits(v) {
				t.Errorf("%q fits %d %v", c.line, v.Legs[0].Status, v.Connects)
			}
		}
	}

	// Each line under one attempt at most, the oldest connection first.
	el := &errorLog{name: "test"}
	for _, n := range []string{"7", "5"} {
		el.add([]byte("2026/11/21 13:34:11 [error] 1#1: *" + n + " connect() failed (111: Connection refused) while connecting to upstream" + tail))
	}
	a, b, c := el.match(refused), el.match(refused), el.match(refused)
	if len(a) != 1 || !strings.Contains(a[0], "*5 ") || len(b) != 1 || !strings.Contains(b[0], "*7 ") || len(c) != 0 {
		t.Errorf("three refused attempts got %q, %q, %q", a, b, c)
	}
}
