// Command relay stands in for a cloud load balancer's fixed connection
// lifetime in front of a proxy, for testdata/gen/crossconn.sh: it accepts
// on -listen, dials -upstream for each connection, copies bytes both ways
// and, -lifetime after the accept, closes both sides at once (FIN, no
// close frame), whatever the traffic.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8230", "listen address (127.0.0.1 only)")
	upstream := flag.String("upstream", "127.0.0.1:8231", "address to relay to")
	lifetime := flag.Duration("lifetime", 4*time.Second, "close both sides this long after the accept (0: never)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("relay: ")

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("relay listening on %s → %s, lifetime %v", *listen, *upstream, *lifetime)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go relay(c, *upstream, *lifetime)
	}
}

func relay(down net.Conn, upstream string, lifetime time.Duration) {
	start := time.Now()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		log.Printf("%s: dial %s: %v", down.RemoteAddr(), upstream, err)
		down.Close()
		return
	}
	var once sync.Once
	closeBoth := func(why string) {
		once.Do(func() {
			down.Close()
			up.Close()
			log.Printf("%s: closed after %v: %s", down.RemoteAddr(), time.Since(start).Round(time.Millisecond), why)
		})
	}
	if lifetime > 0 {
		t := time.AfterFunc(lifetime, func() { closeBoth("lifetime reached") })
		defer t.Stop()
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, down); done <- struct{}{} }()
	go func() { io.Copy(down, up); done <- struct{}{} }()
	<-done
	closeBoth("one side closed")
	<-done
}
