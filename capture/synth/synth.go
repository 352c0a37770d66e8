// Package synth writes large synthetic captures shaped like the real
// nginx captures in testdata/captures, for benchmarks and for the floods
// that test memory bounds (flood.go). The same seed gives the same bytes.
// It imports nothing of ours, so that the benchmarks of capture and
// reassembly, as well as cmd/wsbench and cmd/wsdiag, can use it.
package synth

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand"
	"net"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The synthetic workload copies the shape of the real nginx 1.22 captures
// in testdata/captures: the same header blocks (nginx-defaults for broken
// attempts, correct for upgraded ones), both legs, an ACK for every data
// segment, small masked client frames echoed by the backend, keep-alive
// plain GETs that nginx forwards as one HTTP/1.0 connection each.

const (
	proxyPort   = 8080
	backendPort = 9001
)

// pkt is one segment of a script: which connection, which direction, flags
// and payload.
type pkt struct {
	c       *tconn
	fromSrv bool
	flags   uint8 // tcpSYN|tcpACK|tcpFIN
	payload []byte
}

const (
	tcpSYN = 1 << iota
	tcpACK
	tcpFIN
)

// tconn is one TCP connection's addresses and sequence numbers.
type tconn struct {
	cli, srv     net.IP
	cport, sport uint16
	cseq, sseq   uint32
}

type synth struct {
	rng      *rand.Rand
	nextPort uint16
	nextCli  uint32
	written  int
	target   int
	now      time.Time
	eth      layers.Ethernet
	ip       layers.IPv4
	tcp      layers.TCP
	buf      gopacket.SerializeBuffer
	w        *pcapgo.Writer
	counts   map[string]int
	// proxy and backend are the ports of the proxy and its backend.
	proxy, backend uint16
}

func newSynth(w io.Writer, target int, seed int64) (*synth, error) {
	s := &synth{rng: rand.New(rand.NewSource(seed)), nextPort: 20000, target: target,
		now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), buf: gopacket.NewSerializeBuffer(), counts: map[string]int{}, proxy: proxyPort, backend: backendPort}
	s.eth = layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, EthernetType: layers.EthernetTypeIPv4}
	s.ip = layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment}
	s.w = pcapgo.NewWriter(w)
	return s, s.w.WriteFileHeader(65535, layers.LinkTypeEthernet)
}

func (s *synth) port() uint16 {
	s.nextPort++
	if s.nextPort > 60000 {
		s.nextPort = 20000
	}
	return s.nextPort
}

// clientIP spreads clients over 10.x.y.z so leg A has many hosts; the
// proxy and backend live on 127.0.0.1 as in the real captures.
func (s *synth) clientIP() net.IP {
	s.nextCli++
	return net.IPv4(10, byte(s.nextCli>>16), byte(s.nextCli>>8), byte(s.nextCli)|1).To4()
}

func (s *synth) newConn(cli net.IP, srvPort uint16) *tconn {
	return &tconn{cli: cli, srv: net.IPv4(127, 0, 0, 1).To4(), cport: s.port(), sport: srvPort,
		cseq: s.rng.Uint32(), sseq: s.rng.Uint32()}
}

func handshake(c *tconn) []pkt {
	return []pkt{{c, false, tcpSYN, nil}, {c, true, tcpSYN | tcpACK, nil}, {c, false, tcpACK, nil}}
}

// data is a data segment and the receiver's ACK.
func data(c *tconn, fromSrv bool, b []byte) []pkt {
	return []pkt{{c, fromSrv, tcpACK, b}, {c, !fromSrv, tcpACK, nil}}
}

func closeConn(c *tconn, srvFirst bool) []pkt {
	return []pkt{{c, srvFirst, tcpFIN | tcpACK, nil}, {c, !srvFirst, tcpFIN | tcpACK, nil}, {c, srvFirst, tcpACK, nil}}
}

func (s *synth) key() string {
	var k [16]byte
	s.rng.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

func wsRequestA(key string, n int) []byte {
	return []byte("GET /ws HTTP/1.1\r\nHost: proxy.example:8080\r\nUser-Agent: wsbench/1 (n=" + fmt.Sprint(n) + ")\r\nConnection: Upgrade\r\n" +
		"Origin: http://proxy.example:8080\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n\r\n")
}

func wsRequestBGood(key string, n int) []byte {
	return []byte("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nHost: proxy.example\r\nUser-Agent: wsbench/1 (n=" + fmt.Sprint(n) +
		")\r\nOrigin: http://proxy.example:8080\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n")
}

func wsRequestBBroken(key string, n int) []byte {
	return []byte("GET /ws HTTP/1.0\r\nHost: 127.0.0.1:9001\r\nConnection: close\r\nUser-Agent: wsbench/1 (n=" + fmt.Sprint(n) +
		")\r\nOrigin: http://proxy.example:8080\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n")
}

// accept is the Sec-WebSocket-Accept a server answers key with (RFC 6455
// §4.2.2): written here rather than taken from analyze, so that the
// generator depends on nothing of ours and the library's own tests may
// use it.
func accept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func switching(key string, nginx bool) []byte {
	srv := ""
	if nginx {
		srv = "Server: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\n"
	}
	return []byte("HTTP/1.1 101 Switching Protocols\r\n" + srv + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept(key) + "\r\n\r\n")
}

const badRequestB = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\nContent-Length: 12\r\n\r\nBad Request\n"
const badRequestA = "HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\nConnection: keep-alive\r\nSec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n\r\nBad Request\n"

// frame builds a WebSocket text frame; client frames are masked.
func frame(payload []byte, masked bool, opcode byte) []byte {
	b := []byte{0x80 | opcode}
	n := len(payload)
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch {
	case n < 126:
		b = append(b, mbit|byte(n))
	case n < 65536:
		b = append(b, mbit|126, byte(n>>8), byte(n))
	default:
		b = append(b, mbit|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if masked {
		mask := []byte{0x12, 0x34, 0x56, 0x78}
		b = append(b, mask...)
		for i, c := range payload {
			b = append(b, c^mask[i%4])
		}
		return b
	}
	return append(b, payload...)
}

// wsAttempt scripts one attempt on both legs: ok with a session of frames
// frames each way, or broken the way nginx's defaults break it.
func (s *synth) wsAttempt(ok bool, frames int) []pkt {
	n := s.written
	key := s.key()
	a := s.newConn(s.clientIP(), s.proxy)
	b := s.newConn(net.IPv4(127, 0, 0, 1).To4(), s.backend)
	var p []pkt
	p = append(p, handshake(a)...)
	p = append(p, data(a, false, wsRequestA(key, n))...)
	p = append(p, handshake(b)...)
	if !ok {
		p = append(p, data(b, false, wsRequestBBroken(key, n))...)
		p = append(p, data(b, true, []byte(badRequestB))...)
		p = append(p, closeConn(b, true)...)
		p = append(p, data(a, true, []byte(badRequestA))...)
		p = append(p, closeConn(a, false)...)
		s.counts["upgrade_header_dropped"]++
		return p
	}
	p = append(p, data(b, false, wsRequestBGood(key, n))...)
	p = append(p, data(b, true, switching(key, false))...)
	p = append(p, data(a, true, switching(key, true))...)
	msg := []byte("hello from wsbench, message payload")
	cf, sf := frame(msg, true, 1), frame(msg, false, 1)
	for i := 0; i < frames; i++ {
		p = append(p, data(a, false, cf)...)
		p = append(p, data(b, false, cf)...)
		p = append(p, data(b, true, sf)...)
		p = append(p, data(a, true, sf)...)
	}
	closeMasked, closePlain := frame([]byte{0x03, 0xe8}, true, 8), frame([]byte{0x03, 0xe8}, false, 8)
	p = append(p, data(a, false, closeMasked)...)
	p = append(p, data(b, false, closeMasked)...)
	p = append(p, data(b, true, closePlain)...)
	p = append(p, data(a, true, closePlain)...)
	p = append(p, closeConn(b, true)...)
	p = append(p, closeConn(a, false)...)
	s.counts["ok"]++
	return p
}

// plainKeepAlive scripts a client connection with n GETs, each forwarded
// on its own upstream connection (nginx's HTTP/1.0 default).
func (s *synth) plainKeepAlive(n int) []pkt {
	a := s.newConn(s.clientIP(), proxyPort)
	p := handshake(a)
	for i := 0; i < n; i++ {
		b := s.newConn(net.IPv4(127, 0, 0, 1).To4(), backendPort)
		p = append(p, data(a, false, []byte("GET /health HTTP/1.1\r\nHost: proxy.example:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"))...)
		p = append(p, handshake(b)...)
		p = append(p, data(b, false, []byte("GET /health HTTP/1.0\r\nHost: 127.0.0.1:9001\r\nConnection: close\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"))...)
		p = append(p, data(b, true, []byte("HTTP/1.0 200 OK\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nok\n"))...)
		p = append(p, closeConn(b, true)...)
		p = append(p, data(a, true, []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n"))...)
	}
	p = append(p, closeConn(a, false)...)
	s.counts["plain"] += n
	return p
}

// next picks the next script of the workload mix.
func (s *synth) next() []pkt {
	switch r := s.rng.Intn(100); {
	case r < 40:
		return s.wsAttempt(true, 2+s.rng.Intn(6))
	case r < 70:
		return s.wsAttempt(false, 0)
	case r < 72:
		return s.wsAttempt(true, 500+s.rng.Intn(1500)) // a long session
	default:
		return s.plainKeepAlive(1 + s.rng.Intn(8))
	}
}

// run writes packets until target, interleaving concurrent scripts.
func (s *synth) run(concurrency int) error {
	active := make([][]pkt, 0, concurrency)
	pending := 0 // packets scripted but not yet written
	for s.written < s.target {
		// Start new scripts only while the total stays near the target:
		// every started script is finished, so attempts are complete.
		for len(active) < concurrency && s.written+pending < s.target {
			sc := s.next()
			pending += len(sc)
			active = append(active, sc)
		}
		if len(active) == 0 {
			break
		}
		for i := 0; i < len(active); {
			p := active[i][0]
			active[i] = active[i][1:]
			if err := s.emit(p); err != nil {
				return err
			}
			pending--
			if len(active[i]) == 0 {
				active[i] = active[len(active)-1]
				active = active[:len(active)-1]
				continue
			}
			i++
		}
	}
	// finish what is in flight so every attempt is complete
	for _, a := range active {
		for _, p := range a {
			if err := s.emit(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *synth) emit(p pkt) error {
	c := p.c
	s.now = s.now.Add(time.Duration(5+s.rng.Intn(20)) * time.Microsecond)
	src, dst, sp, dp := c.cli, c.srv, c.cport, c.sport
	seq, ack := &c.cseq, c.sseq
	if p.fromSrv {
		src, dst, sp, dp = c.srv, c.cli, c.sport, c.cport
		seq, ack = &c.sseq, c.cseq
	}
	s.ip.SrcIP, s.ip.DstIP = src, dst
	s.tcp = layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: *seq, Window: 512,
		SYN: p.flags&tcpSYN != 0, ACK: p.flags&tcpACK != 0, FIN: p.flags&tcpFIN != 0, PSH: len(p.payload) > 0}
	if s.tcp.ACK {
		s.tcp.Ack = ack
	}
	if err := gopacket.SerializeLayers(s.buf, gopacket.SerializeOptions{FixLengths: true}, &s.eth, &s.ip, &s.tcp, gopacket.Payload(p.payload)); err != nil {
		return err
	}
	*seq += uint32(len(p.payload))
	if p.flags&(tcpSYN|tcpFIN) != 0 {
		*seq++
	}
	d := s.buf.Bytes()
	s.written++
	return s.w.WritePacket(gopacket.CaptureInfo{Timestamp: s.now, CaptureLength: len(d), Length: len(d)}, d)
}

// Write writes a pcap of about packets packets (every attempt started is
// finished, so a few more) and returns counts by kind: "packets", "ok",
// "upgrade_header_dropped" (the verdicts wsdiag must give) and "plain".
func Write(w io.Writer, packets int, seed int64) (map[string]int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	s, err := newSynth(bw, packets, seed)
	if err != nil {
		return nil, err
	}
	if err := s.run(256); err != nil {
		return nil, err
	}
	s.counts["packets"] = s.written
	return s.counts, bw.Flush()
}
