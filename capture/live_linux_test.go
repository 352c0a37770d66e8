//go:build linux

package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

func needRootLo(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	if _, err := net.InterfaceByName("lo"); err != nil {
		t.Skip("no lo interface")
	}
}

// liveServer accepts one connection at a time on network/addr and answers
// "hello" with "world".
type liveServer struct {
	ln   net.Listener
	port uint16
}

func newLiveServer(t *testing.T, network, addr string) *liveServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &liveServer{ln: ln, port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				c.Write([]byte("world"))
				io.Copy(io.Discard, c) // until the client closes
			}()
		}
	}()
	return s
}

// exchange connects to s, sends "hello", reads "world" and closes.
func (s *liveServer) exchange(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "world" {
		t.Fatalf("read %q: %v", buf, err)
	}
	c.Close()
	time.Sleep(20 * time.Millisecond) // let the FIN/ACK exchange finish
}

type liveSeg struct {
	src, dst   string
	sport      uint16
	dport      uint16
	seq, ack   uint32
	flags      string
	payload    string
	ifindex    int
	linkLength int
}

func (s liveSeg) key() string {
	return fmt.Sprintf("%s:%d>%s:%d seq=%d ack=%d %s len=%d", s.src, s.sport, s.dst, s.dport, s.seq, s.ack, s.flags, len(s.payload))
}

func tcpFlagString(p *Packet) string {
	var b strings.Builder
	for _, f := range []struct {
		on bool
		c  byte
	}{{p.TCP.SYN, 'S'}, {p.TCP.FIN, 'F'}, {p.TCP.RST, 'R'}, {p.TCP.PSH, 'P'}, {p.TCP.ACK, 'A'}} {
		if f.on {
			b.WriteByte(f.c)
		}
	}
	return b.String()
}

// drain reads packets until the capture has been quiet for its timeout.
func drainLive(t *testing.T, l *Live, w *Writer) []liveSeg {
	t.Helper()
	var out []liveSeg
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p, err := l.Next()
		if err == ErrTimeout {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(l.Raw()) != p.CI.CaptureLength {
			t.Errorf("Raw() has %d bytes, CaptureLength %d", len(l.Raw()), p.CI.CaptureLength)
		}
		if w != nil {
			if err := w.WritePacket(p.CI, l.Raw()); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, liveSeg{
			src: p.Net.Src().String(), dst: p.Net.Dst().String(),
			sport: uint16(p.TCP.SrcPort), dport: uint16(p.TCP.DstPort),
			seq: p.TCP.Seq, ack: p.TCP.Ack, flags: tcpFlagString(p), payload: string(p.TCP.Payload),
			ifindex: p.CI.InterfaceIndex, linkLength: len(l.Raw()),
		})
	}
	t.Fatal("capture never went quiet")
	return nil
}

// checkOnce checks that segs hold exactly one hello/world exchange with
// the server on port, each segment once.
func checkSegmentsOnce(t *testing.T, segs []liveSeg, port uint16) {
	t.Helper()
	seen := map[string]int{}
	var toServer, toClient string
	syn, synack, fin := 0, 0, 0
	for _, s := range segs {
		if s.sport != port && s.dport != port {
			t.Errorf("segment of another port delivered: %s", s.key())
			continue
		}
		seen[s.key()]++
		if s.dport == port {
			toServer += s.payload
		} else {
			toClient += s.payload
		}
		switch {
		case s.flags == "S":
			syn++
		case s.flags == "SA":
			synack++
		case strings.Contains(s.flags, "F"):
			fin++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("segment seen %d times: %s", n, k)
		}
	}
	if syn != 1 || synack != 1 || fin != 2 {
		t.Errorf("SYN %d, SYN-ACK %d, FIN %d; want 1, 1, 2", syn, synack, fin)
	}
	if toServer != "hello" || toClient != "world" {
		t.Errorf("payloads %q / %q, want hello / world", toServer, toClient)
	}
	if t.Failed() {
		keys := make([]string, 0, len(segs))
		for _, s := range segs {
			keys = append(keys, s.key())
		}
		t.Logf("segments:\n%s", strings.Join(keys, "\n"))
	}
}

func TestLiveLoopback(t *testing.T) {
	needRootLo(t)
	for _, c := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			watched := newLiveServer(t, c.network, c.addr)
			other := newLiveServer(t, c.network, c.addr)
			l, err := OpenLive("lo", LiveOptions{Filter: fmt.Sprintf("port %d", watched.port), Timeout: 300 * time.Millisecond, BufferMB: 4, Promisc: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.LinkType() != layers.LinkTypeEthernet || l.Name() != "lo" {
				t.Errorf("LinkType %v, Name %q", l.LinkType(), l.Name())
			}
			watched.exchange(t)
			other.exchange(t)
			segs := drainLive(t, l, nil)
			checkSegmentsOnce(t, segs, watched.port)
			for _, s := range segs {
				if s.linkLength < 14+20+20 {
					t.Errorf("frame of %d bytes: no Ethernet header?", s.linkLength)
				}
			}
			st := l.Stats()
			if st.TCP != uint64(len(segs)) || st.Received < st.TCP || st.Packets < st.TCP || st.KernelDrops != 0 || st.Bytes == 0 {
				t.Errorf("stats %+v for %d segments", st, len(segs))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if p, err := l.Next(); err != io.EOF || p != nil {
				t.Errorf("Next after Close: %v, %v; want io.EOF", p, err)
			}
			if l.Raw() != nil {
				t.Errorf("Raw after EOF: %d bytes", len(l.Raw()))
			}
			if st2 := l.Stats(); st2.TCP != st.TCP {
				t.Errorf("stats after Close: %+v", st2)
			}
			if err := l.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestLiveAny(t *testing.T) {
	needRootLo(t)
	for _, c := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			watched := newLiveServer(t, c.network, c.addr)
			other := newLiveServer(t, c.network, c.addr)
			l, err := OpenLive("any", LiveOptions{Filter: fmt.Sprintf("port %d", watched.port), Timeout: 300 * time.Millisecond, BufferMB: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.LinkType() != layers.LinkTypeRaw || l.Name() != "any" {
				t.Errorf("LinkType %v, Name %q", l.LinkType(), l.Name())
			}
			watched.exchange(t)
			other.exchange(t)
			segs := drainLive(t, l, nil)
			checkSegmentsOnce(t, segs, watched.port)
			lo, _ := net.InterfaceByName("lo")
			for _, s := range segs {
				if s.ifindex != lo.Index {
					t.Errorf("segment on interface %d, want lo (%d)", s.ifindex, lo.Index)
				}
			}
		})
	}
	t.Run("default", func(t *testing.T) {
		// "" is "any"
		l, err := OpenLive("", LiveOptions{Filter: "port 1", Timeout: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.Name() != "any" {
			t.Errorf("Name %q", l.Name())
		}
		if _, err := l.Next(); err != ErrTimeout {
			t.Errorf("Next with no traffic: %v, want ErrTimeout", err)
		}
	})
}

// ClientPorts and Upstreams narrow what is captured; the user's filter is
// ANDed on top.
func TestLiveWatched(t *testing.T) {
	needRootLo(t)
	client := newLiveServer(t, "tcp4", "127.0.0.1:0")
	upstream := newLiveServer(t, "tcp4", "127.0.0.1:0")
	other := newLiveServer(t, "tcp4", "127.0.0.1:0")
	l, err := OpenLive("lo", LiveOptions{
		ClientPorts: []uint16{client.port},
		Upstreams:   []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), upstream.port)},
		Filter:      "host 127.0.0.1",
		Timeout:     300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !strings.Contains(l.Filter(), fmt.Sprintf("dst port %d", upstream.port)) {
		t.Errorf("Filter() = %q", l.Filter())
	}
	client.exchange(t)
	upstream.exchange(t)
	other.exchange(t)
	segs := drainLive(t, l, nil)
	var c, u []liveSeg
	for _, s := range segs {
		switch {
		case s.sport == client.port || s.dport == client.port:
			c = append(c, s)
		case s.sport == upstream.port || s.dport == upstream.port:
			u = append(u, s)
		default:
			t.Errorf("unwatched segment: %s", s.key())
		}
	}
	checkSegmentsOnce(t, c, client.port)
	checkSegmentsOnce(t, u, upstream.port)
}

// Close from another goroutine ends a Next that is waiting.
func TestLiveCloseWhileWaiting(t *testing.T) {
	needRootLo(t)
	l, err := OpenLive("lo", LiveOptions{Filter: "port 1", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Next()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("Next: %v, want io.EOF", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
}

// What Next returns can be written with Writer and read back.
func TestLiveWriter(t *testing.T) {
	needRootLo(t)
	srv := newLiveServer(t, "tcp4", "127.0.0.1:0")
	for _, iface := range []string{"lo", "any"} {
		t.Run(iface, func(t *testing.T) {
			l, err := OpenLive(iface, LiveOptions{Filter: fmt.Sprintf("port %d", srv.port), Timeout: 300 * time.Millisecond, Snaplen: 68})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			path := filepath.Join(t.TempDir(), "live.pcapng")
			w, err := CreateWriter(path, l.LinkType())
			if err != nil {
				t.Fatal(err)
			}
			srv.exchange(t)
			segs := drainLive(t, l, w)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if len(segs) < 8 {
				t.Fatalf("%d segments", len(segs))
			}
			for _, s := range segs {
				if s.linkLength > 68 {
					t.Errorf("snaplen 68: captured %d bytes", s.linkLength)
				}
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var back []string
			for {
				p, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				back = append(back, fmt.Sprintf("%d>%d %d", p.TCP.SrcPort, p.TCP.DstPort, p.TCP.Seq))
			}
			var want []string
			for _, s := range segs {
				want = append(want, fmt.Sprintf("%d>%d %d", s.sport, s.dport, s.seq))
			}
			if strings.Join(back, ",") != strings.Join(want, ",") {
				t.Errorf("read back %v, wrote %v", back, want)
			}
		})
	}
}

func TestLiveErrors(t *testing.T) {
	if _, err := OpenLive("lo", LiveOptions{Filter: "udp port 53"}); err == nil || !strings.Contains(err.Error(), `"udp" is not supported`) {
		t.Errorf("bad filter: %v", err)
	}
	// The error lists the interfaces there are.
	if _, err := OpenLive("no-such-if0", LiveOptions{}); err == nil || !strings.Contains(err.Error(), `no interface "no-such-if0" (the interfaces are lo, `) ||
		!strings.HasSuffix(err.Error(), ", any)") {
		t.Errorf("missing interface: %v", err)
	}
	if _, err := OpenLive("lo", LiveOptions{Snaplen: 1 << 20}); err == nil {
		t.Errorf("huge snaplen: no error")
	}
}

func TestLiveListInterfaces(t *testing.T) {
	ifs, err := ListInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	var lo, any bool
	for _, i := range ifs {
		if i.Name == "lo" {
			lo = true
			if !i.Loopback || !i.Up || i.Index == 0 {
				t.Errorf("lo: %+v", i)
			}
			found := false
			for _, a := range i.Addrs {
				if a == netip.MustParsePrefix("127.0.0.1/8") {
					found = true
				}
			}
			if !found {
				t.Errorf("lo addresses %v lack 127.0.0.1/8", i.Addrs)
			}
		}
		if i.Name == "any" {
			any = true
		}
	}
	if !lo || !any {
		t.Errorf("interfaces %+v: lo %v, any %v", ifs, lo, any)
	}
}

// ---------------------------------------------------------------------------
// privileges: dropping them in the test process would end the other live
// tests, so a child process (this test binary) does it.

const privChildEnv = "WSDIAG_PRIVDROP_CHILD"

func TestPrivDropRefusals(t *testing.T) {
	if err := DropPrivileges("root"); err != nil {
		t.Errorf("root: %v", err)
	}
	if err := DropPrivileges(""); err == nil {
		t.Errorf("empty user: no error")
	}
	if err := DropPrivileges("no-such-user-wsdiag"); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Errorf("unknown user: %v", err)
	}
	if err := DropPrivileges("0"); err == nil || !strings.Contains(err.Error(), "uid 0") {
		t.Errorf("uid 0 by number: %v", err)
	}
	if err := checkDropTarget("toor", 0); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("toor: %v", err)
	}
	if err := checkDropTarget("nobody", 65534); err != nil {
		t.Errorf("nobody: %v", err)
	}
	if os.Geteuid() != 0 {
		if err := DropPrivileges("root"); err != nil {
			t.Errorf("root when not root: %v", err)
		}
	}
}

func TestPrivDrop(t *testing.T) {
	needRootLo(t)
	if _, _, _, err := lookupUser("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestPrivDropChild$", "-test.v")
	cmd.Env = append(os.Environ(), privChildEnv+"=nobody")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	res := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "RESULT_") {
			res[strings.TrimPrefix(k, "RESULT_")] = v
		}
	}
	want := map[string]string{"uid": "65534", "euid": "65534", "gid": "65534", "groups": "[65534]", "regain": "refused", "newsocket": "refused", "capture": "ok"}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if res[k] != want[k] {
			t.Errorf("%s = %q, want %q", k, res[k], want[k])
		}
	}
	if t.Failed() {
		t.Logf("child output:\n%s", out)
	}
}

// TestPrivDropChild runs only as the child of TestPrivDrop.
func TestPrivDropChild(t *testing.T) {
	name := os.Getenv(privChildEnv)
	if name == "" {
		t.Skip("only run by TestPrivDrop")
	}
	srv := newLiveServer(t, "tcp4", "127.0.0.1:0")
	// open the capture first, then drop: the socket keeps working
	l, err := OpenLive("lo", LiveOptions{Filter: fmt.Sprintf("port %d", srv.port), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := DropPrivileges(name); err != nil {
		t.Fatal(err)
	}
	groups, _ := syscall.Getgroups()
	fmt.Printf("RESULT_uid=%d\nRESULT_euid=%d\nRESULT_gid=%d\nRESULT_groups=%v\n", os.Getuid(), os.Geteuid(), os.Getgid(), groups)
	if err := syscall.Setuid(0); err != nil {
		fmt.Println("RESULT_regain=refused")
	} else {
		fmt.Println("RESULT_regain=ROOT AGAIN")
	}
	if _, err := OpenLive("lo", LiveOptions{}); err != nil && (errors.Is(err, syscall.EPERM) || strings.Contains(err.Error(), "needs root")) {
		fmt.Println("RESULT_newsocket=refused")
	} else {
		fmt.Printf("RESULT_newsocket=%v\n", err)
	}
	srv.exchange(t)
	segs := drainLive(t, l, nil)
	checkSegmentsOnce(t, segs, srv.port)
	if !t.Failed() {
		fmt.Println("RESULT_capture=ok")
	}
	fmt.Println("RESULT_segments=" + strconv.Itoa(len(segs)))
}

// ---------------------------------------------------------------------------
// A real (non-loopback) interface: two network namespaces of our own joined
// by a veth pair. The capture runs in namespace A on its veth end, the
// server in B: outgoing packets are the other leg of the proxy and must be
// kept, each once.

// inNetns runs f on a thread that joined the named network namespace. The
// thread is never given back to the scheduler (it ends with the goroutine).
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func TestLiveVethKeepsOutgoing(t *testing.T) {
	needRootLo(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	id := strconv.Itoa(os.Getpid())
	nsA, nsB := "wsdiagA"+id, "wsdiagB"+id
	ipcmd := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, ns := range []string{nsA, nsB} {
		if err := ipcmd("netns", "add", ns); err != nil {
			t.Skip(err)
		}
		ns := ns
		t.Cleanup(func() { ipcmd("netns", "del", ns) })
	}
	for _, args := range [][]string{
		{"link", "add", "wsdva", "netns", nsA, "type", "veth", "peer", "name", "wsdvb", "netns", nsB},
		{"-n", nsA, "addr", "add", "10.231.0.1/24", "dev", "wsdva"},
		{"-n", nsB, "addr", "add", "10.231.0.2/24", "dev", "wsdvb"},
		{"-n", nsA, "link", "set", "wsdva", "up"},
		{"-n", nsB, "link", "set", "wsdvb", "up"},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
	} {
		if err := ipcmd(args...); err != nil {
			t.Fatal(err)
		}
	}

	var srv *liveServer
	if err := inNetns(nsB, func() error {
		ln, err := net.Listen("tcp4", "10.231.0.2:0")
		if err != nil {
			return err
		}
		srv = &liveServer{ln: ln, port: uint16(ln.Addr().(*net.TCPAddr).Port)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.ln.Close() })
	go func() {
		for {
			c, err := srv.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				c.Write([]byte("world"))
				io.Copy(io.Discard, c)
			}()
		}
	}()

	var veth, anyl *Live
	var vethIndex int
	if err := inNetns(nsA, func() error {
		var err error
		opt := LiveOptions{Filter: fmt.Sprintf("port %d", srv.port), Timeout: 300 * time.Millisecond, BufferMB: 2}
		if veth, err = OpenLive("wsdva", opt); err != nil {
			return err
		}
		if anyl, err = OpenLive("any", opt); err != nil {
			return err
		}
		ifc, err := net.InterfaceByName("wsdva")
		if err != nil {
			return err
		}
		vethIndex = ifc.Index
		// the client runs in A too
		c, err := net.DialTimeout("tcp4", srv.ln.Addr().String(), 2*time.Second)
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
		return nil
	}); err != nil {
		if veth != nil {
			veth.Close()
		}
		t.Fatal(err)
	}
	defer veth.Close()
	defer anyl.Close()
	if veth.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("veth link type %v", veth.LinkType())
	}
	t.Run("veth", func(t *testing.T) { checkSegmentsOnce(t, drainLive(t, veth, nil), srv.port) })
	t.Run("any", func(t *testing.T) {
		segs := drainLive(t, anyl, nil)
		checkSegmentsOnce(t, segs, srv.port)
		for _, s := range segs {
			if s.ifindex != vethIndex {
				t.Errorf("segment on interface %d, want %d", s.ifindex, vethIndex)
			}
		}
	})
}

func TestLiveNextNoAlloc(t *testing.T) {
	needRootLo(t)
	srv := newLiveServer(t, "tcp4", "127.0.0.1:0")
	l, err := OpenLive("lo", LiveOptions{Filter: fmt.Sprintf("port %d", srv.port), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 15; i++ {
		srv.exchange(t)
	}
	got := 0
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := l.Next(); err == nil {
			got++
		}
	})
	if got < 100 {
		t.Fatalf("only %d packets", got)
	}
	if allocs != 0 {
		t.Errorf("Next allocates %v times per packet", allocs)
	}
}

// TestLiveSetFilter: a filter replaced while the capture runs takes what
// it names from then on, and nothing the old one would have dropped.
func TestLiveSetFilter(t *testing.T) {
	needRootLo(t)
	a, b := newLiveServer(t, "tcp4", "127.0.0.1:0"), newLiveServer(t, "tcp4", "127.0.0.1:0")
	l, err := OpenLive("lo", LiveOptions{Filter: "tcp and port 0", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	time.Sleep(100 * time.Millisecond)
	a.exchange(t) // before: port 0 only, nothing of it
	if err := l.SetFilter(fmt.Sprintf("tcp and port %d", b.port)); err != nil {
		t.Fatal(err)
	}
	a.exchange(t)
	b.exchange(t)
	ports := map[uint16]int{}
	for _, s := range drainLive(t, l, nil) {
		ports[s.sport]++
		ports[s.dport]++
	}
	if ports[a.port] != 0 || ports[b.port] < 6 {
		t.Errorf("packets by port: %v; want none of %d, all of %d", ports, a.port, b.port)
	}
	if l.Filter() != fmt.Sprintf("tcp and port %d", b.port) {
		t.Errorf("Filter() = %q", l.Filter())
	}
	if err := l.SetFilter("udp port 53"); err == nil {
		t.Error("a filter it cannot compile was taken")
	}
}
