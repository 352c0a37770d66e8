package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// slowlorisFlood is what slowloris does: -n connections to -addr opened
// at -rate a second, held -hold once all are.
type slowlorisFlood struct {
	addr       string
	n, rate    int
	hold       time.Duration
	conns      []net.Conn
	opened     time.Duration
	failedDial int
}

// slowloris opens -n connections to -addr, sends half a request on each
// (a header block that never ends) and holds them for -hold, then closes
// them all: a bounded slowloris-style flood for the live memory check.
func slowloris(args []string) int {
	var f slowlorisFlood
	fs := flag.NewFlagSet("slowloris", flag.ExitOnError)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8980", "server to flood (127.0.0.1 only)")
	fs.IntVar(&f.n, "n", 20000, "connections")
	fs.IntVar(&f.rate, "rate", 2000, "connections opened per second")
	fs.DurationVar(&f.hold, "hold", 40*time.Second, "how long the connections stay open once all are")
	fs.Parse(args)
	if host, _, err := net.SplitHostPort(f.addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "wsbench slowloris: -addr must be a loopback HOST:PORT")
		return 2
	}
	if limit := raiseOpenFiles(uint64(f.n + 64)); limit < uint64(f.n+64) {
		fmt.Fprintf(os.Stderr, "wsbench slowloris: %d connections need more open files than the limit, %d (run several)\n", f.n, limit)
		return 2
	}
	defer f.close()
	f.open()
	fmt.Printf("slowloris: %d connections open, half a request each (%d failed) after %.1f s; holding %s\n", len(f.conns), f.failedDial, f.opened.Seconds(), f.hold)
	time.Sleep(f.hold)
	return 0
}

// raiseOpenFiles raises the soft limit of open files towards want, as far
// as the hard limit allows, and returns the limit.
func raiseOpenFiles(want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < want {
		lim.Cur = min(lim.Max, want)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

// open dials the connections at the rate, each sending half a request.
func (f *slowlorisFlood) open() {
	f.conns = make([]net.Conn, 0, f.n)
	tick := time.NewTicker(time.Second / time.Duration(max(1, f.rate)))
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < f.n; i++ {
		<-tick.C
		c, err := net.DialTimeout("tcp", f.addr, 2*time.Second)
		if err != nil {
			f.failedDial++
			continue
		}
		fmt.Fprintf(c, "GET /flood HTTP/1.1\r\nHost: proxy.example\r\nUser-Agent: slowloris/%d\r\nAccept: */*\r\nX-Pad: ", i)
		f.conns = append(f.conns, c)
	}
	f.opened = time.Since(start)
}

func (f *slowlorisFlood) close() {
	for _, c := range f.conns {
		c.Close()
	}
}
