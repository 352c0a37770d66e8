// Command h2client opens a WebSocket over HTTP/2 the RFC 8441 way (extended
// CONNECT) with x/net/http2's Framer, whatever the server advertised, so
// testdata/gen/h2.sh can record a server refusing it. It writes its TLS
// secrets to -keylog, sends one masked text frame when the server answers
// 200, and reports what came back.
package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8643", "server address (127.0.0.1 only)")
	authority := flag.String("authority", "localhost", ":authority and SNI")
	path := flag.String("path", "/ws", ":path")
	keyLog := flag.String("keylog", "", "append TLS secrets (NSS key log) here")
	msgs := flag.Int("msgs", 1, "text messages to send (each read back before the next) when the server answers 200")
	flag.Parse()
	log.SetFlags(0)

	cfg := &tls.Config{ServerName: *authority, InsecureSkipVerify: true, NextProtos: []string{"h2"}}
	if *keyLog != "" {
		f, err := os.OpenFile(*keyLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		cfg.KeyLogWriter = f
	}
	conn, err := tls.Dial("tcp", *addr, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		log.Fatalf("ALPN %q, not h2", p)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()

	// Read the server's SETTINGS first and say what it advertised.
	advertised := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			log.Fatal(err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			v, ok := s.Value(http2.SettingEnableConnectProtocol)
			advertised = ok && v == 1
			fr.WriteSettingsAck()
			break
		}
	}
	fmt.Printf("server advertised SETTINGS_ENABLE_CONNECT_PROTOCOL: %v (sending extended CONNECT anyway)\n", advertised)

	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":path", *path},
		{":authority", *authority}, {"sec-websocket-version", "13"}, {"origin", "https://" + *authority}, {"user-agent", "wsdiag-h2client/1"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})

	dec := hpack.NewDecoder(4096, nil)
	sent, echoed := 0, 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			fmt.Printf("read: %v\n", err)
			return
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
			fmt.Printf("stream %d headers: %v\n", f.StreamID, fields)
			for _, h := range fields {
				if h.Name == ":status" && h.Value == "200" {
					sent = 1
					fr.WriteData(1, false, masked(0x81, fmt.Sprintf("message %d", sent)))
				}
			}
			if f.StreamEnded() {
				fr.WriteGoAway(1, http2.ErrCodeNo, nil)
				return
			}
		case *http2.RSTStreamFrame:
			fmt.Printf("stream %d reset: %v\n", f.StreamID, f.ErrCode)
			fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			return
		case *http2.GoAwayFrame:
			fmt.Printf("GOAWAY %v\n", f.ErrCode)
			return
		case *http2.DataFrame:
			if f.StreamEnded() {
				fmt.Printf("stream %d ended after %d echoes\n", f.StreamID, echoed)
				return
			}
			if n := uint32(f.Length); n > 0 {
				// flow control: give back what was read, on the stream and the connection
				fr.WriteWindowUpdate(f.StreamID, n)
				fr.WriteWindowUpdate(0, n)
			}
			if len(f.Data()) > 0 && f.Data()[0] == 0x81 {
				echoed++
				switch {
				case sent < *msgs:
					sent++
					fr.WriteData(1, false, masked(0x81, fmt.Sprintf("message %d", sent)))
				case sent == *msgs:
					sent++
					fr.WriteData(1, false, masked(0x88, "\x03\xe8")) // close 1000
				}
			} else if len(f.Data()) > 0 && f.Data()[0] == 0x88 {
				fmt.Printf("closed after %d echoes\n", echoed)
				fr.WriteGoAway(1, http2.ErrCodeNo, nil)
				return
			}
		case *http2.SettingsFrame, *http2.WindowUpdateFrame, *http2.PingFrame:
		}
	}
}

// masked is one client frame (FIN set) with a fixed masking key.
func masked(op byte, payload string) []byte {
	key := [4]byte{1, 2, 3, 4}
	b := []byte{op, 0x80 | byte(len(payload))}
	b = append(b, key[:]...)
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}
