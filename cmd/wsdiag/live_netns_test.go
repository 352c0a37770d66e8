//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netnsRun runs a command, failing the test with its output.
func netnsRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestLiveAcrossVeth captures with -i any inside a network namespace of
// the test's own: the client, in a second namespace, reaches nginx over a
// veth pair (a real, non-loopback interface: outgoing packets are kept
// there), nginx reaches the backend over that namespace's lo (outgoing
// copies dropped). Both legs must pair and the verdicts be right.
func TestLiveAcrossVeth(t *testing.T) {
	nginx := requireE2E(t)
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the ip command (iproute2) is missing")
		}
		t.Skip("needs iproute2")
	}
	dir := t.TempDir()
	bin := buildTestGen(t)
	wsdiag := filepath.Join(bin, "wsdiag")
	if out, err := exec.Command("go", "build", "-o", wsdiag, ".").CombinedOutput(); err != nil {
		t.Fatalf("building wsdiag: %v\n%s", err, out)
	}
	id := os.Getpid() % 100000
	cns, pns := fmt.Sprintf("wsdc%d", id), fmt.Sprintf("wsdp%d", id)
	vc, vp := fmt.Sprintf("vc%d", id), fmt.Sprintf("vp%d", id)
	netnsRun(t, "ip", "netns", "add", cns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cns).Run() })
	netnsRun(t, "ip", "netns", "add", pns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", pns).Run() })
	netnsRun(t, "ip", "link", "add", vc, "netns", cns, "type", "veth", "peer", "name", vp, "netns", pns)
	for _, c := range [][]string{
		{"ip", "-n", cns, "addr", "add", "10.203.7.1/24", "dev", vc}, {"ip", "-n", pns, "addr", "add", "10.203.7.2/24", "dev", vp},
		{"ip", "-n", cns, "link", "set", vc, "up"}, {"ip", "-n", pns, "link", "set", vp, "up"},
		{"ip", "-n", cns, "link", "set", "lo", "up"}, {"ip", "-n", pns, "link", "set", "lo", "up"},
	} {
		netnsRun(t, c...)
	}
	conf := writeNginxConf(t, dir, "10.203.7.2:8080", "127.0.0.1:9001")
	startProc(t, filepath.Join(dir, "backend.log"), "ip", "netns", "exec", pns, filepath.Join(bin, "backend"), "-addr", "127.0.0.1:9001")
	startProc(t, filepath.Join(dir, "nginx.log"), "ip", "netns", "exec", pns, nginx, "-c", conf, "-p", dir, "-g", "daemon off;")
	time.Sleep(500 * time.Millisecond)
	out := filepath.Join(dir, "verdicts.jsonl")
	live := exec.Command("ip", "netns", "exec", pns, wsdiag, "live", "-i", "any", "--format", "json", "--duration", "6s", "port 8080 or port 9001")
	f, _ := os.Create(out)
	var stderr strings.Builder
	live.Stdout, live.Stderr = f, &stderr
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cl := exec.Command("ip", "netns", "exec", cns, filepath.Join(bin, "client"), "-url",
		"ws://10.203.7.2:8080/ws/ok,ws://10.203.7.2:8080/ws/broken", "-n", "4", "-msgs", "1", "-timeout", "3s")
	if b, err := cl.CombinedOutput(); err != nil {
		t.Fatalf("client: %v\n%s", err, b)
	}
	live.Wait()
	f.Close()
	b, _ := os.ReadFile(out)
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var v jsonVerdict
		if json.Unmarshal(sc.Bytes(), &v) != nil || v.Type != "verdict" {
			continue
		}
		counts[v.Path+" "+v.Code]++
		if v.Client == nil || !strings.HasPrefix(*v.Client, "10.203.7.1:") || v.Backend == nil || *v.Backend != "127.0.0.1:9001" || v.PairConfidence != "exact" {
			t.Errorf("%s: client %v backend %v pairing %s", v.Code, v.Client, v.Backend, v.PairConfidence)
		}
	}
	if counts["/ws/ok ok"] != 2 || counts["/ws/broken upgrade_header_dropped"] != 2 {
		t.Errorf("verdicts %v, want 2 ok and 2 upgrade_header_dropped\nstderr: %s", counts, stderr.String())
	}
	if !strings.Contains(stderr.String(), " 0 dropped by kernel") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
