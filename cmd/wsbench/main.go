// Command wsbench holds wsdiag against tcpdump and tshark on the same
// large capture.
//
//	wsbench gen -o big.pcap [-n 1000000] [-seed 1]   write a synthetic capture
//	wsbench run [-wsdiag PATH] big.pcap               time wsdiag, tcpdump, tshark on it
//
// The capture is generated deterministically (same seed, same bytes) in
// the shape of the real nginx captures in testdata/captures.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/wsdiag/wsdiag/cmd/wsbench/synth"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wsbench gen -o FILE [-n PACKETS] [-seed N] | wsbench run [-wsdiag PATH] FILE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "gen":
		os.Exit(gen(os.Args[2:]))
	case "run":
		os.Exit(runAll(os.Args[2:]))
	}
	fmt.Fprintf(os.Stderr, "wsbench: unknown command %q\n", os.Args[1])
	os.Exit(2)
}

func gen(args []string) int {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	out := fs.String("o", "", "output pcap")
	n := fs.Int("n", 1000000, "packets")
	seed := fs.Int64("seed", 1, "random seed")
	fs.Parse(args)
	if *out == "" {
		fmt.Fprintln(os.Stderr, "wsbench gen: -o FILE is required")
		return 2
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 2
	}
	counts, err := synth.Write(f, *n, *seed)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 2
	}
	st, _ := os.Stat(*out)
	fmt.Printf("wrote %s: %d packets, %.1f MB; %d ok attempts, %d broken, %d plain GETs\n", *out, counts["packets"],
		float64(st.Size())/1e6, counts["ok"], counts["upgrade_header_dropped"], counts["plain"])
	return 0
}

// result is one tool's run.
type result struct {
	name   string
	wall   time.Duration
	user   time.Duration
	maxRSS int64 // KiB
	ok     bool
	note   string
}

func measure(name string, argv ...string) result {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := result{name: name, wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSS = ru.Maxrss
			r.user = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		code := cmd.ProcessState.ExitCode()
		// wsdiag exits 1 when some attempt is not ok: that is a result.
		r.ok = err == nil || name == "wsdiag" && code == 1
	}
	if !r.ok {
		r.note = strings.TrimSpace(lastLine(out.String()))
	}
	if name == "wsdiag" {
		r.note = summaryNote(out.Bytes())
	}
	return r
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func summaryNote(out []byte) string {
	var sum struct {
		Type     string         `json:"type"`
		Attempts int            `json:"attempts"`
		ByCode   map[string]int `json:"by_code"`
		Packets  int            `json:"packets"`
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if json.Unmarshal(lines[i], &sum) == nil && sum.Type == "summary" {
			return fmt.Sprintf("%d attempts %v", sum.Attempts, sum.ByCode)
		}
	}
	return "no summary line"
}

func runAll(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	wsdiag := fs.String("wsdiag", "wsdiag", "the wsdiag binary")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wsbench run [-wsdiag PATH] FILE")
		return 2
	}
	file := fs.Arg(0)
	st, err := os.Stat(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 2
	}
	packets := countPackets(file)
	mb := float64(st.Size()) / 1e6
	var rs []result
	rs = append(rs, measure("wsdiag", *wsdiag, "read", "--format", "json", "--progress", "never", file))
	if p, err := exec.LookPath("tcpdump"); err == nil {
		rs = append(rs, measure("tcpdump", p, "-r", file, "-w", "/dev/null"))
	}
	if p, err := exec.LookPath("tshark"); err == nil {
		rs = append(rs, measure("tshark", p, "-n", "-r", file, "-Y", "http.upgrade || websocket"))
	}
	fmt.Printf("file %s: %d packets, %.1f MB\n\n", file, packets, mb)
	fmt.Printf("%-8s %10s %12s %9s %10s  %s\n", "tool", "wall", "packets/s", "MB/s", "peak RSS", "note")
	for _, r := range rs {
		fmt.Printf("%-8s %10s %12.0f %9.1f %8.1f MB  %s\n", r.name, r.wall.Round(time.Millisecond),
			float64(packets)/r.wall.Seconds(), mb/r.wall.Seconds(), float64(r.maxRSS)/1024, r.note)
	}
	fmt.Println()
	for _, r := range rs[1:] {
		fmt.Printf("wsdiag/%s speed ratio: %.2f×\n", r.name, r.wall.Seconds()/rs[0].wall.Seconds())
	}
	return 0
}

// countPackets reads the pcap record headers (little-endian microsecond
// pcap, as gen writes), streaming: reading the whole file into memory
// would show in the tools' peak RSS, since a child started by fork shares
// the parent's pages until it execs.
func countPackets(file string) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	if _, err := r.Discard(24); err != nil {
		return 0
	}
	var hdr [16]byte
	n := 0
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return n
		}
		caplen := int(uint32(hdr[8]) | uint32(hdr[9])<<8 | uint32(hdr[10])<<16 | uint32(hdr[11])<<24)
		if _, err := r.Discard(caplen); err != nil {
			return n
		}
		n++
	}
}
