package reassembly

import (
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/flow"
	"github.com/wsdiag/wsdiag/proto/proxyproto"
)

// What a connection says beyond its 4-tuple on a cluster node: the overlay
// tunnel its packets came in (capture.Tunnel), and the PROXY protocol
// header a load balancer wrote at its start, which is taken off before the
// bytes reach the HTTP parser (a request line follows it) and kept for the
// analysis: the original client's address, and a header a server did not
// expect.

// Node is a connection's tunnel and PROXY header. Events share it by
// pointer; a Node is never written once an event carries it (a change makes
// a new one).
type Node struct {
	// Tunnel is the overlay the connection's packets came in (the first
	// one seen, when there are several); Kind None when not tunnelled.
	Tunnel capture.Tunnel
	// Proxy is the PROXY header the client sent first, nil when none;
	// ProxyAt is when its last byte came.
	Proxy   *proxyproto.Header
	ProxyAt time.Time
	// ProxyBroken describes bytes that began like a PROXY header but are
	// none (malformed, or cut by the capture's snap length); "" otherwise.
	ProxyBroken string
	// ProxyAnswer is the server's answer that came before any request
	// after the PROXY header: a server that does not expect the header
	// answers it as a bad request line (nginx: 400 at once). Nil when none.
	ProxyAnswer *EarlyAnswer
}

// EarlyAnswer is a response that answered no request the capture holds.
type EarlyAnswer struct {
	Status int
	Reason string
	Server string // its Server header, "" when none
	At     time.Time
}

// proxyAnswered records resp, which answers no request, on a connection
// that began with a PROXY header.
func (s *stream) proxyAnswered(resp *Response) {
	n := s.node()
	if n == nil || n.Proxy == nil || n.ProxyAnswer != nil {
		return
	}
	srv, _ := resp.Headers.Get("Server")
	e := &EarlyAnswer{Status: resp.Status, Reason: resp.Reason, Server: srv, At: resp.Start}
	s.setNode(func(n *Node) { n.ProxyAnswer = e })
}

// String describes the node as evidence, e.g. "PROXY v1 from
// 10.0.1.2:49690 to 10.0.1.1:80, in VXLAN VNI 42 (UDP 4789) 10.0.2.1 →
// 10.0.2.2".
func (n *Node) String() string {
	if n == nil {
		return ""
	}
	var parts []string
	switch h := n.Proxy; {
	case h != nil && h.Local:
		parts = append(parts, "PROXY v"+strconv.Itoa(int(h.Version))+" LOCAL")
	case h != nil && h.Src.IsValid():
		parts = append(parts, "PROXY v"+strconv.Itoa(int(h.Version))+" from "+h.Src.String()+" to "+h.Dst.String())
	case h != nil:
		parts = append(parts, "PROXY v"+strconv.Itoa(int(h.Version))+" "+h.Family)
	case n.ProxyBroken != "":
		parts = append(parts, n.ProxyBroken)
	}
	if n.Tunnel.Kind != capture.TunnelNone {
		parts = append(parts, "in "+n.Tunnel.String())
	}
	return strings.Join(parts, ", ")
}

// nodeState is a stream's Node and, while a PROXY header is being read
// across segments, its parser. The Assembler holds it for the few streams
// that have one (stream.hasNode).
type nodeState struct {
	pub   *Node
	pp    *proxyproto.Parser
	ppDir flow.Dir // the direction pp reads
}

// ns returns the stream's nodeState, nil when it has none.
func (s *stream) ns() *nodeState {
	if !s.hasNode {
		return nil
	}
	return s.asm.nodes[s]
}

// nsMake returns the stream's nodeState, made if needed.
func (s *stream) nsMake() *nodeState {
	if ns := s.ns(); ns != nil {
		return ns
	}
	if s.asm.nodes == nil {
		s.asm.nodes = make(map[*stream]*nodeState)
	}
	ns := &nodeState{}
	s.asm.nodes[s], s.hasNode = ns, true
	return ns
}

// node returns the Node events carry, nil when none.
func (s *stream) node() *Node {
	if ns := s.ns(); ns != nil {
		return ns.pub
	}
	return nil
}

// setNode publishes a changed copy of the stream's Node.
func (s *stream) setNode(change func(*Node)) {
	ns := s.nsMake()
	n := &Node{}
	if ns.pub != nil {
		*n = *ns.pub
	}
	change(n)
	ns.pub = n
}

// proxyHeader runs the first bytes of direction d through the PROXY
// parser when they may start a header (first: nothing came before them),
// and returns the bytes left for HTTP: none while a header is incomplete,
// what follows a whole one, and otherwise the bytes as they came (with any
// the parser held before them).
func (s *stream) proxyHeader(d flow.Dir, data []byte, first bool, t time.Time) []byte {
	if first {
		// Only the client begins with a PROXY header, and only at the
		// connection's start (a capture that begins mid-connection has
		// no SYN, so either direction may be the client's).
		if s.roleKnown && d != s.clientDir || s.tls != nil || s.mid() || !proxyproto.Start(data) {
			return data
		}
		ns := s.nsMake()
		ns.pp, ns.ppDir = &proxyproto.Parser{}, d
	}
	ns := s.ns()
	if ns == nil || ns.pp == nil || ns.ppDir != d {
		return data
	}
	p := ns.pp
	st, n := p.Feed(data)
	switch st {
	case proxyproto.NeedMore:
		return nil
	case proxyproto.Done:
		ns.pp = nil
		h := p.Header()
		s.setNode(func(n *Node) { n.Proxy, n.ProxyAt = &h, t })
		return data[n:]
	case proxyproto.Malformed:
		s.setNode(func(n *Node) { n.ProxyBroken = p.Err().Error() })
	}
	ns.pp = nil
	if held := p.Held(); len(held) > 0 {
		return append(append([]byte(nil), held...), data...)
	}
	return data
}

// proxySeen reports whether the connection began with a PROXY header (or
// what looked like one): it is reported even when nothing followed it.
func (s *stream) proxySeen() bool {
	n := s.node()
	return n != nil && (n.Proxy != nil || n.ProxyBroken != "")
}

// proxyLost ends a PROXY header being read when its direction loses
// bytes (a hole, or a snap length cutting the segment): what it held is
// dropped, and the header recorded as cut.
func (s *stream) proxyLost(d flow.Dir) {
	ns := s.ns()
	if ns == nil || ns.pp == nil || ns.ppDir != d {
		return
	}
	ns.pp = nil
	s.setNode(func(n *Node) { n.ProxyBroken = "PROXY header cut by the capture" })
}

// tunnelNew gives a new connection the tunnel of the segment that opens it.
func (a *Assembler) tunnelNew(s *stream) {
	if a.via != nil {
		t := *a.via
		s.setNode(func(n *Node) { n.Tunnel = t })
	}
}

// PacketVia is Packet for a segment that came in an overlay tunnel (tun
// may be nil or of Kind None: not tunnelled); the connection keeps the
// first tunnel it is seen in.
func (a *Assembler) PacketVia(netFlow gopacket.Flow, tcp *layers.TCP, ci gopacket.CaptureInfo, cut int, tun *capture.Tunnel) {
	if tun == nil || tun.Kind == capture.TunnelNone {
		a.Packet(netFlow, tcp, ci, cut)
		return
	}
	a.via = tun // a connection this segment opens has it from its first event on
	a.Packet(netFlow, tcp, ci, cut)
	a.via = nil
	r := a.conns[connKey{netFlow, uint16(tcp.SrcPort), uint16(tcp.DstPort)}]
	if s := r.s; s != nil && !s.ended && (s.node() == nil || s.node().Tunnel.Kind == capture.TunnelNone) {
		t := *tun
		s.setNode(func(n *Node) { n.Tunnel = t })
	}
}
