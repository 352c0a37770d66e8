// Command tlsbackend is a WebSocket echo backend that speaks TLS, for
// recording a proxy's upstream TLS leg (proxy_pass https://). With
// -require-sni it refuses a ClientHello without a server name, as many
// multi-tenant backends do (the handshake fails with an alert).
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"log"
	"net/http"

	"github.com/gorilla/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9643", "listen address (127.0.0.1 only)")
	cert := flag.String("cert", "cert.pem", "certificate (PEM)")
	key := flag.String("key", "key.pem", "key (PEM)")
	requireSNI := flag.Bool("require-sni", false, "refuse handshakes without SNI")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}}
	if *requireSNI {
		cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			if h.ServerName == "" {
				log.Printf("refusing a ClientHello without SNI from %s", h.Conn.RemoteAddr())
				return nil, errors.New("no SNI")
			}
			return nil, nil
		}
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Addr: *addr, TLSConfig: cfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s %s Upgrade=%q Connection=%q Host=%q", r.RemoteAddr, r.Method, r.URL.Path, r.Header.Get("Upgrade"), r.Header.Get("Connection"), r.Host)
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(t, m)
		}
	})}
	log.Printf("tlsbackend on %s (require SNI: %v)", *addr, *requireSNI)
	log.Fatal(srv.ListenAndServeTLS("", ""))
}
