package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wsdiag/wsdiag/capture/synth"
)

// floods writes each memory flood (synth.Floods) as a pcap (into -dir,
// not kept unless -keep) and runs wsdiag read --max-memory on it, printing
// the peak RSS against the budget and whether the well-formed attempts
// mixed into the flood got their verdicts.
func floods(args []string) int {
	fs := flag.NewFlagSet("floods", flag.ExitOnError)
	wsdiag := fs.String("wsdiag", "wsdiag", "wsdiag binary")
	budget := fs.String("budget", "64M", "--max-memory for every run")
	slack := fs.Int("slack", 32, "MiB of peak RSS allowed above the budget")
	dir := fs.String("dir", os.TempDir(), "where the flood captures are written")
	keep := fs.Bool("keep", false, "keep the captures (and reuse kept ones)")
	only := fs.String("only", "", "comma-separated floods to run (default all: syn,slowloris,tunnels,tlshello,headercap,newconn)")
	scale := fs.Float64("scale", 1, "scale every flood's connection count")
	workers := fs.Int("workers", 0, "wsdiag --workers (0: its default)")
	fs.Parse(args)
	limit, err := sizeMiB(*budget)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench floods: -budget:", err)
		return 2
	}
	fmt.Printf("%-10s %8s %8s %7s %12s %8s %6s %-9s %s\n", "flood", "conns", "packets", "budget", "peak RSS", "within?", "wall", "verdicts", "evicted")
	bad := false
	for _, f := range synth.Floods {
		if *only != "" && !strings.Contains(","+*only+",", ","+f.Name+",") {
			continue
		}
		conns := int(float64(f.Conns) * *scale)
		name := filepath.Join(*dir, fmt.Sprintf("wsdiag-flood-%s-%d.pcap", f.Name, conns))
		counts, err := writeFlood(name, f, conns, *keep)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsbench floods:", err)
			return 2
		}
		argv := []string{*wsdiag, "read", "--max-memory", *budget, "--format", "json", "--progress", "never"}
		if *workers > 0 {
			argv = append(argv, "--workers", fmt.Sprint(*workers))
		}
		r := runFlood(append(argv, name))
		if !*keep {
			os.Remove(name)
		}
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "wsbench floods: %s: %v\n%s\n", f.Name, r.err, r.stderr)
			bad = true
			continue
		}
		within := r.maxRSS <= int64(limit+*slack)<<10
		right := r.byCode["ok"] == counts["ok"] && r.byCode["upgrade_header_dropped"] == counts["upgrade_header_dropped"] && r.others == 0
		verdicts := fmt.Sprintf("%d/%d", r.byCode["ok"]+r.byCode["upgrade_header_dropped"], counts["ok"]+counts["upgrade_header_dropped"])
		if r.others > 0 {
			verdicts += fmt.Sprintf(" (+%d wrong)", r.others)
		}
		fmt.Printf("%-10s %8d %8d %7s %8.1f MiB %8s %5.1fs %-9s %.0f MB: %s\n", f.Name, conns, counts["packets"], *budget,
			float64(r.maxRSS)/1024, yes(within), r.wall.Seconds(), verdicts, float64(r.evictedBytes)/1e6, r.evicted)
		if !within || !right {
			bad = true
		}
	}
	if bad {
		return 1
	}
	return 0
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// sizeMiB reads 64M or 1G as MiB.
func sizeMiB(s string) (int, error) {
	var n int
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil {
		return 0, fmt.Errorf("%q: want a size like 64M or 1G", s)
	}
	switch strings.ToUpper(unit) {
	case "M", "MB", "MIB":
		return n, nil
	case "G", "GB", "GIB":
		return n << 10, nil
	}
	return 0, fmt.Errorf("%q: want a size like 64M or 1G", s)
}

func writeFlood(name string, f synth.Flood, conns int, reuse bool) (map[string]int, error) {
	meta := name + ".json"
	if reuse {
		if b, err := os.ReadFile(meta); err == nil {
			var c map[string]int
			if json.Unmarshal(b, &c) == nil {
				if _, err := os.Stat(name); err == nil {
					return c, nil
				}
			}
		}
	}
	out, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	c, err := synth.WriteFlood(out, f, conns, 1)
	if err == nil {
		err = out.Close()
	}
	if err != nil {
		return nil, err
	}
	if reuse {
		b, _ := json.Marshal(c)
		os.WriteFile(meta, b, 0o644)
	} else {
		os.Remove(meta)
	}
	return c, nil
}

type floodRun struct {
	maxRSS       int64 // KiB
	wall         time.Duration
	byCode       map[string]int // verdicts on path /ws, the mixed-in attempts
	others       int            // verdicts on /ws with another code
	evictedBytes uint64
	evicted      string
	stderr       string
	err          error
}

// runFlood runs wsdiag, its JSON lines to a file (a pipe read here would
// take CPU from it), and reads the verdicts of the attempts on /ws.
func runFlood(argv []string) floodRun {
	r := floodRun{byCode: map[string]int{}}
	out, err := os.CreateTemp("", "wsbench-flood-*.jsonl")
	if err != nil {
		r.err = err
		return r
	}
	defer os.Remove(out.Name())
	defer out.Close()
	var stderr strings.Builder
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, &stderr
	start := time.Now()
	err = cmd.Run()
	r.wall = time.Since(start)
	r.stderr = stderr.String()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && cmd.ProcessState != nil {
		r.maxRSS = ru.Maxrss
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		err = nil // some verdict was not ok: the broken attempts
	}
	if err != nil {
		r.err = err
		return r
	}
	out.Seek(0, 0)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l struct {
			Type         string            `json:"type"`
			Code         string            `json:"code"`
			Path         string            `json:"path"`
			EvictedBytes uint64            `json:"evicted_bytes"`
			MemEvicted   map[string]uint64 `json:"mem_evicted"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch {
		case l.Type == "verdict" && l.Path == "/ws":
			if l.Code == "ok" || l.Code == "upgrade_header_dropped" {
				r.byCode[l.Code]++
			} else {
				r.others++
			}
		case l.Type == "summary":
			r.evictedBytes = l.EvictedBytes
			var parts []string
			for _, k := range []string{"quiet_conns", "conns", "tls", "pending"} {
				if v := l.MemEvicted[k]; v > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", k, v))
				}
			}
			r.evicted = strings.Join(parts, ", ")
		}
	}
	return r
}

// genFlood writes one flood (wsbench gen -flood NAME) and prints its
// counts as one JSON object.
func genFlood(out, name string, conns int, seed int64) int {
	f, ok := synth.FloodByName(name)
	if !ok || out == "" {
		fmt.Fprintf(os.Stderr, "wsbench gen: unknown flood %q or no -o FILE\n", name)
		return 2
	}
	w, err := os.Create(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 2
	}
	c, err := synth.WriteFlood(w, f, conns, seed)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 2
	}
	b, _ := json.Marshal(c)
	fmt.Println(string(b))
	return 0
}
