package metrics

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
	"github.com/wsdiag/wsdiag/reassembly"
)

// replay feeds a capture of real nginx traffic through reassembly and the
// analyzer the way live does (decided 500 ms after each handshake, at the
// handshake, Decide and Capture every 100 ms of capture time), with m
// watching, and returns the verdicts.
func replay(t testing.TB, m *Metrics, name string) []*analyze.Verdict {
	t.Helper()
	r, err := capture.Open("../../../testdata/captures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var vs []*analyze.Verdict
	opt := analyze.DefaultOptions
	opt.Grace = 500 * time.Millisecond
	an := analyze.New(opt, func(v *analyze.Verdict) {
		vs = append(vs, v)
		m.Verdict(v)
	})
	asm := reassembly.New(pipeline.Tee(an, m), reassembly.DefaultOptions)
	var last time.Time
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
		if now := p.CI.Timestamp; now.Sub(last) >= 100*time.Millisecond {
			an.Decide(now)
			m.Capture(now, Figures{Packets: r.Packets})
			last = now
		}
	}
	// live's quiet seconds after the traffic: the tunnels' waits run out
	for i := 0; i < 30; i++ {
		last = last.Add(100 * time.Millisecond)
		asm.Flush(last)
		an.Decide(last)
		m.Capture(last, Figures{Packets: r.Packets})
	}
	asm.Close()
	an.Finish()
	return vs
}

// family returns the metric family called name.
func family(t testing.TB, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func labelsOf(mt *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range mt.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// attempts sums wsdiag_attempts_total by code.
func attempts(t testing.TB, m *Metrics) map[string]float64 {
	out := map[string]float64{}
	if f := family(t, m, "wsdiag_attempts_total"); f != nil {
		for _, mt := range f.GetMetric() {
			out[labelsOf(mt)["code"]] += mt.GetCounter().GetValue()
		}
	}
	return out
}

// histogram returns the count and sum of the series of name whose label
// key is value.
func histogram(t testing.TB, m *Metrics, name, key, value string) (uint64, float64) {
	f := family(t, m, name)
	if f == nil {
		t.Fatalf("no %s", name)
	}
	for _, mt := range f.GetMetric() {
		if labelsOf(mt)[key] == value {
			return mt.GetHistogram().GetSampleCount(), mt.GetHistogram().GetSampleSum()
		}
	}
	return 0, 0
}

func gauge(t testing.TB, m *Metrics, name string) float64 {
	f := family(t, m, name)
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("no single %s", name)
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

func TestAttemptsMatchVerdicts(t *testing.T) {
	m := New(DefaultOptions)
	vs := replay(t, m, "concurrent-20.pcap")
	got := attempts(t, m)
	if got["ok"] != 10 || got["upgrade_header_dropped"] != 10 || len(got) != 2 {
		t.Errorf("attempts by code = %v, want 10 ok and 10 upgrade_header_dropped", got)
	}
	byCode := map[string]float64{}
	for _, v := range vs {
		byCode[string(v.Code)]++
	}
	for c, n := range byCode {
		if got[c] != n {
			t.Errorf("code %s: metric %v, verdicts %v", c, got[c], n)
		}
	}
	for _, mt := range family(t, m, "wsdiag_attempts_total").GetMetric() {
		l := labelsOf(mt)
		if l["proxy"] != "127.0.0.1:8080" || l["backend"] != "127.0.0.1:9001" {
			t.Errorf("labels %v: want proxy 127.0.0.1:8080, backend 127.0.0.1:9001", l)
		}
		if want := map[string]string{"ok": "-", "upgrade_header_dropped": "proxy"}[l["code"]]; l["hop"] != want {
			t.Errorf("labels %v: want hop %q", l, want)
		}
	}
	// the ten ok attempts got 101 on both legs; the broken ones none
	for _, leg := range []string{LegClient, LegUpstream, LegProxyAdded} {
		n, sum := histogram(t, m, "wsdiag_handshake_duration_seconds", "leg", leg)
		if n != 10 || sum <= 0 || sum > 1 {
			t.Errorf("handshake leg %s: %d observations summing %.6f s, want 10 of a loopback handshake", leg, n, sum)
		}
	}
	nc, client := histogram(t, m, "wsdiag_handshake_duration_seconds", "leg", LegClient)
	nu, up := histogram(t, m, "wsdiag_handshake_duration_seconds", "leg", LegUpstream)
	_, added := histogram(t, m, "wsdiag_handshake_duration_seconds", "leg", LegProxyAdded)
	if nc == nu && math.Abs(client-up-added) > 1e-6 {
		t.Errorf("client %.6f s - upstream %.6f s != proxy_added %.6f s", client, up, added)
	}
	if open := gauge(t, m, "wsdiag_tunnels_open"); open != 0 {
		t.Errorf("tunnels open after the capture = %v, want 0", open)
	}
}

// sessions reads a capture as "wsdiag read" does, each upgraded attempt
// decided at its connection's end, and returns the analyzer's own session
// figures: what the live metrics must agree with.
func sessions(t *testing.T, name string) []*analyze.Session {
	r, err := capture.Open("../../../testdata/captures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	opt := analyze.DefaultOptions
	opt.WaitSession = true
	var out []*analyze.Session
	an := analyze.New(opt, func(v *analyze.Verdict) {
		if v.Session != nil {
			out = append(out, v.Session)
		}
	})
	asm := reassembly.New(an, reassembly.DefaultOptions)
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
	}
	asm.Close()
	an.Finish()
	return out
}

// TestTunnelClosedBy: nginx's proxy_read_timeout (5 s) cutting an idle
// tunnel, a backend's close 4000, a client's RST and normal closes, each
// timed from the verdict at the handshake to the connection's end as live
// sees them, agree with the analyzer's judgement of the whole session.
func TestTunnelClosedBy(t *testing.T) {
	for _, tc := range []struct {
		capture, by string
		n           uint64
		min, max    float64
	}{
		{"idle-timeout.pcap", "proxy", 1, 4.9, 5.5},
		{"backend-close-4000.pcap", "backend", 1, 0, 1},
		{"client-rst.pcap", "client", 1, 0, 1},
		{"correct.pcap", "client", 3, 0, 1},
		{"backend-read-limit.pcap", "backend", 3, 0, 3},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			m := New(DefaultOptions)
			replay(t, m, tc.capture)
			want := map[string]uint64{}
			wantSum := map[string]float64{}
			for _, s := range sessions(t, tc.capture) {
				want[s.ClosedBy]++
				wantSum[s.ClosedBy] += s.Duration.Seconds()
			}
			if want[tc.by] != tc.n {
				t.Fatalf("the analyzer says %v, the test expects %d closed by %s", want, tc.n, tc.by)
			}
			for _, by := range closedByValues {
				n, sum := histogram(t, m, "wsdiag_tunnel_duration_seconds", "closed_by", by)
				if n != want[by] || math.Abs(sum-wantSum[by]) > 0.01 {
					t.Errorf("closed_by %s: %d tunnels, %.3f s; the analyzer: %d, %.3f s", by, n, sum, want[by], wantSum[by])
				}
				if by == tc.by && (sum < tc.min*float64(n) || sum > tc.max*float64(n)) {
					t.Errorf("closed_by %s: %.3f s in all, want %v–%v s each", by, sum, tc.min, tc.max)
				}
			}
		})
	}
}

func TestLabelsBounded(t *testing.T) {
	m := New(Options{MaxProxies: 2, MaxBackends: 3})
	for i := 0; i < 50; i++ {
		v := &analyze.Verdict{Code: analyze.BackendRejected, Hop: analyze.HopBackend,
			Proxy:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 80),
			Backend: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), 9001)}
		m.Verdict(v)
	}
	m.Verdict(&analyze.Verdict{Code: analyze.PlainHTTP}) // not an attempt
	f := family(t, m, "wsdiag_attempts_total")
	// two proxies and three backends of their own: (p0,b0) (p1,b1) (other,b2) (other,other)
	if n := len(f.GetMetric()); n != 4 {
		t.Fatalf("%d series, want 4", n)
	}
	var other, both float64
	for _, mt := range f.GetMetric() {
		l := labelsOf(mt)
		if l["proxy"] == Other {
			other += mt.GetCounter().GetValue()
		}
		if l["proxy"] == Other && l["backend"] == Other {
			both = mt.GetCounter().GetValue()
		}
	}
	if other != 48 || both != 47 {
		t.Errorf("proxy=other counted %v, with backend=other %v; want 48 and 47", other, both)
	}
}

func TestEndpoints(t *testing.T) {
	m := New(DefaultOptions)
	m.Capture(time.Now(), Figures{Packets: 1234, KernelDrops: 5, Evicted: 2, QuietEvicted: 3, MemEvicted: 4, TLSUndecrypted: 1})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{"wsdiag_capture_packets_total 1234", "wsdiag_capture_kernel_drops_total 5",
		`wsdiag_flows_evicted_total{class="http"} 2`, `wsdiag_flows_evicted_total{class="quiet"} 3`, `wsdiag_flows_evicted_total{class="memory"} 4`,
		`wsdiag_warnings_total{kind="tls_undecrypted"} 1`, "wsdiag_tunnels_open 0", "process_cpu_seconds_total", "wsdiag_build_info{"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "wsdiag_tls_plaintext") {
		t.Errorf("/metrics without --tls-plaintext shows its metrics")
	}
	m.Capture(time.Now(), Figures{Plain: &PlainFigures{Captured: 7, Skipped: 3, RingDrops: 2, Cost: 0.04, Paused: true}})
	_, body = get("/metrics")
	for _, want := range []string{`wsdiag_tls_plaintext_connections_total{result="captured"} 7`, `wsdiag_tls_plaintext_connections_total{result="skipped"} 3`,
		"wsdiag_tls_plaintext_ring_drops_total 2", "wsdiag_tls_plaintext_cost_ratio 0.04", "wsdiag_tls_plaintext_paused 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics with --tls-plaintext lacks %q", want)
		}
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	for _, p := range []string{"/", "/metrics/x", "/debug/pprof/", "/healthz/"} {
		if code, _ := get(p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	m.lastTick.Store(time.Now().Add(-time.Minute).UnixNano())
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "silent") {
		t.Errorf("/healthz with a stalled capture loop: %d %q, want 503", code, body)
	}
}

// TestTunnelTracked: tunnels longer than live's decision delay, followed
// from the verdict to their legs' ends in each order the ends can arrive.
// Hand-built events: the captures in testdata hold one such tunnel only
// (idle-timeout, above).
func TestTunnelTracked(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ap := netip.MustParseAddrPort
	client, proxy := ap("127.0.0.1:40000"), ap("127.0.0.1:8080")
	pclient, backend := ap("127.0.0.1:50000"), ap("127.0.0.1:9001")
	verdict := &analyze.Verdict{Code: analyze.OK, Hop: analyze.HopNone, StatusClient: 101, StatusBackend: 101,
		Legs: []analyze.Leg{
			{Client: client, Server: proxy, Status: 101, Times: analyze.LegTimes{Request: t0, Response: t0.Add(2 * time.Millisecond)}},
			{Client: pclient, Server: backend, Status: 101, Times: analyze.LegTimes{Request: t0.Add(time.Millisecond), Response: t0.Add(time.Millisecond)}}}}
	conn := map[netip.AddrPort]reassembly.ConnID{client: 1, pclient: 2}
	end := func(c, s netip.AddrPort, side reassembly.Side, at time.Duration) *reassembly.ConnEnd {
		e := &reassembly.ConnEnd{Conn: reassembly.Conn{ID: conn[c], Client: c, Server: s}, Upgraded: true, Last: t0.Add(at + time.Millisecond)}
		cl := reassembly.Close{Kind: reassembly.CloseFIN, Time: t0.Add(at)}
		if side == reassembly.SideClient {
			e.ClientClose = cl
		} else {
			e.ServerClose = cl
		}
		return e
	}
	upBackend := end(pclient, backend, reassembly.SideServer, 30*time.Second)
	upProxy := end(pclient, backend, reassembly.SideClient, 30*time.Second)
	clientProxy := end(client, proxy, reassembly.SideServer, 30*time.Second)
	clientClient := end(client, proxy, reassembly.SideClient, 30*time.Second)
	for _, tc := range []struct {
		name   string
		before []*reassembly.ConnEnd // ends before the verdict
		after  []*reassembly.ConnEnd
		by     string
		open   float64 // tunnels open after the ends
	}{
		{"backend leg first", nil, []*reassembly.ConnEnd{upBackend, clientProxy}, "backend", 0},
		{"client leg first", nil, []*reassembly.ConnEnd{clientProxy, upBackend}, "backend", 0},
		{"backend leg before the verdict", []*reassembly.ConnEnd{upBackend}, []*reassembly.ConnEnd{clientProxy}, "backend", 0},
		{"proxy cut both", nil, []*reassembly.ConnEnd{clientProxy, upProxy}, "proxy", 0},
		{"no backend leg end", nil, []*reassembly.ConnEnd{clientProxy}, "proxy", 1},
		{"client", nil, []*reassembly.ConnEnd{clientClient}, "client", 1}, // the backend leg still open
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(DefaultOptions)
			// a live that decided earlier tunnels at their handshake too
			m.tunnels.tracking = true
			an := analyze.New(analyze.DefaultOptions, nil)
			// the backend's 101, then the proxy's: one tunnel, one key
			req := &reassembly.Request{Headers: reassembly.Headers{{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="}}}
			s := pipeline.Tee(an, m)
			s.Response(&reassembly.Response{Conn: reassembly.Conn{ID: 2}, Status: 101, Request: req})
			s.Response(&reassembly.Response{Conn: reassembly.Conn{ID: 1}, Status: 101, Request: req})
			for _, e := range tc.before {
				s.ConnEnd(e)
			}
			m.Verdict(verdict)
			if open := gauge(t, m, "wsdiag_tunnels_open"); open != 1 && tc.before == nil {
				t.Errorf("tunnels open = %v, want 1", open)
			}
			for _, e := range tc.after {
				s.ConnEnd(e)
			}
			m.Capture(t0.Add(time.Minute), Figures{})
			if open := gauge(t, m, "wsdiag_tunnels_open"); open != tc.open {
				t.Errorf("tunnels open = %v after the ends, want %v", open, tc.open)
			}
			for _, by := range closedByValues {
				n, sum := histogram(t, m, "wsdiag_tunnel_duration_seconds", "closed_by", by)
				switch {
				case by == tc.by && (n != 1 || math.Abs(sum-29.998) > 1e-6):
					t.Errorf("closed_by %s: %d tunnels, %.3f s; want 1 of 29.998 s", by, n, sum)
				case by != tc.by && n != 0:
					t.Errorf("closed_by %s: %d tunnels, want none", by, n)
				}
			}
		})
	}
}
