// Package reassembly owns TCP: it tracks connections (a fast path for
// in-order segments, gopacket's reassembly for holes and reordering),
// numbers them, steps over gaps and segments cut by the snap length, and
// routes each direction's bytes to the protocol parsers in proto/ — TLS
// (proto/tlsrec) first when a connection starts with a TLS record, then
// HTTP/1.x (proto/http1), then WebSocket frames (proto/wsframe) after a
// 101. It turns what they find into the events of event.go, its contract
// with analyze.
//
// It must not know wire syntax (that is in proto/), capture formats (that
// is in capture), or what makes an upgrade succeed (that is in analyze).
package reassembly
