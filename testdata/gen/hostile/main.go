// Command hostile sends bytes that act on a terminal through a real
// proxy, in every field wsdiag shows, for testdata/gen/hostile.sh: ESC
// sequences (clear screen, window title, OSC 52 clipboard, OSC 8 link),
// BEL, DEL, C1 controls (U+009B as UTF-8 and a lone 0x9B byte) and bidi
// controls (U+202E, U+2066, U+2069, U+200E, U+200F, U+061C).
//
//	hostile serve -addr 127.0.0.1:24001   the backend (raw HTTP, no library checks)
//	hostile client -addr 127.0.0.1:24080  four attempts through the proxy, one after the other
//
// The backend: a path with "reject" in it answers "400 <hostile>" with an
// X-Evil header and a hostile body; /ws… answers 101 echoing the offered
// Sec-WebSocket-Protocol, with an X-Evil header, echoes one message and
// then sends close 4000 with a hostile reason; anything else 404.
//
// The client, on four connections: GET /ws/<every kind> (nginx refuses a
// request line with C0 controls: its own 400); GET /ws/<C1 and bidi>
// with hostile User-Agent, Referer, X-Evil and Sec-WebSocket-Protocol,
// one message, and close 1000 with a hostile reason in answer to the
// backend's; GET /reject; GET /down/<C1 and bidi> with a hostile Referer
// (a location whose upstream is down: nginx's error log quotes both).
// Both sides write raw bytes: Go's net/http would refuse them.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

// Every kind at once (what a header value, a reason, a body can carry).
const evil = "\x1b[2J\x1b]0;owned\x07 \x1b]52;c;cm0gLXJmIC8=\x07 \x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ " +
	"\x07\x7f \xc2\x9b31m \x9b1m \u202etxt.exe \u2066x\u2069 \u200e\u200f\u061c"

// What a request target can carry through nginx ≥ 1.21.1, which refuses
// C0 controls and DEL in the request line: C1 and bidi, no spaces.
const evilHigh = "\xc2\x9b31m\x9b1m\u202etxt.exe\u2066x\u2069\u200e\u200f\u061c"

// A target with C0 controls too (nginx answers it 400 itself).
const evilC0 = "\x1b[2J\x1b]0;owned\x07\x7f" + evilHigh

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if len(os.Args) < 2 {
		log.Fatal("usage: hostile serve|client -addr HOST:PORT")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:24001", "serve: listen address; client: the proxy")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "serve":
		log.SetPrefix("hostile backend: ")
		serve(*addr)
	case "client":
		log.SetPrefix("hostile client: ")
		for i, a := range []attempt{
			{target: "/ws/" + evilC0},
			{target: "/ws/" + evilHigh, ws: true},
			{target: "/reject"},
			{target: "/down/" + evilHigh},
		} {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			if err := a.run(*addr); err != nil {
				log.Fatalf("%q: %v", a.target, err)
			}
		}
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

func accept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func serve(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", addr)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go handle(c)
	}
}

// readHead reads a request or response head; it returns the start line
// and the header fields by lower-case name.
func readHead(br *bufio.Reader) (string, map[string]string, error) {
	start, err := br.ReadString('\n')
	if err != nil {
		return "", nil, err
	}
	h := map[string]string{}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			return strings.TrimRight(start, "\r\n"), h, nil
		}
		if n, v, ok := strings.Cut(l, ":"); ok {
			h[strings.ToLower(strings.TrimSpace(n))] = strings.TrimSpace(v)
		}
	}
}

func handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	start, h, err := readHead(br)
	if err != nil {
		return
	}
	f := strings.Fields(start)
	if len(f) < 2 {
		return
	}
	target := f[1]
	log.Printf("%s %q", c.RemoteAddr(), start)
	switch {
	case strings.Contains(target, "reject"):
		body := "refused: " + evil + "\n"
		fmt.Fprintf(c, "HTTP/1.1 400 Bad %s\r\nX-Evil: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			evil, evil, len(body), body)
	case strings.HasPrefix(target, "/ws"):
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\nX-Evil: %s\r\n\r\n",
			accept(h["sec-websocket-key"]), h["sec-websocket-protocol"], evil)
		op, p, err := readFrame(br)
		if err != nil || op != 1 {
			log.Printf("first frame: op %d, %v", op, err)
			return
		}
		writeFrame(c, 1, p, false)
		writeFrame(c, 8, closePayload(4000, evil), false)
		for {
			op, _, err := readFrame(br)
			if err != nil || op == 8 {
				return
			}
		}
	default:
		body := "404 page not found\n"
		fmt.Fprintf(c, "HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	}
}

// closePayload is a close frame's payload: the code, then the reason cut
// to the 123 bytes a control frame allows.
func closePayload(code uint16, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, code)
	return append(p, reason[:min(len(reason), 123)]...)
}

func writeFrame(w io.Writer, op byte, p []byte, mask bool) error {
	b := []byte{0x80 | op}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch {
	case len(p) < 126:
		b = append(b, m|byte(len(p)))
	default:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	}
	if mask {
		var k [4]byte
		rand.Read(k[:])
		b = append(b, k[:]...)
		for i, c := range p {
			b = append(b, c^k[i&3])
		}
	} else {
		b = append(b, p...)
	}
	_, err := w.Write(b)
	return err
}

func readFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		return 0, nil, fmt.Errorf("frame too long")
	}
	var k [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(br, k[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		for i := range p {
			p[i] ^= k[i&3]
		}
	}
	return h[0] & 0x0f, p, nil
}

// attempt is one client connection.
type attempt struct {
	target string
	ws     bool // go on after a 101: a message, then answer the close
}

func (a attempt) run(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var kb [16]byte
	rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	req := "GET " + a.target + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if a.ws || strings.HasPrefix(a.target, "/down") {
		req += "User-Agent: " + evil + "\r\nReferer: http://x/" + evil + "\r\nX-Evil: " + evil + "\r\n" +
			"Sec-WebSocket-Protocol: chat" + evil + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	start, h, err := readHead(br)
	if err != nil {
		return fmt.Errorf("reading the answer: %v", err)
	}
	log.Printf("%q → %q", a.target, start)
	if !a.ws {
		return nil
	}
	if !strings.Contains(start, " 101 ") || h["sec-websocket-accept"] != accept(key) {
		return fmt.Errorf("no upgrade: %q", start)
	}
	if err := writeFrame(c, 1, []byte("hello"), true); err != nil {
		return err
	}
	for {
		op, p, err := readFrame(br)
		if err != nil {
			return fmt.Errorf("reading frames: %v", err)
		}
		if op == 8 {
			log.Printf("close %d from the backend", binary.BigEndian.Uint16(p))
			return writeFrame(c, 8, closePayload(1000, evil), true)
		}
	}
}
