package main

import (
	"path/filepath"
	"testing"
)

// h2Cases are the captures of testdata/gen/h2.sh whose client leg is
// HTTP/2 over TLS: read with their key log, and without it.
var h2Cases = map[string]struct{ keys, noKeys []want }{
	// Chromium → haproxy (h2, RFC 8441) → backend over HTTP/1.1.
	"h2-chromium-haproxy": {
		keys: []want{{code: "ok", hop: "-", n: 1, backend: 101, client: 200, conf: "medium", findings: []string{"client_http2"},
			evidence: []string{"client→proxy: HTTP/2 stream 3: CONNECT /ws HTTP/2 (:protocol websocket)",
				"proxy→backend request line: GET /ws HTTP/1.1", "proxy→client: HTTP/2 200"}}},
		noKeys: []want{{code: "ok", hop: "-", n: 1, backend: 101, conf: "low", findings: []string{"encrypted_leg", "client_http2"},
			evidence: []string{"ALPN h2,http/1.1", "likely HTTP/2"}}},
	},
	// Chromium → haproxy (h2) → nginx without upgrade directives → backend.
	"h2-haproxy-nginx-no-upgrade": {
		keys: []want{{code: "upgrade_header_dropped", hop: "proxy", n: 1, backend: 400, client: 400, conf: "medium", proxy: "127.0.0.1:8644",
			findings: []string{"client_http2", "upstream_http10"},
			evidence: []string{"client→proxy1: HTTP/2 stream 3: CONNECT /ws HTTP/2", "proxy2→backend: no Upgrade header", "proxy1→client: HTTP/2 400"},
			fix:      "proxy_set_header Upgrade $http_upgrade"}},
		noKeys: []want{{code: "upgrade_header_dropped", hop: "proxy", n: 1, backend: 400, conf: "low",
			findings: []string{"encrypted_leg", "client_http2"}, evidence: []string{"proxy2→backend: no Upgrade header"},
			fix: "proxy_set_header Upgrade $http_upgrade"}},
	},
	// Chromium's extended CONNECT, which haproxy advertised, denied on /ws by
	// an http-request rule: haproxy's own 403, no upstream leg.
	"h2-refused-haproxy": {
		keys: []want{{code: "h2_websocket_refused", hop: "proxy", n: 1, client: 403, conf: "none",
			findings: []string{"client_http2"},
			evidence: []string{"client→proxy: HTTP/2 stream 3: CONNECT /ws HTTP/2 (:protocol websocket)", "proxy→client: HTTP/2 403"},
			fix:      "http-request deny"}},
	},
	// An x/net/http2 client sends extended CONNECT to nginx, which never
	// advertises it; without keys nothing shows a WebSocket attempt.
	"h2-refused-nginx": {
		keys: []want{{code: "h2_websocket_refused", hop: "proxy", n: 1, client: 400, conf: "none",
			findings: []string{"client_http2", "proxy_rejected"},
			evidence: []string{"SETTINGS without SETTINGS_ENABLE_CONNECT_PROTOCOL", "proxy→client: HTTP/2 400"},
			fix:      "does not implement WebSockets over HTTP/2"}},
	},
}

func TestH2Captures(t *testing.T) {
	for name, c := range h2Cases {
		t.Run(name, func(t *testing.T) {
			pcap := filepath.Join(capturesDir, name+".pcap")
			for _, keys := range []bool{true, false} {
				args, wants := []string{pcap}, c.noKeys
				if keys {
					args, wants = []string{"--keylog", filepath.Join(capturesDir, name+".keylog"), pcap}, c.keys
				}
				vs, sum, code, stderr := readJSON(t, args...)
				if stderr != "" && len(wants) > 0 {
					t.Errorf("keys=%v: stderr %q", keys, stderr)
				}
				total, allOK := 0, true
				for _, w := range wants {
					total += w.n
					allOK = allOK && w.code == "ok"
					n := 0
					for _, v := range vs {
						if v.Code == w.code {
							n++
							checkVerdict(t, v, w)
							// The client leg is shown as HTTP/2 when it was read.
							if keys && (len(v.Legs) == 0 || v.Legs[0].Proto != "h2") {
								t.Errorf("keys=%v: legs %+v: the client leg is not shown as h2", keys, v.Legs)
							}
						}
					}
					if n != w.n {
						t.Errorf("keys=%v: %d %s verdicts, want %d (all: %v)", keys, n, w.code, w.n, codesOf(vs))
					}
				}
				if len(vs) != total || sum.Attempts != uint64(total) {
					t.Errorf("keys=%v: %d verdicts, %d attempts in the summary, want %d (%v)", keys, len(vs), sum.Attempts, total, codesOf(vs))
				}
				switch {
				case total == 0 && code != exitOK: // "no WebSocket handshake attempts found", as for any capture without one
					t.Errorf("keys=%v: exit %d with no attempt", keys, code)
				case total > 0 && allOK && code != exitOK, total > 0 && !allOK && code != exitNotOK:
					t.Errorf("keys=%v: exit %d", keys, code)
				}
			}
		})
	}
}
