package main

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// probeOptions are what one probe attempt does.
type probeOptions struct {
	url         *url.URL
	origin      string
	headers     []string // "Name: value"
	subprotocol string
	idle        time.Duration
	size        int
	timeout     time.Duration // connect and handshake
	insecure    bool
	keyLog      io.Writer // TLS secrets, NSS key log format
	// dialing, when set, is told each connection's local port and remote
	// address before its SYN leaves (probe's capture names them).
	dialing func(local, remote netip.AddrPort) error
}

// probeResult is what the client itself saw of its attempt.
type probeResult struct {
	local, remote netip.AddrPort
	start         time.Time
	reqLine       string
	reqHeaders    []string
	status        int
	statusLine    string
	respHeaders   http.Header
	body          string
	acceptOK      bool
	upgraded      bool
	// After the upgrade: frames each way, and how it ended.
	sent, received int
	pings          int
	lastFrame      time.Time // the last frame either way before the close frames
	// The first and last frame each way (what the probe sent is certain).
	firstSent, lastSent, firstRecv, lastRecv time.Time
	closedBy                                 string // who sent the first close frame, or closed first: "server" or "client"
	// The close frames: the probe's own (sentClose 0: none sent), and the
	// server's (closeCode 0: none came; 1005: one without a code).
	sentClose    uint16
	sentCloseAt  time.Time
	closeCode    uint16
	closeReason  string
	closeAt      time.Time
	closeKind    string // how the server's side ended: FIN, RST, or "" while open
	closedAt     time.Time
	idleSurvived bool // --idle: still open after the whole idle time
	err          error
}

// dialProbe connects to the URL's host: TCP, then TLS for wss.
func dialProbe(o *probeOptions) (net.Conn, error) {
	host := o.url.Hostname()
	port := o.url.Port()
	if port == "" {
		port = "80"
		if o.url.Scheme == "wss" {
			port = "443"
		}
	}
	d := net.Dialer{Timeout: o.timeout}
	if o.dialing != nil {
		d.Control = func(network, address string, c syscall.RawConn) error {
			port, err := bindEphemeral(network, c)
			if err != nil {
				return err
			}
			remote, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			return o.dialing(netip.AddrPortFrom(netip.Addr{}, port), remote)
		}
	}
	c, err := d.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	if o.url.Scheme != "wss" {
		return c, nil
	}
	tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: o.insecure, NextProtos: []string{"http/1.1"}, KeyLogWriter: o.keyLog})
	tc.SetDeadline(time.Now().Add(o.timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %v", c.RemoteAddr(), err)
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// handshakeHeaders are the probe's request headers with key.
func handshakeHeaders(o *probeOptions, key string) []string {
	hs := []string{"Host: " + o.url.Host, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"}
	if o.origin != "" {
		hs = append(hs, "Origin: "+o.origin)
	}
	if o.subprotocol != "" {
		hs = append(hs, "Sec-WebSocket-Protocol: "+o.subprotocol)
	}
	hs = append(hs, "User-Agent: wsdiag-probe/"+version)
	for _, h := range o.headers {
		// --header replaces a header of the same name (Host: a virtual host).
		name, _, _ := strings.Cut(h, ":")
		replaced := false
		for i, x := range hs {
			if n, _, _ := strings.Cut(x, ":"); strings.EqualFold(n, strings.TrimSpace(name)) {
				hs[i], replaced = h, true
			}
		}
		if !replaced {
			hs = append(hs, h)
		}
	}
	return hs
}

// runProbe makes one WebSocket attempt. A connect failure is an error;
// anything after that is a result.
func runProbe(o *probeOptions) (*probeResult, error) {
	conn, err := dialProbe(o)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := &probeResult{start: time.Now()}
	r.local = addrPortOf(conn.LocalAddr())
	r.remote = addrPortOf(conn.RemoteAddr())

	var kb [16]byte
	rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	r.reqLine = "GET " + o.url.RequestURI() + " HTTP/1.1"
	hs := handshakeHeaders(o, key)
	r.reqHeaders = hs
	conn.SetDeadline(time.Now().Add(o.timeout))
	if _, err := io.WriteString(conn, r.reqLine+"\r\n"+strings.Join(hs, "\r\n")+"\r\n\r\n"); err != nil {
		r.err = fmt.Errorf("sending the handshake: %v", err)
		return r, nil
	}
	// The answer's header block is bounded (a hostile server cannot grow
	// it without end); frames after it are read without the bound.
	lim := &boundedReader{r: conn, left: maxProbeHeader}
	br := bufio.NewReaderSize(lim, 64<<10)
	resp, err := readAnswer(br)
	lim.left = -1
	if err != nil {
		r.err = fmt.Errorf("reading the handshake's answer: %v", err)
		r.closedBy, r.closeKind, r.closedAt = "server", closeKindOf(err), time.Now()
		return r, nil
	}
	r.status, r.statusLine, r.respHeaders = resp.status, resp.line, resp.header
	if resp.status != http.StatusSwitchingProtocols {
		r.body = resp.body(br, 512)
		return r, nil
	}
	r.acceptOK = resp.header.Get("Sec-WebSocket-Accept") == analyze.AcceptFor(key)
	r.upgraded = true
	r.lastFrame = time.Now()
	conn.SetDeadline(time.Time{})
	ws := &wsConn{c: conn, br: br, r: r}
	if o.size > 0 {
		msg := make([]byte, o.size)
		for i := range msg {
			msg[i] = 'a' + byte(i%26)
		}
		if err := ws.write(0x1, msg); err != nil {
			return r, nil
		}
		// The echo, or whatever comes, within a second.
		ws.readUntil(time.Now().Add(time.Second), true)
		if r.closeKind != "" || r.closeCode != 0 {
			ws.close() // the server's close: answered, its end waited for
			return r, nil
		}
	}
	if o.idle > 0 {
		ws.readUntil(time.Now().Add(o.idle), false)
		if r.closeKind != "" || r.closeCode != 0 {
			ws.close()
			return r, nil
		}
		r.idleSurvived = true
	}
	// A normal close: ours, then the server's answer and its FIN.
	ws.close()
	return r, nil
}

// close ends the probe's session with the close handshake: close 1000
// (unless the server's close came first and was answered), then the
// server's close frame and the end of its side, waited for 2 s. A server
// side that has already ended gets nothing.
func (w *wsConn) close() {
	if w.r.closeKind != "" {
		return // the server's side has ended: there is nobody to answer
	}
	if w.r.sentClose == 0 {
		if w.r.closedBy == "" {
			w.r.closedBy = "client"
		}
		w.write(0x8, []byte{0x03, 0xe8})
	}
	w.readUntil(time.Now().Add(2*time.Second), false)
}

// wsSummary is the probe's session as the probe knows it, in the form a
// capture of its connection gives: what it sent, its close frame
// included, is certain; what it received is what it read.
func (r *probeResult) wsSummary() *reassembly.WSSession {
	ws := &reassembly.WSSession{}
	ws.C2S.Frames, ws.C2S.First, ws.C2S.Last = uint64(r.sent), r.firstSent, r.lastSent
	ws.C2S.CloseCode, ws.C2S.CloseAt = r.sentClose, r.sentCloseAt
	ws.S2C.Frames, ws.S2C.First, ws.S2C.Last = uint64(r.received), r.firstRecv, r.lastRecv
	ws.S2C.Pings = uint32(r.pings)
	ws.S2C.CloseCode, ws.S2C.CloseAt, ws.S2C.CloseReason = r.closeCode, r.closeAt, r.closeReason
	return ws
}

// wsConn reads and writes frames for the probe: client frames masked,
// pings answered, payloads discarded.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
	r  *probeResult
}

func (w *wsConn) write(op byte, p []byte) error {
	var hdr [14]byte
	hdr[0] = 0x80 | op
	n := 2
	switch l := len(p); {
	case l < 126:
		hdr[1] = 0x80 | byte(l)
	case l < 1<<16:
		hdr[1] = 0x80 | 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(l))
		n = 4
	default:
		hdr[1] = 0x80 | 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(l))
		n = 10
	}
	var mask [4]byte
	rand.Read(mask[:])
	copy(hdr[n:], mask[:])
	n += 4
	buf := make([]byte, 0, n+len(p))
	buf = append(buf, hdr[:n]...)
	for i, b := range p {
		buf = append(buf, b^mask[i&3])
	}
	w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := w.c.Write(buf)
	if err == nil {
		now := time.Now()
		w.r.sent++
		w.r.lastSent = now
		if op != 0x8 {
			w.r.lastFrame = now
		}
		if w.r.firstSent.IsZero() {
			w.r.firstSent = now
		}
		if op == 0x8 && w.r.sentClose == 0 {
			w.r.sentClose, w.r.sentCloseAt = 1005, now
			if len(p) >= 2 {
				w.r.sentClose = binary.BigEndian.Uint16(p)
			}
		}
	}
	return err
}

// readUntil reads frames until the deadline, the server's close, or the
// end of the connection; with one, it returns after the first data frame.
func (w *wsConn) readUntil(deadline time.Time, one bool) {
	for {
		w.c.SetReadDeadline(deadline)
		op, payload, err := w.readFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			if w.r.closeKind == "" {
				w.r.closeKind, w.r.closedAt = closeKindOf(err), time.Now()
				if w.r.closedBy == "" {
					w.r.closedBy = "server"
				}
			}
			return
		}
		now := time.Now()
		w.r.received++
		w.r.lastRecv = now
		if op != 0x8 {
			w.r.lastFrame = now
		}
		if w.r.firstRecv.IsZero() {
			w.r.firstRecv = now
		}
		switch op {
		case 0x9:
			w.r.pings++
			w.write(0xA, payload)
		case 0x8:
			if w.r.closeCode != 0 {
				break // one close frame counts
			}
			w.r.closeCode, w.r.closeAt = 1005, now
			if len(payload) >= 2 {
				w.r.closeCode = binary.BigEndian.Uint16(payload)
				w.r.closeReason = string(payload[2:])
			}
			if w.r.closedBy == "" {
				w.r.closedBy = "server"
			}
			if w.r.sentClose == 0 {
				w.write(0x8, payload[:min(2, len(payload))]) // the answer echoes the code
			}
		case 0x1, 0x2, 0x0:
			if one {
				return
			}
		}
	}
}

func (w *wsConn) readFrame() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, nil, err
	}
	op := h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if h[1]&0x80 != 0 {
		var m [4]byte
		if _, err := io.ReadFull(w.br, m[:]); err != nil {
			return 0, nil, err
		}
	}
	if op >= 0x8 {
		p := make([]byte, min(n, 125))
		_, err := io.ReadFull(w.br, p)
		return op, p, err
	}
	_, err := io.CopyN(io.Discard, w.br, int64(n))
	return op, nil, err
}

// closeKindOf tells a reset from an orderly end.
func closeKindOf(err error) string {
	if errors.Is(err, syscall.ECONNRESET) {
		return "RST"
	}
	return "FIN"
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// maxProbeHeader bounds the handshake answer's header block.
const maxProbeHeader = 1 << 20

// boundedReader reads at most left bytes (left < 0: no bound).
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, errors.New("the handshake answer's header block is larger than 1 MiB")
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	return n, err
}

// answer is the head of the handshake's answer as the server sent it.
type answer struct {
	line   string // the status line, as sent
	status int
	header http.Header
}

// readAnswer reads the answer's status line and header block as a
// capture shows them: what a hostile or broken server writes (control
// bytes in a header value, a bare LF) is taken as it is, where net/http
// refuses it and the probe would see no answer at all.
func readAnswer(br *bufio.Reader) (*answer, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	a := &answer{line: strings.TrimRight(line, "\r\n"), header: http.Header{}}
	proto, rest, _ := strings.Cut(a.line, " ")
	code, _, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(proto, "HTTP/1.") || len(code) != 3 {
		return nil, fmt.Errorf("not an HTTP/1 status line: %q", a.line)
	}
	if a.status, err = strconv.Atoi(code); err != nil {
		return nil, fmt.Errorf("not an HTTP/1 status line: %q", a.line)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			return a, nil
		}
		if name, value, ok := strings.Cut(l, ":"); ok && !strings.ContainsAny(name, " \t") {
			a.header.Add(name, strings.TrimSpace(value))
		}
	}
}

// body reads at most n bytes of the answer's body: by its
// Content-Length, its chunks, or until the server closes (within the
// handshake timeout).
func (a *answer) body(br *bufio.Reader, n int64) string {
	var r io.Reader = br
	switch {
	case strings.EqualFold(a.header.Get("Transfer-Encoding"), "chunked"):
		r = httputil.NewChunkedReader(br)
	case a.header.Get("Content-Length") != "":
		cl, err := strconv.ParseInt(a.header.Get("Content-Length"), 10, 64)
		if err != nil || cl < 0 {
			return ""
		}
		n = min(n, cl)
	}
	b, _ := io.ReadAll(io.LimitReader(r, n))
	return string(b)
}
