package reassembly_test

import (
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/reassembly"
)

// readInto feeds a real capture to an Assembler, tunnels included.
func readInto(t *testing.T, file string) *recSink {
	t.Helper()
	r, err := capture.Open(filepath.Join("../testdata/captures", file))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	asm, sink := newAsm()
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		asm.PacketVia(p.Net, p.TCP, p.CI, p.Cut, &p.Tunnel)
	}
	asm.Close()
	return sink
}

// The balancer's connections of the PROXY captures begin with a v1 or v2
// header: it is taken off, the request after it parsed, and every event
// of the connection names the original client (10.231.1.2, the client
// namespace); nginx's own upstream connections have none.
func TestProxyHeaderCaptures(t *testing.T) {
	client := netip.MustParseAddr("10.231.1.2")
	for _, c := range []struct {
		file          string
		version       uint8
		withHeader    int // requests after a PROXY header
		responsesSeen int // of those, answered on the same connection
	}{
		{"pp-v1-nginx.pcap", 1, 3, 3},
		{"pp-v2-nginx.pcap", 2, 3, 3},
		{"pp-v1-lb.pcap", 1, 3, 3},
		{"pp-v1-stream-haproxy.pcap", 1, 3, 3},
		// nginx answers the header itself, mostly before the request
		// arrives (then the answer is no request's)
		{"pp-unexpected-nginx.pcap", 1, 3, -1},
		{"pp-unexpected-v2-nginx.pcap", 2, 3, -1},
	} {
		t.Run(c.file, func(t *testing.T) {
			s := readInto(t, c.file)
			with := 0
			for _, r := range s.reqs {
				if r.Method != "GET" || r.Target != "/ws" && r.Target != "/nothere" {
					t.Errorf("request %s %s", r.Method, r.Target)
				}
				n := r.Node
				if n == nil || n.Proxy == nil {
					continue
				}
				with++
				if n.Proxy.Version != c.version || n.Proxy.Src.Addr() != client || n.Proxy.Dst != netip.MustParseAddrPort("10.231.1.1:80") || n.ProxyAt.After(r.Start) {
					t.Errorf("header %+v at %v, request at %v", *n.Proxy, n.ProxyAt, r.Start)
				}
			}
			answered := 0
			for _, r := range s.resps {
				if r.Node != nil && r.Node.Proxy != nil && r.Request != nil {
					answered++
				}
			}
			if with != c.withHeader || c.responsesSeen >= 0 && answered != c.responsesSeen {
				t.Errorf("%d requests after a PROXY header, %d answered; want %d, %d", with, answered, c.withHeader, c.responsesSeen)
			}
			for _, e := range s.ends {
				if e.HTTP && e.Node != nil && e.Node.ProxyBroken != "" {
					t.Errorf("broken header: %s", e.Node.ProxyBroken)
				}
			}
		})
	}
}

// A header that comes a byte at a time, or with the request in the same
// segment, reads the same; the client's request is not touched.
func TestProxyHeaderSplit(t *testing.T) {
	v1 := "PROXY TCP4 192.0.2.7 10.0.0.2 51234 8080\r\n"
	for _, pieces := range [][]string{
		{v1 + wsRequest},
		{v1, wsRequest},
		{"P", "ROXY", " TCP4 192.0.2.7 10.0", ".0.2 51234 8080\r", "\n" + wsRequest[:10], wsRequest[10:]},
	} {
		asm, s := newAsm()
		c := newConn(asm)
		c.handshake()
		for _, p := range pieces {
			c.client(p)
		}
		c.server(ws101)
		c.close()
		asm.Close()
		if len(s.reqs) != 1 || len(s.resps) != 1 || s.reqs[0].Target != "/ws" || s.resps[0].Status != 101 {
			t.Fatalf("%q: %d requests, %d responses", pieces, len(s.reqs), len(s.resps))
		}
		n := s.reqs[0].Node
		if n == nil || n.Proxy == nil || n.Proxy.Src != netip.MustParseAddrPort("192.0.2.7:51234") || s.resps[0].Node != n {
			t.Fatalf("%q: node %+v", pieces, n)
		}
		if len(s.ends) != 1 || s.ends[0].Node != n || !s.ends[0].Upgraded {
			t.Fatalf("%q: end %+v", pieces, s.ends)
		}
	}
}

// What only starts like a PROXY header goes to HTTP as it came, held
// bytes first; a malformed header is named, the bytes parsed as before.
func TestProxyHeaderNot(t *testing.T) {
	for _, c := range []struct {
		pieces []string
		target string
		broken bool
	}{
		{[]string{"P", "OST /ws HTTP/1.1\r\nHost: x\r\n\r\n"}, "/ws", false},
		{[]string{"PROXY TCP4 nonsense here\r\nGET /ws HTTP/1.1\r\n\r\n"}, "TCP4", true},
	} {
		asm, s := newAsm()
		conn := newConn(asm)
		conn.handshake()
		for _, p := range c.pieces {
			conn.client(p)
		}
		conn.close()
		asm.Close()
		if len(s.reqs) == 0 || s.reqs[0].Target != c.target {
			t.Fatalf("%q: requests %d", c.pieces, len(s.reqs))
		}
		n := s.reqs[0].Node
		if c.broken != (n != nil && n.ProxyBroken != "") || n != nil && n.Proxy != nil {
			t.Fatalf("%q: node %+v", c.pieces, n)
		}
	}
}

// The server's first bytes are never taken for a header, nor bytes after
// the first of a direction.
func TestProxyHeaderOnlyClientStart(t *testing.T) {
	asm, s := newAsm()
	c := newConn(asm)
	c.handshake()
	c.client(wsRequest)
	c.server("PROXY TCP4 192.0.2.7 10.0.0.2 51234 8080\r\n")
	c.close()
	asm.Close()
	if len(s.reqs) != 1 || s.reqs[0].Node != nil || len(s.ends) != 1 || s.ends[0].Node != nil {
		t.Fatalf("%d requests, node %+v", len(s.reqs), s.reqs[0].Node)
	}
}

// A snap length that cuts the header leaves it recorded as cut.
func TestProxyHeaderCut(t *testing.T) {
	asm, s := newAsm()
	c := newConn(asm)
	c.handshake()
	hdr := []byte("PROXY TCP4 192.0.2.7 10.0.0.2 51234 8080\r\n")
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 8080, Seq: 1001, Ack: 500001, ACK: true, PSH: true, Window: 65535}
	tcp.Payload = hdr[:20]
	tcp.SetInternalPortsForTesting()
	net := gopacket.NewFlow(layers.EndpointIPv4, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2})
	asm.Packet(net, tcp, gopacket.CaptureInfo{Timestamp: t0.Add(10e6), CaptureLength: 74, Length: 74 + len(hdr) - 20}, len(hdr)-20)
	asm.Close()
	if len(s.ends) != 1 || s.ends[0].Node == nil || s.ends[0].Node.ProxyBroken == "" {
		t.Fatalf("ends %+v", s.ends)
	}
}

// PacketVia: a connection that comes in a tunnel carries it on its events
// from the first on; one that does not carries no Node.
func TestTunnelOnEvents(t *testing.T) {
	s := readInto(t, "vxlan8472-haproxy.pcap")
	tunnelled := 0
	for _, r := range s.reqs {
		if r.Server.Port() != 9000 {
			if r.Node != nil {
				t.Errorf("client leg with node %+v", *r.Node)
			}
			continue
		}
		tunnelled++
		if r.Node == nil || r.Node.Tunnel.Kind != capture.TunnelVXLAN || r.Node.Tunnel.VNI != 1 || r.Node.Tunnel.Port != 8472 {
			t.Fatalf("upstream request without its tunnel: %+v", r.Node)
		}
	}
	ends := 0
	for _, e := range s.ends {
		if e.Server.Port() == 9000 && e.Node != nil && e.Node.Tunnel.Kind == capture.TunnelVXLAN {
			ends++
		}
	}
	if tunnelled != 3 || ends != 3 {
		t.Errorf("%d tunnelled requests, %d ends", tunnelled, ends)
	}
}

func TestNodeString(t *testing.T) {
	s := readInto(t, "pp-v2-nginx.pcap")
	var got string
	for _, r := range s.reqs {
		if r.Node != nil {
			got = r.Node.String()
			break
		}
	}
	if !strings.HasPrefix(got, "PROXY v2 from 10.231.1.2:") || !strings.HasSuffix(got, " to 10.231.1.1:80") {
		t.Errorf("%q", got)
	}
	s = readInto(t, "gre-nginx.pcap")
	for _, r := range s.reqs {
		if r.Node != nil {
			got = r.Node.String()
		}
	}
	if got != "in GRE key 1234 10.231.2.1 → 10.231.2.2" {
		t.Errorf("%q", got)
	}
	var none *reassembly.Node
	if none.String() != "" {
		t.Error("nil node")
	}
}

// TLS passed through by SNI: the balancer relays the ClientHello as it
// came, so each session's two legs share its random (what pairs them
// without keys); the ClientHello whose SNI matched no route has no twin.
func TestPassthroughClientRandom(t *testing.T) {
	for _, f := range []string{"tls-passthrough-haproxy.pcap", "tls-passthrough-stream.pcap"} {
		s := readInto(t, f)
		byRandom := map[[32]byte][]*reassembly.ConnEnd{}
		for _, e := range s.ends {
			if e.TLSInfo != nil && e.TLSInfo.ClientHello {
				byRandom[e.TLSInfo.ClientRandom] = append(byRandom[e.TLSInfo.ClientRandom], e)
			}
		}
		pairs, alone := 0, 0
		for _, es := range byRandom {
			switch len(es) {
			case 2:
				if es[0].TLSInfo.SNI != "app.example" || es[1].TLSInfo.SNI != "app.example" {
					t.Errorf("%s: pair with SNI %q, %q", f, es[0].TLSInfo.SNI, es[1].TLSInfo.SNI)
				}
				pairs++
			case 1:
				if es[0].TLSInfo.SNI != "other.example" {
					t.Errorf("%s: alone with SNI %q", f, es[0].TLSInfo.SNI)
				}
				alone++
			}
		}
		if pairs != 2 || alone != 1 {
			t.Errorf("%s: %d pairs, %d alone", f, pairs, alone)
		}
	}
}

type closeRec struct {
	*recSink
	closes []*reassembly.CloseOnly
}

func (c *closeRec) CloseOnly(e *reassembly.CloseOnly) { c.closes = append(c.closes, e) }

// Tunnels cut on idle while the capture holds nothing else of them: each
// FIN or RST comes as a CloseOnly event. nginx (proxy_read_timeout 5s)
// FINs both legs of each of the 3 tunnels within a millisecond and the
// peers FIN back; haproxy (timeout tunnel) FINs the client leg and resets
// the upstream leg.
func TestCloseOnlyIdleCut(t *testing.T) {
	for _, c := range []struct {
		file           string
		proxyCloses    int                  // FINs and RSTs the proxy sent
		upstreamCloses reassembly.CloseKind // how it closed the upstream legs
	}{
		{"idle-cut-nginx.pcap", 6, reassembly.CloseFIN},
		{"idle-cut-haproxy.pcap", 6, reassembly.CloseRST},
	} {
		r, err := capture.Open(filepath.Join("../testdata/captures", c.file))
		if err != nil {
			t.Fatal(err)
		}
		sink := &closeRec{recSink: &recSink{}}
		asm := reassembly.New(sink, reassembly.DefaultOptions)
		for {
			p, err := r.Next()
			if err != nil {
				break
			}
			asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
		}
		asm.Close()
		r.Close()
		if len(sink.reqs)+len(sink.resps)+len(sink.ends) != 0 {
			t.Errorf("%s: %d requests, %d responses, %d ends", c.file, len(sink.reqs), len(sink.resps), len(sink.ends))
		}
		proxy := 0
		var first, last time.Time
		for _, e := range sink.closes {
			fromProxy := e.From.Addr() == netip.MustParseAddr("10.231.1.1") || e.From.Addr() == netip.MustParseAddr("10.231.2.1")
			if !fromProxy {
				continue
			}
			proxy++
			if e.To.Port() == 9000 && e.Kind != c.upstreamCloses || e.To.Port() != 9000 && e.Kind != reassembly.CloseFIN {
				t.Errorf("%s: %s from %s to %s", c.file, e.Kind, e.From, e.To)
			}
			if first.IsZero() || e.Time.Before(first) {
				first = e.Time
			}
			if e.Time.After(last) {
				last = e.Time
			}
		}
		if proxy != c.proxyCloses || last.Sub(first) > 5*time.Millisecond {
			t.Errorf("%s: %d closes from the proxy over %v", c.file, proxy, last.Sub(first))
		}
	}
}
