//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// live --workers N: N sockets in one fanout group, each with its own
// reassembly; the legs of one attempt may come through different sockets
// and still pair exactly. Every packet is written to -w once, and the
// summary counts the packets of every socket.
func TestLiveWorkers(t *testing.T) {
	r := startRig(t)
	for _, w := range []int{1, 3} {
		file := filepath.Join(t.TempDir(), "all.pcapng")
		l := startLive("--workers", fmt.Sprint(w), "-w", file, "--format", "json", "--duration", "6s", r.filter())
		r.clients(t, "/ws/ok", 6, 3)
		r.clients(t, "/ws/broken", 6, 3)
		if code := l.wait(t, 15*time.Second); code != exitNotOK {
			t.Errorf("--workers %d: exit %d; stderr:\n%s", w, code, l.stderr.String())
		}
		var got []jsonVerdict
		var sum SummaryLine
		for _, line := range strings.Split(strings.TrimSpace(l.stdout.String()), "\n") {
			if v, ok := decodeVerdictLine(t, line); ok {
				got = append(got, v)
			} else if s, ok := decodeSummaryLine(t, line); ok {
				sum = s
			}
		}
		if c := countCodes(got); c != "map[ok:6 upgrade_header_dropped:6]" {
			t.Errorf("--workers %d: verdicts %s", w, c)
		}
		for _, v := range got {
			if v.PairConfidence != "exact" {
				t.Errorf("--workers %d: %s paired %s", w, v.Path, v.PairConfidence)
			}
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		pk := packetsOf(t, b)
		if sum.KernelDrops == nil || *sum.KernelDrops != 0 || sum.TCPPackets == 0 || uint64(len(pk)) != sum.TCPPackets {
			t.Errorf("--workers %d: summary %d TCP packets, drops %v; %d packets written", w, sum.TCPPackets, sum.KernelDrops, len(pk))
		}
		if vs, _ := readBack(t, b); countCodes(vs) != "map[ok:6 upgrade_header_dropped:6]" {
			t.Errorf("--workers %d: the written file reads back as %s", w, countCodes(vs))
		}
	}
}
