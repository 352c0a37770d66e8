//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLiveOverlay: live on a node's underlay interface judges the pods'
// traffic in a (kernel) VXLAN overlay as read does. Two network namespaces
// of the test's own, joined by a veth pair (the underlay) and a VXLAN on
// it (VNI 42, UDP 4789); the client, on the backend's host, reaches nginx
// over the underlay, nginx reaches the backend over the overlay. live
// runs on the proxy host's veth, with a filter that names the backend's
// inner port, while tcpdump writes the same interface to a file: the
// verdicts of live equal those of read on the file, and the upstream leg
// (only ever in VXLAN there) is in them.
func TestLiveOverlay(t *testing.T) {
	nginx := requireE2E(t)
	for _, c := range []string{"ip", "tcpdump"} {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing", c)
			}
			t.Skipf("needs %s", c)
		}
	}
	dir := t.TempDir()
	bin := buildTestGen(t)
	wsdiag := filepath.Join(bin, "wsdiag")
	if out, err := exec.Command("go", "build", "-o", wsdiag, ".").CombinedOutput(); err != nil {
		t.Fatalf("building wsdiag: %v\n%s", err, out)
	}
	id := os.Getpid() % 100000
	pns, bns := fmt.Sprintf("node2-op%d", id), fmt.Sprintf("node2-ob%d", id)
	vp, vb := fmt.Sprintf("n2p%d", id), fmt.Sprintf("n2b%d", id)
	for _, ns := range []string{pns, bns} {
		netnsRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	netnsRun(t, "ip", "link", "add", vp, "netns", pns, "type", "veth", "peer", "name", vb, "netns", bns)
	for _, c := range [][]string{
		{"ip", "-n", pns, "addr", "add", "10.233.1.1/24", "dev", vp}, {"ip", "-n", bns, "addr", "add", "10.233.1.2/24", "dev", vb},
		{"ip", "-n", pns, "link", "set", vp, "up"}, {"ip", "-n", bns, "link", "set", vb, "up"},
		{"ip", "-n", pns, "link", "set", "lo", "up"}, {"ip", "-n", bns, "link", "set", "lo", "up"},
	} {
		netnsRun(t, c...)
	}
	for _, h := range []struct{ ns, dev, me, peer, over string }{
		{pns, vp, "10.233.1.1", "10.233.1.2", "10.233.2.1/24"}, {bns, vb, "10.233.1.2", "10.233.1.1", "10.233.2.2/24"},
	} {
		out, err := exec.Command("ip", "-n", h.ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "local", h.me, "remote", h.peer,
			"dstport", "4789", "dev", h.dev).CombinedOutput()
		if err != nil && strings.Contains(string(out), "Unknown device type") {
			t.Skipf("no VXLAN in this kernel: %s", out)
		}
		if err != nil {
			t.Fatalf("adding the VXLAN device: %v\n%s", err, out)
		}
		netnsRun(t, "ip", "-n", h.ns, "addr", "add", h.over, "dev", "vx0")
		netnsRun(t, "ip", "-n", h.ns, "link", "set", "vx0", "up")
	}

	conf := writeNginxConf(t, dir, "10.233.1.1:8080", "10.233.2.2:9001")
	startProc(t, filepath.Join(dir, "backend.log"), "ip", "netns", "exec", bns, filepath.Join(bin, "backend"), "-addr", "10.233.2.2:9001")
	startProc(t, filepath.Join(dir, "nginx.log"), "ip", "netns", "exec", pns, nginx, "-c", conf, "-p", dir, "-g", "daemon off;")
	time.Sleep(500 * time.Millisecond)

	pcap := filepath.Join(dir, "underlay.pcap")
	dump := startProc(t, filepath.Join(dir, "tcpdump.log"), "ip", "netns", "exec", pns, "tcpdump", "-i", vp, "-U", "-w", pcap, "tcp port 8080 or udp port 4789")
	var live, stderr strings.Builder
	lv := exec.Command("ip", "netns", "exec", pns, wsdiag, "live", "-i", vp, "--workers", "2", "--format", "json", "--duration", "6s", "port 8080 or port 9001")
	lv.Stdout, lv.Stderr = &live, &stderr
	if err := lv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cl := exec.Command("ip", "netns", "exec", bns, filepath.Join(bin, "client"), "-url",
		"ws://10.233.1.1:8080/ws/ok,ws://10.233.1.1:8080/ws/broken", "-n", "4", "-msgs", "1", "-timeout", "3s")
	if b, err := cl.CombinedOutput(); err != nil {
		t.Fatalf("client: %v\n%s", err, b)
	}
	lv.Wait()
	time.Sleep(2 * time.Second) // tcpdump hands packets over in blocks
	dump.Process.Signal(os.Interrupt)
	dump.Wait()

	key := func(v jsonVerdict) string {
		s := func(p *string) string {
			if p == nil {
				return "-"
			}
			return *p
		}
		n := func(p *int) int {
			if p == nil {
				return 0
			}
			return *p
		}
		return fmt.Sprintf("%s %s client %s backend %s %d→%d %s", v.Path, v.Code, s(v.Client), s(v.Backend), n(v.StatusBackend), n(v.StatusClient), v.PairConfidence)
	}
	judge := func(vs []jsonVerdict) (keys []string) {
		for _, v := range vs {
			keys = append(keys, key(v))
			if !strings.Contains(strings.Join(v.Evidence, "\n"), "proxy→backend: in VXLAN VNI 42 (UDP 4789) 10.233.1.1 → 10.233.1.2") {
				t.Errorf("%s: the upstream leg's tunnel is not named: %q", key(v), v.Evidence)
			}
		}
		slices.Sort(keys)
		return keys
	}
	got := judge(decodeOutput(t, []byte(live.String())).verdicts)
	read, _, _, rerr := readJSON(t, pcap)
	want := judge(read)
	if len(want) != 4 || !slices.Equal(got, want) {
		t.Errorf("live:\n%s\nread of the tcpdump file:\n%s\nlive's stderr: %s\nread's: %s", strings.Join(got, "\n"), strings.Join(want, "\n"), stderr.String(), rerr)
	}
	counts := map[string]int{}
	for _, v := range read {
		counts[v.Path+" "+v.Code]++
	}
	if counts["/ws/ok ok"] != 2 || counts["/ws/broken upgrade_header_dropped"] != 2 {
		t.Errorf("read: %v, want 2 ok and 2 upgrade_header_dropped", counts)
	}
	if !strings.Contains(stderr.String(), " 0 dropped by kernel") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
