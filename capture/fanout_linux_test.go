//go:build linux

package capture

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// Two sockets in one fanout group share the connections: each segment
// reaches exactly one of them, and both directions of a connection (and
// its SYN and FIN) the same one.
func TestLiveFanout(t *testing.T) {
	needRootLo(t)
	srv := newLiveServer(t, "tcp4", "127.0.0.1:0")
	ls, err := OpenLiveFanout("lo", LiveOptions{Filter: fmt.Sprintf("port %d", srv.port), Timeout: 300 * time.Millisecond}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	if len(ls) != 2 {
		t.Fatalf("%d sockets", len(ls))
	}
	const conns = 40
	for i := 0; i < conns; i++ {
		srv.exchange(t)
	}
	segs := make([][]liveSeg, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			segs[i] = drainLive(t, l, nil)
		}()
	}
	wg.Wait()
	owner := map[uint16]int{} // client port → socket
	seen := map[string]bool{}
	for i, ss := range segs {
		for _, s := range ss {
			client := s.sport
			if client == srv.port {
				client = s.dport
			}
			if o, ok := owner[client]; ok && o != i {
				t.Errorf("connection from port %d split over sockets %d and %d (%s)", client, o, i, s.key())
			}
			owner[client] = i
			if seen[s.key()] {
				t.Errorf("segment seen twice: %s", s.key())
			}
			seen[s.key()] = true
		}
	}
	if len(owner) != conns {
		t.Errorf("%d connections captured, want %d", len(owner), conns)
	}
	counts := make([]int, len(ls))
	for _, o := range owner {
		counts[o]++
	}
	t.Logf("connections per socket: %v", counts)
	for i, c := range counts {
		if c == 0 {
			t.Errorf("socket %d got no connection of %d: the group does not spread them", i, conns)
		}
	}
	// Every connection whole: SYN, SYN-ACK, two FINs, the payloads.
	for _, ss := range segs {
		byConn := map[uint16][]liveSeg{}
		for _, s := range ss {
			c := s.sport
			if c == srv.port {
				c = s.dport
			}
			byConn[c] = append(byConn[c], s)
		}
		for _, cs := range byConn {
			checkSegmentsOnce(t, cs, srv.port)
		}
	}
}
