//go:build linux

package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A WebSocket backend and a wss:// client small enough to read, for the
// --tls-plaintext tests: the handshake, text frames echoed, the close
// handshake; the client writes its TLS secrets to a key log and can stay
// silent until the proxy closes.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsBackend echoes WebSocket messages; a request without Upgrade gets a
// 400, as gorilla answers one, but for /hold, answered 200 after two
// seconds: a page that fetches it keeps headless Chromium's virtual time
// from running out while its WebSocket is being opened.
func wsBackend(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveWS(c)
		}
	}()
	return l.Addr().String()
}

func serveWS(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		key := req.Header.Get("Sec-WebSocket-Key")
		if req.URL.Path == "/hold" {
			time.Sleep(2 * time.Second)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nheld\n")
			continue
		}
		if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") || key == "" {
			body := "Bad Request\n"
			fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
		for {
			op, payload, err := readFrame(br)
			if err != nil {
				return
			}
			writeFrame(c, op, payload, false)
			if op == 8 {
				return
			}
		}
	}
}

// readFrame reads one frame (unmasking it).
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return h[0] & 0x0f, p, nil
}

// writeFrame writes one final frame, masked when a client sends it.
func writeFrame(w io.Writer, op byte, p []byte, masked bool) error {
	b := []byte{0x80 | op}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case len(p) < 126:
		b = append(b, m|byte(len(p)))
	case len(p) < 1<<16:
		b = append(b, m|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	if masked {
		var k [4]byte
		rand.Read(k[:])
		b = append(b, k[:]...)
		for i, c := range p {
			b = append(b, c^k[i%4])
		}
	} else {
		b = append(b, p...)
	}
	_, err := w.Write(b)
	return err
}

// keyLogFile is an NSS key log the test's clients write to, one line at a
// time.
type keyLogFile struct {
	mu sync.Mutex
	w  io.Writer
}

func (k *keyLogFile) Write(b []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.w.Write(b)
}

// wsAttempt is one WebSocket handshake over TLS and, once upgraded, msgs
// messages echoed and a close handshake; mid, when set, runs between the
// first message and the rest (the session stays open meanwhile), and with
// silent the client then waits for the proxy to close instead of
// closing.
type wsAttempt struct {
	addr, path string
	header     string // extra header lines, each ending in \r\n
	msgs       int
	mid        func()
	silent     bool
	host       string // Host (default localhost)
}

// wsResult is what a client saw.
type wsResult struct {
	status string // the status line's code and reason
	client string // its address
}

// run makes the attempt.
func (a wsAttempt) run(t *testing.T, keys io.Writer) wsResult {
	t.Helper()
	host := a.host
	if host == "" {
		host = "localhost"
	}
	c, err := tls.Dial("tcp", a.addr, &tls.Config{InsecureSkipVerify: true, KeyLogWriter: keys, NextProtos: []string{"http/1.1"}, ServerName: "localhost"})
	if err != nil {
		t.Errorf("%s: %v", a.path, err)
		return wsResult{}
	}
	defer c.Close()
	res := wsResult{client: c.LocalAddr().String()}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: https://localhost\r\nUser-Agent: tlsplain-test\r\n%s\r\n", a.path, host, key, a.header)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Errorf("%s: %v", a.path, err)
		return res
	}
	res.status = resp.Status
	if resp.StatusCode != 101 {
		io.Copy(io.Discard, resp.Body)
		return res
	}
	for i := 0; i < a.msgs; i++ {
		if i == 1 && a.mid != nil {
			a.mid()
		}
		msg := fmt.Sprintf("message %d on %s", i, a.path)
		writeFrame(c, 1, []byte(msg), true)
		if _, p, err := readFrame(br); err != nil || string(p) != msg {
			t.Errorf("%s: echo %q, %v", a.path, p, err)
			return res
		}
	}
	if a.silent {
		// The proxy's read timeout ends it: EOF, no close frame.
		if _, _, err := readFrame(br); err == nil {
			t.Errorf("%s: a frame while waiting for the proxy to close", a.path)
		}
		// The proxy's FIN follows its close_notify: let it go first.
		time.Sleep(300 * time.Millisecond)
		return res
	}
	writeFrame(c, 8, []byte{0x03, 0xe8}, true)
	readFrame(br)
	return res
}
