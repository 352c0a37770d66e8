// Command backend is the WebSocket/HTTP backend that testdata/gen/gen.sh puts
// behind nginx to record captures of WebSocket upgrades through a proxy.
//
// Behaviour by path:
//
//	/ws, /ws/...  upgrade (any Origin), echo messages, subprotocol "chat" if offered
//	/strict       upgrade with gorilla's default origin check (Origin host == Host), else 403
//	/proto        400 unless the request offers subprotocol "chat", then upgrade and echo
//	/plain        200 text body (a backend that is not WebSocket at all)
//	/badaccept    raw 101 with a wrong Sec-WebSocket-Accept, held open briefly, then closed
//	/hang         hijack and never answer (held until the peer closes)
//	/drop         hijack and close at once without any response
//	/health       200 "ok"
//	/sink         upgrade, read every message, never write (a close is still answered)
//	/limited      upgrade and echo with SetReadLimit(64 KiB): a bigger message gets close 1009
//	/close4000    upgrade, echo the first message, then close 4000 "going away: test"
//	/trusted      400 (Home Assistant's words) when X-Forwarded-For comes from a
//	              peer outside -trusted-proxies, else upgrade and echo
//	/exactconn    400 unless Connection is exactly "Upgrade" (no token list),
//	              else upgrade and echo
//	/hub/negotiate SignalR-style negotiate (POST): a connectionToken this
//	              instance remembers
//	/hub          upgrade and echo when ?id= is a token this instance handed
//	              out, else 404 "No Connection with that ID" (SignalR's answer)
//	anything else 404
//
// -unix PATH listens on a unix socket (a backend the proxy reaches off the
// TCP wire); -verbose-errors puts gorilla's handshake error in the body.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var (
	echoUpgrader = websocket.Upgrader{
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{"chat"},
	}
	// CheckOrigin nil: gorilla's default, which requires the Origin's host to
	// equal the request's Host header.
	strictUpgrader = websocket.Upgrader{
		Subprotocols: []string{"chat"},
	}
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address (must be on 127.0.0.1)")
	unixPath := flag.String("unix", "", "listen on this unix socket instead of -addr (the file is replaced, mode 0666)")
	verbose := flag.Bool("verbose-errors", false, "a failed handshake's body is gorilla's reason (e.g. \"'upgrade' token not found in 'Connection' header\"), as apps that set Upgrader.Error do, instead of \"Bad Request\"")
	maxHeader := flag.Int("max-header-bytes", 0, "http.Server.MaxHeaderBytes (0: Go's default 1 MB); Go answers 431 above it (plus its 4 KiB slack)")
	compress := flag.Bool("compress", false, "/ws agrees to permessage-deflate when offered and compresses its echoes (gorilla EnableCompression)")
	flag.StringVar(&trustedProxies, "trusted-proxies", "", "comma-separated peer IPs /trusted accepts X-Forwarded-For from")
	flag.Parse()
	if *verbose {
		echoUpgrader.Error = reasonAsBody
		strictUpgrader.Error = reasonAsBody
	}
	listenAddr = *addr
	echoUpgrader.EnableCompression = *compress

	mux := http.NewServeMux()
	mux.HandleFunc("/", route)
	srv := &http.Server{
		Addr:              *addr,
		Handler:           logRequests(mux),
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    *maxHeader,
	}
	if *unixPath != "" {
		os.Remove(*unixPath)
		l, err := net.Listen("unix", *unixPath)
		if err != nil {
			log.Fatal(err)
		}
		if err := os.Chmod(*unixPath, 0o666); err != nil { // nginx workers run as nobody
			log.Fatal(err)
		}
		log.Printf("backend listening on unix:%s", *unixPath)
		log.Fatal(srv.Serve(l))
	}
	log.Printf("backend listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}

// reasonAsBody answers a failed handshake with gorilla's reason as the body.
func reasonAsBody(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	w.Header().Set("Sec-Websocket-Version", "13")
	http.Error(w, reason.Error(), status)
}

func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s %s %s Host=%q Upgrade=%q Connection=%q Origin=%q Proto=%q UA=%q",
			r.RemoteAddr, r.Method, r.URL.RequestURI(), r.Proto, r.Host,
			r.Header.Get("Upgrade"), r.Header.Get("Connection"), r.Header.Get("Origin"),
			r.Header.Get("Sec-WebSocket-Protocol"), r.UserAgent())
		h.ServeHTTP(w, r)
	})
}

func route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/ws" || strings.HasPrefix(p, "/ws/"):
		upgradeAndEcho(&echoUpgrader, w, r)
	case p == "/strict":
		upgradeAndEcho(&strictUpgrader, w, r)
	case p == "/proto":
		if !offers(r, "chat") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "subprotocol chat required\n")
			return
		}
		upgradeAndEcho(&echoUpgrader, w, r)
	case p == "/plain":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "plain http backend, not websocket\n")
	case p == "/badaccept":
		badAccept(w, r)
	case p == "/hang":
		hang(w)
	case p == "/drop":
		drop(w)
	case p == "/sink":
		sink(w, r)
	case p == "/limited":
		limited(w, r)
	case p == "/close4000":
		close4000(w, r)
	case p == "/trusted":
		trusted(w, r)
	case p == "/exactconn":
		exactConn(w, r)
	case p == "/hub/negotiate":
		negotiate(w, r)
	case p == "/hub":
		hub(w, r)
	case p == "/health":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	default:
		http.NotFound(w, r)
	}
}

func offers(r *http.Request, proto string) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == proto {
			return true
		}
	}
	return false
}

func upgradeAndEcho(u *websocket.Upgrader, w http.ResponseWriter, r *http.Request) {
	c, err := u.Upgrade(w, r, nil) // on failure Upgrade has already answered (400/403)
	if err != nil {
		log.Printf("upgrade %s failed: %v", r.URL.Path, err)
		return
	}
	defer c.Close()
	for {
		mt, msg, err := c.ReadMessage() // a close frame is answered by gorilla's default close handler
		if err != nil {
			log.Printf("session %s ended: %v", r.RemoteAddr, err)
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			log.Printf("write to %s: %v", r.RemoteAddr, err)
			return
		}
	}
}

// sink reads messages and never writes one: the backend→client direction
// stays silent (gorilla still answers a close frame).
func sink(w http.ResponseWriter, r *http.Request) {
	c, err := echoUpgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Printf("upgrade %s failed: %v", r.URL.Path, err)
		return
	}
	defer c.Close()
	n := 0
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			log.Printf("sink %s: %d messages, ended: %v", r.RemoteAddr, n, err)
			return
		}
		n++
	}
}

// limited echoes with a 64 KiB read limit. gorilla answers a bigger
// message with close 1009 and ReadMessage fails; the connection is then
// closed with the rest of the message unread.
func limited(w http.ResponseWriter, r *http.Request) {
	c, err := echoUpgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Printf("upgrade %s failed: %v", r.URL.Path, err)
		return
	}
	defer c.Close()
	c.SetReadLimit(64 << 10)
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			log.Printf("limited %s ended: %v", r.RemoteAddr, err)
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			log.Printf("write to %s: %v", r.RemoteAddr, err)
			return
		}
	}
}

// close4000 echoes the first message, then starts the closing handshake
// with 4000 "going away: test" and waits (≤ 2 s) for the client's close.
func close4000(w http.ResponseWriter, r *http.Request) {
	c, err := echoUpgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Printf("upgrade %s failed: %v", r.URL.Path, err)
		return
	}
	defer c.Close()
	mt, msg, err := c.ReadMessage()
	if err != nil {
		log.Printf("close4000 %s: %v", r.RemoteAddr, err)
		return
	}
	if err := c.WriteMessage(mt, msg); err != nil {
		log.Printf("write to %s: %v", r.RemoteAddr, err)
		return
	}
	err = c.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(4000, "going away: test"), time.Now().Add(time.Second))
	if err != nil {
		log.Printf("close to %s: %v", r.RemoteAddr, err)
		return
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			log.Printf("close4000 %s: after our close: %v", r.RemoteAddr, err)
			return
		}
	}
}

var trustedProxies, listenAddr string

// SignalR-style sessions: tokens this instance handed out.
var (
	hubMu     sync.Mutex
	hubTokens = map[string]bool{}
	hubNext   int
)

func negotiate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "negotiate is POST", http.StatusMethodNotAllowed)
		return
	}
	hubMu.Lock()
	hubNext++
	id := fmt.Sprintf("conn-%s-%d", strings.ReplaceAll(listenAddr, ":", "-"), hubNext)
	token := "tok-" + id
	hubTokens[token] = true
	hubMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"negotiateVersion":1,"connectionId":%q,"connectionToken":%q,"availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}`, id, token)
}

func hub(w http.ResponseWriter, r *http.Request) {
	hubMu.Lock()
	known := hubTokens[r.URL.Query().Get("id")]
	hubMu.Unlock()
	if !known {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "No Connection with that ID")
		return
	}
	upgradeAndEcho(&echoUpgrader, w, r)
}

// trusted refuses, as Home Assistant's http integration does, a request
// that carries X-Forwarded-For from a peer not listed as a trusted proxy.
func trusted(w http.ResponseWriter, r *http.Request) {
	peer, _, _ := net.SplitHostPort(r.RemoteAddr)
	if r.Header.Get("X-Forwarded-For") != "" && !listed(trustedProxies, peer) {
		log.Printf("A request from a reverse proxy was received from %s, but your HTTP integration is not set-up for reverse proxies", peer)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "400: Bad Request\n\nA request from a reverse proxy was received from "+peer+
			", but your HTTP integration is not set-up for reverse proxies\n")
		return
	}
	upgradeAndEcho(&echoUpgrader, w, r)
}

func listed(list, ip string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == ip {
			return true
		}
	}
	return false
}

// exactConn stands for servers that compare Connection with "Upgrade" as a
// whole string instead of looking for the token in a list, so Firefox's
// "keep-alive, Upgrade" is refused when a proxy forwards it as is.
func exactConn(w http.ResponseWriter, r *http.Request) {
	if c := r.Header.Get("Connection"); !strings.EqualFold(c, "upgrade") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "Can \"Upgrade\" only to \"WebSocket\": Connection must be \"Upgrade\", got \""+c+"\"\n")
		return
	}
	upgradeAndEcho(&echoUpgrader, w, r)
}

func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return nil, nil, false
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		log.Printf("hijack: %v", err)
		return nil, nil, false
	}
	return conn, brw, true
}

func badAccept(w http.ResponseWriter, r *http.Request) {
	conn, brw, ok := hijack(w)
	if !ok {
		return
	}
	defer conn.Close()
	resp := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		// base64 of 20 bytes, but not SHA-1(key + GUID) for any key the client sent.
		"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n" +
		"\r\n"
	if _, err := brw.WriteString(resp); err == nil {
		brw.Flush()
	}
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, brw)
}

func hang(w http.ResponseWriter) {
	conn, brw, ok := hijack(w)
	if !ok {
		return
	}
	defer conn.Close()
	io.Copy(io.Discard, brw) // until the proxy gives up and closes
}

func drop(w http.ResponseWriter) {
	conn, _, ok := hijack(w)
	if !ok {
		return
	}
	conn.Close()
}

func init() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("backend: ")
}
