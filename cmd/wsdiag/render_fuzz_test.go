package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/visible"
	"github.com/wsdiag/wsdiag/reassembly"
)

// FuzzTextRenderer puts any bytes in every field of a verdict and an event
// that comes from the wire (path, header names and values, request and
// status lines, evidence, fix, proxy product, close reason, error-log
// lines, a config file name) and renders them at every verbosity, with and
// without colour: no control or bidi character of anyone else's ever
// leaves the text renderer (only its newlines and its own colours), and
// the JSON renderer's lines are JSON with none either.
func FuzzTextRenderer(f *testing.F) {
	f.Add("/ws/\x1b[2J", "X-Evil", "\x1b]52;c;eA==\x07", "HTTP/1.1 400 Bad \xc2\x9b31m", "body \u202egpj.exe", "reason \x9b\x7f", "fix\nline \x1b[31m", "nginx\u2066")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("\xc2", "\x9b", "\xe2\x80", "\r\n", "\x00", "\u2028", "\xed\xa0\x80", "\xf4\x90\x80\x80")
	f.Fuzz(func(t *testing.T, path, name, value, status, ev, reason, fix, product string) {
		at := time.Date(2026, 11, 21, 13, 34, 11, 0, time.UTC)
		a, b := netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("127.0.0.1:8080")
		hs := reassembly.Headers{{Name: name, Value: value}, {Name: "Host", Value: value}}
		v := &analyze.Verdict{Time: at, End: at, Code: analyze.BackendRejected, Severity: analyze.SevError, Hop: analyze.HopBackend,
			Findings: []analyze.Code{analyze.BackendRejected, analyze.HostRewritten}, Client: a, Proxy: b, Backend: b,
			ProxyProduct: product, Path: path, StatusBackend: 400, StatusClient: 400, PairConfidence: analyze.ConfExact,
			Evidence: []string{ev, "backend→proxy: " + status}, ErrorLog: reason, ErrorLogLines: []string{ev + reason},
			Config: &analyze.ConfigBlock{File: path, Line: 3, Block: "location " + path, Server: "server " + value}, Fix: fix,
			Legs: []analyze.Leg{{Client: a, Server: b, RequestLine: "GET " + path + " HTTP/1.1", StatusLine: status, Status: 400,
				RequestHeaders: hs, ResponseHeaders: hs}},
			Session: &analyze.Session{ClosedBy: "backend", CloseCode: 4000, CloseReason: reason, CloseKind: "FIN"}}
		e := &analyze.Event{Time: at, Code: analyze.MassClose, Count: 3, Server: b, ClosedBy: "proxy", Cause: ev, Evidence: []string{reason}, Fix: fix}
		sum := newSummaryLine()
		sum.Attempts, sum.ByCode[string(v.Code)] = 1, 1
		for verbosity := 0; verbosity <= 2; verbosity++ {
			for _, colour := range []bool{false, true} {
				var out bytes.Buffer
				r := newRenderer("text", &out, verbosity, true, colour)
				r.verdict(v)
				r.event(e)
				r.summary(sum)
				s := out.String()
				if colour {
					for _, c := range ownColours {
						s = strings.ReplaceAll(s, c, "")
					}
				}
				for _, l := range strings.Split(s, "\n") {
					if !visible.Safe(l) {
						t.Fatalf("-v×%d colour %v: raw control or bidi characters in %q", verbosity, colour, l)
					}
				}
			}
			var out bytes.Buffer
			r := newRenderer("json", &out, verbosity, true, false)
			r.verdict(v)
			r.event(e)
			r.summary(sum)
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if !visible.Safe(l) || !json.Valid([]byte(l)) {
					t.Fatalf("JSON -v×%d: %q", verbosity, l)
				}
			}
		}
	})
}
