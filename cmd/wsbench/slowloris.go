package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// slowloris opens -n connections to -addr, sends half a request on each
// (a header block that never ends) and holds them for -hold, then closes
// them all: a bounded slowloris-style flood for the live memory check.
func slowloris(args []string) int {
	fs := flag.NewFlagSet("slowloris", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8980", "server to flood (127.0.0.1 only)")
	n := fs.Int("n", 20000, "connections")
	rate := fs.Int("rate", 2000, "connections opened per second")
	hold := fs.Duration("hold", 40*time.Second, "how long the connections stay open once all are")
	fs.Parse(args)
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "wsbench slowloris: -addr must be a loopback HOST:PORT")
		return 2
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(*n+64) {
		lim.Cur = min(lim.Max, uint64(*n+64))
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if uint64(*n+64) > lim.Cur {
		fmt.Fprintf(os.Stderr, "wsbench slowloris: %d connections need more open files than the limit, %d (run several)\n", *n, lim.Cur)
		return 2
	}
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(max(1, *rate)))
	defer tick.Stop()
	start, failed := time.Now(), 0
	for i := 0; i < *n; i++ {
		<-tick.C
		c, err := net.DialTimeout("tcp", *addr, 2*time.Second)
		if err != nil {
			failed++
			continue
		}
		fmt.Fprintf(c, "GET /flood HTTP/1.1\r\nHost: proxy.example\r\nUser-Agent: slowloris/%d\r\nAccept: */*\r\nX-Pad: ", i)
		conns = append(conns, c)
	}
	fmt.Printf("slowloris: %d connections open, half a request each (%d failed) after %.1f s; holding %s\n", len(conns), failed, time.Since(start).Seconds(), *hold)
	time.Sleep(*hold)
	return 0
}
