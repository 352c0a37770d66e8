// Package http1 is a push parser for HTTP/1.x: one Parser per direction
// of a connection, fed its bytes in pieces of any size, reports to a
// Handler when a direction's first bytes tell what it carries, when a
// message head is complete, the body bytes (delimited by Content-Length,
// chunked coding or the close) and when a 101 switches the connection to
// another protocol. It resynchronises on the next start line after a gap
// and bounds what it buffers (Limits).
//
// parser.go holds the Parser and its Handler, message.go the syntax it
// relies on (sniffing, header block ends, start lines, body length,
// chunk sizes), headers.go the Headers a head carries. A Parser hands its
// Handler back the flow.Dir it was given, so that one Handler serves both
// directions.
//
// It must not know TCP, connections, pairing of requests with responses,
// or events: the caller (reassembly) does that in its Handler.
package http1
