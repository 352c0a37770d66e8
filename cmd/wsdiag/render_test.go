package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

func secretVerdict() *analyze.Verdict {
	return &analyze.Verdict{
		Time: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Code: analyze.ProxyRejected, Severity: analyze.SevError,
		Hop: analyze.HopProxy, Findings: []analyze.Code{analyze.ProxyRejected},
		Client: netip.MustParseAddrPort("10.0.0.1:5000"), Proxy: netip.MustParseAddrPort("10.0.0.2:80"),
		Path: "/ws", StatusClient: 403, PairConfidence: analyze.ConfNone,
		Legs: []analyze.Leg{{Client: netip.MustParseAddrPort("10.0.0.1:5000"), Server: netip.MustParseAddrPort("10.0.0.2:80"),
			RequestLine: "GET /ws HTTP/1.1", StatusLine: "HTTP/1.1 403 Forbidden", Status: 403,
			RequestHeaders:  reassembly.Headers{{Name: "cookie", Value: "session=hunter2"}, {Name: "Authorization", Value: "Bearer hunter2"}, {Name: "Upgrade", Value: "websocket"}},
			ResponseHeaders: reassembly.Headers{{Name: "Set-Cookie", Value: "id=hunter2"}}}},
	}
}

func TestSecretsRedacted(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for _, show := range []bool{false, true} {
			var out bytes.Buffer
			r := newRenderer(format, &out, 2, show, false)
			r.verdict(secretVerdict())
			got := out.String()
			if strings.Contains(got, "hunter2") != show {
				t.Errorf("%s show=%v: secrets shown=%v:\n%s", format, show, !show, got)
			}
			if !show && strings.Count(got, "[redacted]") != 3 {
				t.Errorf("%s: want 3 redactions:\n%s", format, got)
			}
			if !strings.Contains(got, "Upgrade: websocket") {
				t.Errorf("%s: other headers must stay:\n%s", format, got)
			}
		}
	}
}

// TestJSONShape: the documented fields are present, with null where a
// value is unknown.
func TestJSONShape(t *testing.T) {
	var out bytes.Buffer
	r := newRenderer("json", &out, 0, false, false)
	r.verdict(secretVerdict())
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "ts", "code", "severity", "hop", "findings", "client", "proxy", "backend", "path",
		"status_backend", "status_client", "pair_confidence", "evidence", "fix"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	if m["backend"] != nil || m["status_backend"] != nil {
		t.Errorf("unknown backend must be null: %v %v", m["backend"], m["status_backend"])
	}
	if m["status_client"] != float64(403) || m["type"] != "verdict" || m["ts"] != "2026-11-21T12:00:00Z" {
		t.Errorf("got %v", m)
	}
	if _, ok := m["legs"].([]any)[0].(map[string]any)["request_headers"]; ok {
		t.Error("headers are for -vv only")
	}
}
