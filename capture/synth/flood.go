package synth

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Floods: captures that try to run wsdiag out of memory, each a number of
// hostile connections that all stay open, with well-formed attempts (half
// correct, half broken the nginx-defaults way, on path /ws) mixed in, whose
// verdicts must stay right. The ports are 8900 (proxy) and 9900 (backend),
// so that a replay on lo can be told from other traffic.

// Flood names a kind of flood, the default number of hostile connections
// and what each one does.
type Flood struct {
	Name  string
	Conns int
	What  string
	// script is one hostile connection's packets.
	script func(s *synth, i int) []pkt
}

// Floods are the kinds of flood WriteFlood knows: the hostile loads a
// memory budget must hold against (wsbench floods runs each).
var Floods = []Flood{
	{"syn", 1000000, "1 M SYNs, never answered", floodSYN},
	{"slowloris", 500000, "500 k connections that each send half a request", floodSlowloris},
	{"tunnels", 100000, "100 k upgraded tunnels left idle", floodTunnel},
	{"tlshello", 200000, "200 k TLS ClientHellos, the handshake never finished", floodHello},
	{"headercap", 50000, "50 k header blocks just under the 32 KiB cap, never ended", floodHeaderCap},
	{"newconn", 1000000, "1 M packets, each opening a new connection (no SYN)", floodNewConn},
}

// FloodByName finds a flood.
func FloodByName(name string) (Flood, bool) {
	for _, f := range Floods {
		if f.Name == name {
			return f, true
		}
	}
	return Flood{}, false
}

const (
	floodProxy   = 8900
	floodBackend = 9900
	// mixEvery: one well-formed attempt starts every this many hostile
	// connections; its packets go out one after each hostile connection's.
	mixEvery = 500
)

func (s *synth) floodConn() *tconn { return s.newConn(s.clientIP(), floodProxy) }

func floodSYN(s *synth, i int) []pkt {
	return []pkt{{s.floodConn(), false, tcpSYN, nil}}
}

func floodSlowloris(s *synth, i int) []pkt {
	c := s.floodConn()
	half := fmt.Sprintf("GET /flood HTTP/1.1\r\nHost: proxy.example\r\nUser-Agent: slowloris/%d\r\nAccept: */*\r\nX-Pad: ", i)
	return append(handshake(c), data(c, false, []byte(half))...)
}

func floodTunnel(s *synth, i int) []pkt {
	c := s.floodConn()
	key := s.key()
	req := []byte("GET /tunnel HTTP/1.1\r\nHost: proxy.example\r\nUser-Agent: tunnel/1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n")
	p := append(handshake(c), data(c, false, req)...)
	return append(p, data(c, true, switching(key, true))...)
}

func floodHello(s *synth, i int) []pkt {
	c := s.floodConn()
	return append(handshake(c), data(c, false, clientHello(s, fmt.Sprintf("host%d.example", i)))...)
}

// headerCapBlock is a header block of 32 KiB less 200 bytes that never ends.
var headerCapBlock = func() []byte {
	var b bytes.Buffer
	b.WriteString("GET /flood HTTP/1.1\r\nHost: proxy.example\r\n")
	for i := 0; b.Len() < 32<<10-200; i++ {
		fmt.Fprintf(&b, "X-Filler-%04d: %s\r\n", i, bytes.Repeat([]byte{'a'}, 100))
	}
	return b.Bytes()[:32<<10-200]
}()

func floodHeaderCap(s *synth, i int) []pkt {
	c := s.floodConn()
	p := handshake(c)
	h := len(headerCapBlock) / 2
	p = append(p, data(c, false, headerCapBlock[:h])...)
	return append(p, data(c, false, headerCapBlock[h:])...)
}

func floodNewConn(s *synth, i int) []pkt {
	return []pkt{{s.floodConn(), false, tcpACK, []byte("GET /flood HTTP/1.1\r\nHost: proxy.example\r\n")}}
}

// clientHello is a TLS record holding a ClientHello offering TLS 1.3 and
// 1.2, for sni.
func clientHello(s *synth, sni string) []byte {
	var body []byte
	body = append(body, 3, 3) // legacy version
	rnd := make([]byte, 32)
	s.rng.Read(rnd)
	body = append(body, rnd...)
	body = append(body, 32)
	body = append(body, rnd...) // session id
	suites := []uint16{0x1301, 0x1302, 0x1303, 0xc02f, 0xc030}
	body = append(body, 0, byte(2*len(suites)))
	for _, c := range suites {
		body = append(body, byte(c>>8), byte(c))
	}
	body = append(body, 1, 0) // compression: null
	var ext []byte
	name := []byte(sni)
	sniExt := []byte{0, byte(len(name) + 3), 0, byte(len(name) >> 8), byte(len(name))}
	sniExt = append(sniExt, name...)
	ext = append(ext, 0, 0, byte(len(sniExt)>>8), byte(len(sniExt)))
	ext = append(ext, sniExt...)
	ext = append(ext, 0, 43, 0, 5, 4, 3, 4, 3, 3) // supported_versions
	ext = append(ext, 0, 16, 0, 5, 0, 3, 2, 'h', '2')
	body = append(body, byte(len(ext)>>8), byte(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{0x16, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

// WriteFlood writes flood f with conns hostile connections (0: f.Conns),
// mixing in well-formed attempts, and returns counts: "packets", "ok" and
// "upgrade_header_dropped" (the verdicts wsdiag must give the attempts on
// path /ws).
func WriteFlood(w io.Writer, f Flood, conns int, seed int64) (map[string]int, error) {
	if conns <= 0 {
		conns = f.Conns
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	s, err := newSynth(bw, 0, seed)
	if err != nil {
		return nil, err
	}
	s.proxy, s.backend = floodProxy, floodBackend
	var mixed [][]pkt
	for i := 0; i < conns; i++ {
		if i%mixEvery == mixEvery/2 {
			mixed = append(mixed, s.wsAttempt(i/mixEvery%2 == 0, 2))
		}
		for _, p := range f.script(s, i) {
			if err := s.emit(p); err != nil {
				return nil, err
			}
		}
		for k := 0; k < len(mixed); {
			if err := s.emit(mixed[k][0]); err != nil {
				return nil, err
			}
			if mixed[k] = mixed[k][1:]; len(mixed[k]) == 0 {
				mixed = append(mixed[:k], mixed[k+1:]...)
				continue
			}
			k++
		}
	}
	for _, m := range mixed {
		for _, p := range m {
			if err := s.emit(p); err != nil {
				return nil, err
			}
		}
	}
	s.counts["packets"] = s.written
	return s.counts, bw.Flush()
}
