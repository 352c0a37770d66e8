// Package reassembly owns TCP: it tracks connections, numbers them, steps
// over gaps and segments cut by the snap length, and routes each
// direction's bytes to the protocol parsers in proto/, turning what they
// find into the events of event.go, its contract with analyze.
//
// In-order segments go straight to the parsers (fastpath.go); a
// connection's first hole or reordering hands it to gopacket's reassembly
// (assembler.go), bounded in pages and flushed when idle. A connection's
// two directions are flow.Dir values (Fwd: the first segment seen's)
// until a SYN or the first bytes say which is the client's. The glue in
// stream.go sends a connection that starts with a TLS record through
// proto/tlsrec first, then HTTP/1.x to proto/http1 and, after a 101, the
// frames to proto/wsframe; h2.go does the same for HTTP/2 (proto/h2) and
// its WebSocket streams (RFC 8441); midstream.go finds the frames of
// sessions that began before the capture. budget.go holds the byte budget
// (--max-memory) and the eviction of the idlest connections, quiet ones
// first.
//
// It must not know wire syntax (that is in proto/), capture formats (that
// is in capture), or what makes an upgrade succeed (that is in analyze).
package reassembly
