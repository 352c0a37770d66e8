//go:build linux && amd64

package tlsplain

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// conversation is what one client connection's probes gave, by direction.
type conversation struct {
	data    [2]bytes.Buffer
	next    [2]uint64
	started [2]bool
	start   bool
	gaps    int
	ended   [2]bool
}

// collect reads the probe until it is closed, into conversations by the
// client's address.
func collect(p *Probe) (map[string]*conversation, chan struct{}) {
	convs := map[string]*conversation{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		var r Record
		for {
			if err := p.Read(&r); err == ErrEmpty {
				continue
			} else if err != nil {
				return
			}
			mu.Lock()
			c := convs[r.Remote.String()]
			if c == nil {
				c = &conversation{start: r.Start}
				convs[r.Remote.String()] = c
			}
			d := r.Dir
			if !c.started[d] {
				c.started[d], c.next[d] = true, r.Off
			}
			if r.Off != c.next[d] {
				c.gaps++
			}
			if r.Kind == KindEnd {
				c.ended[d] = true
			}
			c.data[d].Write(r.Data)
			c.next[d] = r.Off + uint64(len(r.Data))
			mu.Unlock()
		}
	}()
	return convs, done
}

// client is a TLS connection (Go's crypto/tls: its calls do not trap)
// that keeps the bytes it wrote and read.
type client struct {
	c            *tls.Conn
	br           *bufio.Reader
	wrote, rread bytes.Buffer
}

func dial(t *testing.T, port int) *client {
	t.Helper()
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{c: c}
	cl.br = bufio.NewReader(io.TeeReader(c, &cl.rread))
	return cl
}

// get sends a request and reads its response whole.
func (cl *client) get(t *testing.T, req string) *http.Response {
	t.Helper()
	cl.wrote.WriteString(req)
	if _, err := cl.c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (cl *client) addr() string { return cl.c.LocalAddr().String() }

// TestProbeNginx attaches to an nginx that is already serving (two
// workers, a connection open) and checks that every byte each client
// wrote and read comes through, in order, with the 4-tuple; that the
// open connection shows up from its middle; that the workers of a reload
// are followed; that SSL_free ends each connection.
func TestProbeNginx(t *testing.T) {
	nginx := requireProbes(t, "nginx")
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	os.WriteFile(filepath.Join(dir, "big"), big, 0o644)
	port := freePort(t)
	master := startNginx(t, nginx, dir, fmt.Sprintf(`    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s; ssl_certificate_key %s;
        location / { return 200 "hello\n"; }
        location = /big { root %s; }
    }
`, port, cert, key, dir))
	waitListen(t, port)

	before := dial(t, port)
	defer before.c.Close()
	before.get(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	before.wrote.Reset()
	before.rread.Reset()

	p, err := Open(Options{PIDs: []uint32{uint32(master)}})
	if err != nil {
		t.Fatal(err)
	}
	convs, done := collect(p)
	if n := len(p.Procs()); n != 3 {
		t.Errorf("%d processes traced, want the master and two workers: %+v", n, p.Procs())
	}

	before.get(t, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
	var clients []*client
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	} {
		c := dial(t, port)
		if r := c.get(t, req); r.StatusCode != 200 {
			t.Fatalf("%q: %s", req, r.Status)
		}
		c.get(t, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		c.c.Close()
		clients = append(clients, c)
	}

	// A reload: the master forks new workers, which serve from now on.
	old := children(master)
	syscall.Kill(master, syscall.SIGHUP)
	var fresh []int
	for i := 0; i < 100 && len(fresh) < 2; i++ {
		time.Sleep(50 * time.Millisecond)
		fresh = fresh[:0]
		for _, c := range children(master) {
			if !slices.Contains(old, c) {
				fresh = append(fresh, c)
			}
		}
	}
	if len(fresh) < 2 {
		t.Fatalf("no new workers after the reload (%v → %v)", old, children(master))
	}
	time.Sleep(200 * time.Millisecond) // the old workers stop accepting
	after := dial(t, port)
	after.get(t, "GET /after-reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	after.c.Close()
	clients = append(clients, after)

	time.Sleep(300 * time.Millisecond)
	st := p.Stats()
	p.Close()
	<-done
	t.Logf("stats %+v", st)

	if st.Forks < 2 || st.Drops != 0 || st.NoSocket != 0 || st.SkippedConns != 0 || st.Bytes < 1<<20 {
		t.Errorf("stats: %+v", st)
	}
	for _, c := range clients {
		cv := convs[c.addr()]
		if cv == nil {
			t.Errorf("%s: nothing captured", c.addr())
			continue
		}
		if !cv.start || cv.gaps != 0 || !cv.ended[Read] || !cv.ended[Write] {
			t.Errorf("%s: start %v, %d gaps, ended %v", c.addr(), cv.start, cv.gaps, cv.ended)
		}
		if !bytes.Equal(cv.data[Read].Bytes(), c.wrote.Bytes()) {
			t.Errorf("%s: read %q, the client wrote %q", c.addr(), trunc(cv.data[Read].Bytes()), trunc(c.wrote.Bytes()))
		}
		if !bytes.Equal(cv.data[Write].Bytes(), c.rread.Bytes()) {
			t.Errorf("%s: wrote %d bytes %q, the client read %d %q", c.addr(), cv.data[Write].Len(), trunc(cv.data[Write].Bytes()), c.rread.Len(), trunc(c.rread.Bytes()))
		}
	}
	// The connection open before the attach: from its middle, exactly.
	cv := convs[before.addr()]
	if cv == nil || cv.start || !bytes.Equal(cv.data[Read].Bytes(), before.wrote.Bytes()) || !bytes.Equal(cv.data[Write].Bytes(), before.rread.Bytes()) {
		t.Errorf("the connection open before the attach: %+v", cv)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// TestPause: with a budget nothing fits in, sampling goes to zero, the
// probes come off once no connection is being captured, and come back
// for new connections only.
func TestPause(t *testing.T) {
	nginx := requireProbes(t, "nginx")
	defer func(a int, f time.Duration) { pauseAfter, firstPause = a, f }(pauseAfter, firstPause)
	pauseAfter, firstPause = 1, time.Second
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	port := freePort(t)
	master := startNginx(t, nginx, dir, fmt.Sprintf(`    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s; ssl_certificate_key %s;
        location / { return 200 "hello\n"; }
    }
`, port, cert, key))
	waitListen(t, port)
	// Every call costs a millisecond, the budget is a thousandth of a CPU.
	p, err := Open(Options{PIDs: []uint32{uint32(master)}, Budget: 0.001, Costs: &Costs{Call: time.Millisecond, Skip: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	convs, done := collect(p)
	_ = convs
	deadline := time.Now().Add(15 * time.Second)
	var st Stats
	resumed := false
	for time.Now().Before(deadline) {
		c := dial(t, port)
		c.get(t, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		c.c.Close()
		st = p.Stats()
		if st.Pauses > 0 && !st.Paused {
			resumed = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Close()
	<-done
	t.Logf("stats %+v", st)
	if !resumed || st.Pauses == 0 || st.PausedFor < firstPause || st.SkippedConns == 0 {
		t.Errorf("no pause and resume within 15 s: %+v", st)
	}
}
