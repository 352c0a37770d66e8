// Command tlsclient makes wss:// WebSocket handshake attempts (gorilla Dialer
// over crypto/tls) through nginx for testdata/gen/tls.sh, and writes the TLS
// session secrets to an NSS key log so the captures can be decrypted.
//
// A failed handshake (TLS or HTTP) is printed and the run goes on (exit 0):
// the failures are what some captures are for.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var (
	rawURL     = flag.String("url", "wss://127.0.0.1:8443/ws", "WebSocket URL (wss://); a comma list is used round robin (attempt i gets the (i-1) mod n'th)")
	attempts   = flag.Int("n", 1, "number of WebSocket attempts")
	msgs       = flag.Int("msgs", 2, "text messages to send and read back after a successful upgrade")
	serverName = flag.String("servername", "localhost", "TLS server name (SNI, and the name the certificate is checked against)")
	caCert     = flag.String("cacert", "", "PEM file of the certificate(s) to trust (RootCAs)")
	insecure   = flag.Bool("insecure", false, "do not verify the server certificate (InsecureSkipVerify)")
	refuse     = flag.Bool("refuse", false, "trust nothing (empty RootCAs, no InsecureSkipVerify): the certificate is refused and the client sends a bad_certificate alert")
	keyLogFile = flag.String("keylog", "", "append the TLS secrets (NSS key log format) to this file")
	minVer     = flag.String("min", "1.2", "minimum TLS version: 1.2 or 1.3")
	maxVer     = flag.String("max", "1.3", "maximum TLS version: 1.2 or 1.3")
	ciphers    = flag.String("ciphers", "", "comma-separated TLS 1.2 cipher suite names (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); TLS 1.3 suites cannot be chosen in Go")
	alpn       = flag.String("alpn", "http/1.1", "comma-separated ALPN protocols to offer (\"\" offers none)")
	timeout    = flag.Duration("timeout", 10*time.Second, "handshake / response timeout")
	conc       = flag.Int("c", 1, "attempts at once (all of them start together)")
	laddr      = flag.String("laddr", "", "source address of attempt 1; attempt i binds the i-1'th address after it (127.0.0.11, .12, …), so each client has its own address")
	size       = flag.Int("size", 0, "message size in bytes (0: a short text naming the attempt)")
	sizeStep   = flag.Int("size-step", 0, "with -size: message k of attempt i has size+(i-1)*step+(k-1)*3 bytes, so every client's frames differ")
	hold       = flag.Duration("hold", 0, "after the messages, wait this long before the close frame (tunnels stay open together)")
)

var out = log.New(os.Stdout, "tlsclient: ", log.Ltime|log.Lmicroseconds)

func version(s string) uint16 {
	switch s {
	case "1.2":
		return tls.VersionTLS12
	case "1.3":
		return tls.VersionTLS13
	}
	out.Fatalf("unknown TLS version %q (want 1.2 or 1.3)", s)
	return 0
}

func suites(list string) []uint16 {
	if list == "" {
		return nil
	}
	byName := map[string]uint16{}
	for _, c := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		byName[c.Name] = c.ID
	}
	var ids []uint16
	for _, n := range strings.Split(list, ",") {
		id, ok := byName[strings.TrimSpace(n)]
		if !ok {
			out.Fatalf("unknown cipher suite %q", n)
		}
		ids = append(ids, id)
	}
	return ids
}

func tlsConfig() *tls.Config {
	cfg := &tls.Config{
		ServerName:   *serverName,
		MinVersion:   version(*minVer),
		MaxVersion:   version(*maxVer),
		CipherSuites: suites(*ciphers),
	}
	if *alpn != "" {
		cfg.NextProtos = strings.Split(*alpn, ",")
	}
	switch {
	case *refuse:
		cfg.RootCAs = x509.NewCertPool() // trusts nothing, not even the system roots
	case *insecure:
		cfg.InsecureSkipVerify = true
	case *caCert != "":
		pem, err := os.ReadFile(*caCert)
		if err != nil {
			out.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			out.Fatalf("%s: no certificate", *caCert)
		}
		cfg.RootCAs = pool
	}
	if *keyLogFile != "" {
		f, err := os.OpenFile(*keyLogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			out.Fatal(err)
		}
		cfg.KeyLogWriter = f // closed at exit
	}
	return cfg
}

func main() {
	flag.Parse()
	cfg := tlsConfig()
	urls := strings.Split(*rawURL, ",")
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(*conc, 1))
	for i := 1; i <= *attempts; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			attempt(i, urls[(i-1)%len(urls)], cfg)
		}(i)
	}
	wg.Wait()
}

// localAddr is the source address of attempt i (nil: the kernel's choice).
func localAddr(i int) net.Addr {
	if *laddr == "" {
		return nil
	}
	a, err := netip.ParseAddr(*laddr)
	if err != nil {
		out.Fatalf("-laddr: %v", err)
	}
	for k := 1; k < i; k++ {
		a = a.Next()
	}
	return &net.TCPAddr{IP: a.AsSlice()}
}

func message(i, k int) []byte {
	if *size <= 0 {
		return []byte(fmt.Sprintf("hello %d from tls attempt %d", k, i))
	}
	n := *size + (i-1)**sizeStep + (k-1)*3
	return []byte(strings.Repeat(string(rune('a'+(i+k)%26)), n))
}

func attempt(i int, rawURL string, cfg *tls.Config) {
	d := websocket.Dialer{HandshakeTimeout: *timeout, TLSClientConfig: cfg} // Proxy nil: dial directly
	if la := localAddr(i); la != nil {
		nd := &net.Dialer{LocalAddr: la, Timeout: *timeout}
		d.NetDialContext = nd.DialContext
	}
	h := http.Header{}
	h.Set("User-Agent", fmt.Sprintf("wsdiag-tlsclient/1 (n=%d)", i))
	h.Set("Origin", "https://"+*serverName+":8443")
	c, resp, err := d.Dial(rawURL, h)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			out.Printf("attempt %d: handshake failed: %s (%v) body=%q", i, resp.Status, err, strings.TrimSpace(string(body)))
		} else {
			out.Printf("attempt %d: handshake failed: %v", i, err)
		}
		return
	}
	defer c.Close()
	if tc, ok := c.NetConn().(*tls.Conn); ok {
		st := tc.ConnectionState()
		out.Printf("attempt %d: %s %s ALPN=%q", i, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol)
	}
	out.Printf("attempt %d: upgraded: %s", i, resp.Status)
	for k := 1; k <= *msgs; k++ {
		msg := message(i, k)
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			out.Printf("attempt %d: write: %v", i, err)
			return
		}
		c.SetReadDeadline(time.Now().Add(*timeout))
		_, got, err := c.ReadMessage()
		if err != nil {
			out.Printf("attempt %d: read: %v", i, err)
			return
		}
		if string(got) != string(msg) {
			out.Printf("attempt %d: echo mismatch", i)
		}
	}
	time.Sleep(*hold)
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
				out.Printf("attempt %d: %d messages echoed, closed 1000", i, *msgs)
			} else {
				out.Printf("attempt %d: waiting for close reply: %v", i, err)
			}
			return
		}
	}
}
