// Command client makes WebSocket handshake attempts (gorilla Dialer) through the
// proxy for testdata/gen/gen.sh, optionally interleaved with plain keep-alive
// HTTP GETs. A failed handshake is printed and the run goes on (exit 0).
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var (
	urlsFlag    = flag.String("url", "ws://127.0.0.1:8080/ws", "WebSocket URL; a comma-separated list is used round-robin over the attempts")
	attempts    = flag.Int("n", 3, "number of WebSocket attempts")
	concurrency = flag.Int("c", 1, "attempts in flight at once")
	stagger     = flag.Duration("stagger", 0, "delay between the starts of two attempts")
	origin      = flag.String("origin", "", "Origin header (default http://<host of url>; \"none\" sends no Origin)")
	subprotocol = flag.String("subprotocol", "", "subprotocol to offer (Sec-WebSocket-Protocol)")
	msgs        = flag.Int("msgs", 2, "text messages to send and read back after a successful upgrade")
	size        = flag.Int("size", 0, "message size in bytes (0: a short \"hello K from attempt I\"); a message is sent as one frame")
	bigLast     = flag.Bool("big-last", false, "only the last message has -size bytes; the others are short")
	binaryMsg   = flag.Bool("binary", false, "send binary messages instead of text")
	interval    = flag.Duration("interval", 0, "pause between two messages")
	echo        = flag.Bool("echo", true, "read each message back before the next (false: send only)")
	hold        = flag.Duration("hold", 0, "keep an upgraded connection open this long after the messages, before closing")
	holdRead    = flag.Bool("hold-read", false, "keep reading during -hold, so that a close by the other side ends the attempt at once (without our close frame)")
	abort       = flag.Bool("abort", false, "after the messages (and -hold), reset the TCP connection (SO_LINGER 0, close: RST) instead of sending a close frame")
	plainURL    = flag.String("plain", "", "URL for plain HTTP GETs (keep-alive) interleaved with the attempts")
	plainN      = flag.Int("plain-n", 0, "number of plain GETs")
	plainGap    = flag.Duration("plain-gap", 20*time.Millisecond, "delay between two plain GETs")
	raw         = flag.Bool("raw", false, "send a handcrafted non-WebSocket request (Upgrade: websocket without Sec-WebSocket-Key/Version)")
	timeout     = flag.Duration("timeout", 10*time.Second, "handshake / response timeout")
	hostHdr     = flag.String("host", "", "Host header to send instead of the URL's host (a name-based virtual host on 127.0.0.1)")
	cookieSize  = flag.Int("cookie-size", 0, "add a Cookie header with a value of this many bytes (headers too large)")
	signalr     = flag.Bool("signalr", false, "SignalR style: POST <url as http>/negotiate?negotiateVersion=1 first, then upgrade with ?id=<connectionToken>")
	firefox     = flag.Bool("firefox", false, "send a raw handshake the way Firefox does: Connection: keep-alive, Upgrade (with key and version), then close")
	uaTag       = flag.String("ua", "wsdiag-testclient/1", "User-Agent prefix; \" (n=K)\" is appended per attempt")
	compress    = flag.Bool("compress", false, "offer permessage-deflate (gorilla EnableCompression) and compress what it sends when agreed")
)

var out = log.New(os.Stdout, "client: ", log.Ltime|log.Lmicroseconds)

func main() {
	flag.Parse()
	urls := strings.Split(*urlsFlag, ",")
	if *concurrency < 1 {
		*concurrency = 1
	}

	var wg sync.WaitGroup
	if *plainURL != "" && *plainN > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); plainGets(*plainURL, *plainN) }()
	}

	sem := make(chan struct{}, *concurrency)
	var aw sync.WaitGroup
	for i := 1; i <= *attempts; i++ {
		if i > 1 && *stagger > 0 {
			time.Sleep(*stagger)
		}
		sem <- struct{}{}
		aw.Add(1)
		go func(i int, u string) {
			defer aw.Done()
			defer func() { <-sem }()
			ua := fmt.Sprintf("%s (n=%d)", *uaTag, i)
			if *raw || *firefox {
				rawAttempt(i, u, ua)
			} else {
				attempt(i, u, ua)
			}
		}(i, urls[(i-1)%len(urls)])
	}
	aw.Wait()
	wg.Wait()
}

func originFor(u *url.URL) string {
	switch *origin {
	case "":
		return "http://" + u.Host
	case "none":
		return ""
	}
	return *origin
}

func attempt(i int, rawURL, ua string) {
	if *signalr {
		tok, err := negotiate(rawURL, ua)
		if err != nil {
			out.Printf("attempt %d: negotiate: %v", i, err)
			return
		}
		rawURL += "?id=" + url.QueryEscape(tok)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		out.Fatalf("bad -url %q: %v", rawURL, err)
	}
	h := http.Header{}
	h.Set("User-Agent", ua)
	if *hostHdr != "" {
		h.Set("Host", *hostHdr) // gorilla's Dialer puts it in req.Host
	}
	if o := originFor(u); o != "" {
		h.Set("Origin", o)
	}
	if *cookieSize > 0 {
		h.Set("Cookie", bigCookie(*cookieSize))
	}
	d := websocket.Dialer{HandshakeTimeout: *timeout, EnableCompression: *compress} // Proxy nil: always dial directly
	if *size > 4096 {
		// gorilla's client splits a message into frames of its write buffer
		// size (4 KiB by default); browsers send one frame per message.
		d.WriteBufferSize = *size + 16
	}
	if *subprotocol != "" {
		d.Subprotocols = []string{*subprotocol}
	}
	c, resp, err := d.Dial(rawURL, h)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			out.Printf("attempt %d %s: handshake failed: %s (%v) body=%q", i, u.Path, resp.Status, err, strings.TrimSpace(string(body)))
		} else {
			out.Printf("attempt %d %s: handshake failed: %v", i, u.Path, err)
		}
		return
	}
	defer c.Close()
	out.Printf("attempt %d %s: upgraded: %s subprotocol=%q", i, u.Path, resp.Status, c.Subprotocol())
	mt := websocket.TextMessage
	if *binaryMsg {
		mt = websocket.BinaryMessage
	}
	for k := 1; k <= *msgs; k++ {
		if k > 1 && *interval > 0 {
			time.Sleep(*interval)
		}
		msg := []byte(fmt.Sprintf("hello %d from attempt %d", k, i))
		if *size > 0 && (!*bigLast || k == *msgs) {
			msg = bytes.Repeat(msg, *size/len(msg)+1)[:*size]
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			out.Printf("attempt %d: write of message %d (%d bytes): %v", i, k, len(msg), err)
			readAfterError(i, c) // did a close frame arrive before the failure?
			return
		}
		if !*echo {
			continue
		}
		c.SetReadDeadline(time.Now().Add(*timeout))
		_, got, err := c.ReadMessage()
		if err != nil {
			out.Printf("attempt %d: read: %v", i, err)
			return
		}
		if !bytes.Equal(got, msg) {
			out.Printf("attempt %d: echo mismatch: %d bytes, want %d", i, len(got), len(msg))
		}
	}
	out.Printf("attempt %d: %d messages sent", i, *msgs)
	if *hold > 0 {
		if *holdRead {
			c.SetReadDeadline(time.Now().Add(*hold))
			for {
				_, got, err := c.ReadMessage()
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					break // gorilla cannot read after a timeout, but it can still write the close
				}
				if err != nil {
					out.Printf("attempt %d: connection ended while idle: %v", i, err)
					return
				}
				out.Printf("attempt %d: unexpected %d-byte message while idle", i, len(got))
			}
		} else {
			time.Sleep(*hold)
		}
	}
	if *abort {
		tc, ok := c.NetConn().(*net.TCPConn)
		if !ok {
			out.Printf("attempt %d: not a TCP connection", i)
			return
		}
		if err := tc.SetLinger(0); err != nil {
			out.Printf("attempt %d: SetLinger: %v", i, err)
		}
		tc.Close() // SO_LINGER 0: RST instead of FIN
		out.Printf("attempt %d: connection reset (RST) without a close frame", i)
		return
	}
	err = c.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	if err != nil {
		out.Printf("attempt %d: close: %v", i, err)
		return
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				out.Printf("attempt %d: closed 1000 (close answered)", i)
			} else {
				out.Printf("attempt %d: waiting for close reply: %v", i, err)
			}
			return
		}
	}
}

// readAfterError reports what can still be read after a failed write: the
// other side's close frame, if it arrived.
func readAfterError(i int, c *websocket.Conn) {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, got, err := c.ReadMessage()
		if err != nil {
			out.Printf("attempt %d: then read: %v", i, err)
			return
		}
		out.Printf("attempt %d: then read a %d-byte message", i, len(got))
	}
}

// rawAttempt sends a request that says Upgrade: websocket but is not a
// WebSocket handshake (no Sec-WebSocket-Key, no Sec-WebSocket-Version).
func rawAttempt(i int, rawURL, ua string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		out.Fatalf("bad -url %q: %v", rawURL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, *timeout)
	if err != nil {
		out.Printf("attempt %d: dial: %v", i, err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(*timeout))
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"User-Agent: " + ua + "\r\n" +
		"Upgrade: websocket\r\n"
	if *firefox {
		// Firefox's handshake: the Connection token list and a real key.
		req += "Connection: keep-alive, Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\n" +
			fmt.Sprintf("Sec-WebSocket-Key: %s\r\n", firefoxKey(i))
	} else {
		req += "Connection: Upgrade\r\n"
	}
	if *cookieSize > 0 {
		req += "Cookie: " + bigCookie(*cookieSize) + "\r\n"
	}
	if o := originFor(u); o != "" {
		req += "Origin: " + o + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		out.Printf("attempt %d: write: %v", i, err)
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		out.Printf("attempt %d: read response: %v", i, err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	kind := "raw, no key/version"
	if *firefox {
		kind = "firefox-style Connection: keep-alive, Upgrade"
	}
	out.Printf("attempt %d %s (%s): %s body=%q", i, path, kind, resp.Status, strings.TrimSpace(string(body)))
}

// negotiate does SignalR's negotiate POST for the hub at wsURL and returns
// the connectionToken.
func negotiate(wsURL, ua string) (string, error) {
	u := "http" + strings.TrimPrefix(wsURL, "ws") + "/negotiate?negotiateVersion=1"
	req, _ := http.NewRequest("POST", u, nil)
	req.Header.Set("User-Agent", ua)
	cl := &http.Client{Timeout: *timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var n struct{ ConnectionToken string }
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil || n.ConnectionToken == "" {
		return "", fmt.Errorf("%s: no connectionToken (%v)", resp.Status, err)
	}
	out.Printf("negotiate: %s token %s", resp.Status, n.ConnectionToken)
	return n.ConnectionToken, nil
}

// bigCookie is a Cookie value of n bytes ("session=" and filler).
func bigCookie(n int) string {
	v := "session=" + strings.Repeat("x", max(n-8, 0))
	return v[:n]
}

// firefoxKey is a fixed, distinct base64 16-byte key per attempt.
func firefoxKey(i int) string {
	b := []byte(fmt.Sprintf("ffkey-attempt-%02d", i%100))
	return base64.StdEncoding.EncodeToString(b[:16])
}

func plainGets(u string, n int) {
	cl := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	ok := 0
	for k := 1; k <= n; k++ {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("User-Agent", fmt.Sprintf("%s-plain (n=%d)", *uaTag, k))
		resp, err := cl.Do(req)
		if err != nil {
			out.Printf("plain %d: %v", k, err)
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok++
			} else {
				out.Printf("plain %d: %s", k, resp.Status)
			}
		}
		time.Sleep(*plainGap)
	}
	cl.CloseIdleConnections()
	out.Printf("plain GETs: %d/%d answered 200", ok, n)
}
