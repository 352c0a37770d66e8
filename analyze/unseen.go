package analyze

import (
	"net/netip"

	"github.com/wsdiag/wsdiag/reassembly"
)

// What a keyless capture cannot show: a TLS client connection that
// carried a request and got an answer, but led to no upstream request,
// was answered by the proxy itself (a deny, a 404, headers too large, a
// refused HTTP/2 extended CONNECT…), and without the keys what it said is
// unread. Such connections are counted when they are forgotten, so that
// the summary can say how many there were and what would show them (the
// clients' key log, or the proxy's own plaintext) instead of saying
// nothing. A connection to a proxy whose other opaque legs were paired
// with upstream requests counts as answered by the proxy; one to a proxy
// with no upstream request in the capture at all (an upstream on another
// interface, a unix socket) only as having none.

// maxFronts bounds the proxies remembered.
const maxFronts = 4096

// front records that l's server is a proxy that relays TLS clients'
// requests upstream.
func (a *Analyzer) front(l *tlsLeg) {
	if a.tlsFronts == nil {
		a.tlsFronts = map[netip.AddrPort]bool{}
	}
	if len(a.tlsFronts) < maxFronts {
		a.tlsFronts[l.conn.Server] = true
	}
}

// unseen counts l, being forgotten, when it was a TLS client connection
// whose request and answer nothing read.
func (a *Analyzer) unseen(l *tlsLeg) {
	if l.decrypted || l.claimed || l.failed != nil || l.end == nil || l.end.HTTP || !answered(l.end.TLSInfo) {
		return
	}
	if a.tlsFronts[l.conn.Server] {
		a.stats.TLSSelfAnswered++
	} else {
		a.stats.TLSNoUpstream++
	}
}

// answered reports whether a handshake seen from its ClientHello to its
// end was followed by application data from the client, then from the
// server. (Bytes caught in the middle of a connection that only look like
// TLS records, WebSocket frames of a session begun before the capture,
// have no hello.)
func answered(in *reassembly.TLSInfo) bool {
	if in == nil || !in.ClientHello || !in.ServerHello || !in.HandshakeDone {
		return false
	}
	asked := false
	for _, r := range in.AppRecords {
		if r.FromClient {
			asked = true
		} else if asked {
			return true
		}
	}
	return false
}
