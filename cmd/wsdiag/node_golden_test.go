package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// nodeCases are the captures of testdata/gen/node.sh: what a proxy host
// in a cluster or a cloud records (overlays, PROXY headers, a Node.js
// dev proxy, TLS passthrough, extensions hidden or stripped, tunnels cut
// while the capture held nothing else of them, two hosts' clocks).
var nodeCases = map[string][]want{}

func init() {
	ok2 := want{code: "ok", hop: "-", n: 2, backend: 101, client: 101, conf: "exact", path: "/ws"}
	rejected := want{code: "backend_rejected", hop: "backend", n: 1, backend: 404, client: 404, conf: "exact", path: "/nothere"}
	overlay := func(tunnel string) []want {
		r := rejected
		r.evidence = []string{"proxy→backend: in " + tunnel}
		return []want{ok2, r}
	}
	nodeCases["vxlan-nginx.pcapng"] = overlay("VXLAN VNI 42 (UDP 4789) 10.231.2.1 → 10.231.2.2")
	nodeCases["vxlan8472-haproxy.pcap"] = overlay("VXLAN VNI 1 (UDP 8472) 10.231.2.1 → 10.231.2.2")
	nodeCases["vxlan-any-nginx.pcap"] = overlay("VXLAN VNI 42 (UDP 4789)")
	nodeCases["geneve-nginx.pcap"] = overlay("Geneve VNI 77 (UDP 6081) 10.231.2.1 → 10.231.2.2")
	nodeCases["gre-nginx.pcap"] = overlay("GRE key 1234 10.231.2.1 → 10.231.2.2")
	nodeCases["ipip-nginx.pcap"] = overlay("IPIP 10.231.2.1 → 10.231.2.2")

	pp := func(version string) []want {
		r := rejected
		r.evidence = []string{"client→proxy: PROXY " + version + " from 10.231.1.2:"}
		return []want{ok2, r}
	}
	nodeCases["pp-v1-nginx.pcap"] = pp("v1")
	nodeCases["pp-v2-nginx.pcap"] = pp("v2")
	nodeCases["pp-v1-stream-haproxy.pcap"] = pp("v1")
	nodeCases["pp-v1-lb.pcap"] = []want{ok2, {code: "backend_rejected", hop: "backend", n: 1, backend: 404, client: 404, conf: "exact", path: "/nothere",
		evidence: []string{"proxy→backend: PROXY v1 from 10.231.1.2:"}}}
	unexpected := func(v string, answered, silent string, nAnswered int) []want {
		ev := []string{"the connection began with a PROXY " + v + " from 10.231.1.2:", "the proxy read the PROXY header as a request line"}
		return []want{
			{code: "proxy_protocol_mismatch", hop: "proxy", n: nAnswered, client: 400, conf: "none", path: answered, evidence: ev, fix: "listen … proxy_protocol"},
			{code: "proxy_protocol_mismatch", hop: "proxy", n: 3 - nAnswered, conf: "none", path: silent, evidence: ev, fix: "listen … proxy_protocol"}}
	}
	nodeCases["pp-unexpected-nginx.pcap"] = unexpected("v1", "/nothere", "/ws", 1)
	nodeCases["pp-unexpected-v2-nginx.pcap"] = unexpected("v2", "/ws", "/nothere", 2)
	missing := []want{{code: "proxy_protocol_mismatch", hop: "proxy", n: 3, conf: "none",
		evidence: []string{"after the request, without sending a byte", "closed all 3 connections of the capture so, and answered none"},
		findings: []string{"proxy_rejected"}, fix: "send-proxy"}}
	nodeCases["pp-missing-nginx.pcap"] = missing
	nodeCases["pp-missing-haproxy.pcap"] = missing

	notRelayed := want{code: "upgrade_not_relayed", hop: "proxy", backend: 101, conf: "exact", path: "/ws",
		evidence: []string{"backend→proxy: HTTP/1.1 101 Switching Protocols", "proxy→client: no answer; the client waited 3.00s and closed (FIN)"},
		fix:      "server.on('upgrade'"}
	notRelayed.n = 2
	nodeCases["devproxy-http-proxy.pcap"] = []want{notRelayed}
	notRelayed.n = 1
	nodeCases["devproxy-hpm.pcap"] = []want{notRelayed, {code: "ok", hop: "-", n: 1, backend: 101, client: 101, conf: "exact"}}
	nodeCases["devproxy-upgrade-ok.pcap"] = []want{ok2}

	passthrough := func(backend string) []want {
		return []want{
			{code: "encrypted_leg", hop: "-", n: 2, conf: "exact", evidence: []string{"ClientHello, SNI app.example", "the same ClientHello (random", "end-to-end encrypted between 10.231.1.2:"},
				fix: "on the backend " + backend + "'s host"},
			{code: "proxy_rejected", hop: "proxy", n: 1, conf: "none", evidence: []string{"after the ClientHello, with neither a ServerHello nor an alert", "no route for other.example"},
				fix: "req.ssl_sni -i other.example"}}
	}
	nodeCases["tls-passthrough-haproxy.pcap"] = passthrough("10.231.2.2:9443")
	nodeCases["tls-passthrough-stream.pcap"] = passthrough("10.231.2.2:443")

	hidden := []want{{code: "ws_header_altered", hop: "proxy", n: 1, backend: 101, client: 101, conf: "exact",
		evidence: []string{"backend→proxy: Sec-WebSocket-Extensions: permessage-deflate", "proxy→client: no Sec-WebSocket-Extensions header in the proxy's 101",
			"RSV bits set without a negotiated extension", `client sent close 1002 "RSV1 set"`},
		findings: []string{"frame_protocol_error"}, fix: "proxy_hide_header Sec-WebSocket-Extensions"}}
	nodeCases["ext-hidden-nginx.pcap"] = hidden
	nodeCases["ext-hidden-node.pcap"] = hidden
	stripped := []want{{code: "ok", hop: "-", n: 1, backend: 101, client: 101, conf: "exact",
		evidence: []string{"proxy→backend: no Sec-WebSocket-Extensions header", "the tunnel runs uncompressed"}, findings: []string{"extensions_stripped"}}}
	nodeCases["ext-stripped-nginx.pcap"] = stripped
	nodeCases["ext-stripped-haproxy.pcap"] = stripped

	idle := []want{{code: "idle_timeout", hop: "session", n: 3, conf: "low", findings: []string{"handshake_not_captured"},
		evidence: []string{"no handshake and no frame of these two connections", "proxy→client 10.231.1.1:80→10.231.1.2:", "proxy→backend 10.231.2.1:", "closed both legs within"}}}
	nodeCases["idle-cut-nginx.pcap"] = idle
	nodeCases["idle-cut-haproxy.pcap"] = idle
	snap := []want{{code: "ok", hop: "-", n: 1, backend: 101, client: 101, conf: "medium", findings: []string{"cannot_tell"},
		evidence: []string{"what the cut took (Sec-WebSocket-Accept, extensions) was not checked"}}}
	nodeCases["snap200-compress-nginx.pcap"] = snap
	nodeCases["snap200-compress-haproxy.pcap"] = snap
	productionWarnings["snap200-compress-nginx.pcap"] = "snap length 200"
	productionWarnings["snap200-compress-haproxy.pcap"] = "snap length 200"
	nodeCases["client-quits-idle.pcap"] = []want{{code: "abnormal_close", hop: "session", n: 1, backend: 101, client: 101, conf: "exact",
		evidence: []string{"client→proxy: the client closed the connection (FIN) without a close frame"}}}
	nodeCases["front-idle-netns.pcap"] = []want{{code: "front_idle_timeout", hop: "front", n: 3, backend: 101, client: 101, conf: "exact",
		evidence: []string{"x-forwarded-for: 10.231.1.2 names a client behind 10.231.2.1: a hop in front of the proxy"}}}

	five := want{code: "ok", hop: "-", n: 5, backend: 101, client: 101, conf: "exact", path: "/ws"}
	for _, n := range []string{"skew-lb.pcap", "skew-app.pcap", "skew-app-ahead.pcap", "skew-app-behind.pcap"} {
		nodeCases[n] = []want{five, rejected}
	}
	three := five
	three.n = 3
	nodeCases["skew2-lb.pcapng"] = []want{three, rejected}
	nodeCases["skew2-app-behind.pcapng"] = []want{{code: "ok", hop: "-", n: 3, client: 101, conf: "none", path: "/ws"},
		{code: "unpaired", hop: "-", n: 1, client: 404, conf: "none", path: "/nothere"}}

	for k, v := range nodeCases {
		goldenCases[k] = v
	}
}

// Two hosts' captures read together pair as one: every attempt once, the
// offset between the clocks estimated and said, the 404 blamed on the
// backend through both files' legs.
func TestClockOffsetPairs(t *testing.T) {
	for _, c := range []struct {
		files []string
		ok    int
		say   string
	}{
		{[]string{"skew-lb.pcap", "skew-app.pcap"}, 5, ""},
		{[]string{"skew-lb.pcap", "skew-app-ahead.pcap"}, 5, "skew-app-ahead.pcap's clock is 7.50 s ahead of skew-lb.pcap's (6 connection(s) in both files); shifted"},
		{[]string{"skew-lb.pcap", "skew-app-behind.pcap"}, 5, "skew-app-behind.pcap's clock is 4.00 s behind skew-lb.pcap's (6 connection(s) in both files); shifted"},
		{[]string{"skew2-lb.pcapng", "skew2-app-behind.pcapng"}, 3, "skew2-app-behind.pcapng's clock is 4.00 s behind skew2-lb.pcapng's (4 handshake key(s) relayed between them); shifted"},
		{[]string{"skew-lb.pcap", "skew-app-ahead.pcap", "--clock-offset", filepath.Join(capturesDir, "skew-app-ahead.pcap") + "=7.5"}, 5, "7.50 s ahead of skew-lb.pcap's (--clock-offset); shifted"},
	} {
		var args []string
		for _, f := range c.files {
			if strings.HasSuffix(f, ".pcap") || strings.HasSuffix(f, ".pcapng") {
				f = filepath.Join(capturesDir, f)
			}
			args = append(args, f)
		}
		for _, w := range []string{"1", "2"} {
			vs, _, _, stderr := readJSON(t, append([]string{"--workers", w}, args...)...)
			ok, rejected := 0, 0
			for _, v := range vs {
				switch {
				case v.Code == "ok":
					ok++
				case v.Code == "backend_rejected" && v.Hop == "backend" && v.PairConfidence == "exact":
					rejected++
				}
			}
			if len(vs) != c.ok+1 || ok != c.ok || rejected != 1 {
				t.Errorf("%v (workers %s): %d verdicts, %d ok, %d backend_rejected: %v", c.files, w, len(vs), ok, rejected, codesOf(vs))
			}
			if c.say != "" && !strings.Contains(stderr, c.say) || c.say == "" && strings.Contains(stderr, "clock") {
				t.Errorf("%v: stderr %q, want %q", c.files, stderr, c.say)
			}
		}
	}
}
