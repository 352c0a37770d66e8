package analyze

import (
	"slices"
	"strconv"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// HTTP/2 client legs (RFC 8441): the attempt is a stream whose request is
// CONNECT with :protocol websocket, and success is a 2xx on that stream.
// There is no Upgrade, Connection or Sec-WebSocket-Key on such a leg; the
// proxy makes all three for its HTTP/1.1 upstream request.

// h2WebSocket reports whether r opens a WebSocket the RFC 8441 way.
func h2WebSocket(r *reassembly.Request) bool {
	return r.H2 != nil && r.Method == "CONNECT" && r.H2.Protocol == "websocket"
}

// wantsUpgrade reports whether r asks for a WebSocket: an HTTP/1.1
// Upgrade, or an extended CONNECT.
func wantsUpgrade(r *reassembly.Request) bool {
	return r.Headers.HasToken("Upgrade", "websocket") || h2WebSocket(r)
}

// asksConnectionUpgrade is the Connection: upgrade half of the same.
func asksConnectionUpgrade(r *reassembly.Request) bool {
	return r.Headers.HasToken("Connection", "upgrade") || h2WebSocket(r)
}

// switched reports whether this leg's answer opened the tunnel.
func (x *exchange) switched() bool {
	if x.resp == nil {
		return false
	}
	return x.resp.Status == 101 || x.req != nil && h2WebSocket(x.req) && x.resp.Status/100 == 2
}

// hostName is the header that names the host on r's leg.
func hostName(r *reassembly.Request) string {
	if r.H2 != nil {
		return ":authority"
	}
	return "Host"
}

func hostOf(r *reassembly.Request) string {
	h, _ := r.Headers.Get(hostName(r))
	return h
}

// h2Facts are what an HTTP/2 client leg shows.
type h2Facts struct {
	stream bool // leg 0 is an HTTP/2 stream
	ws     bool // an extended CONNECT with :protocol websocket
	// notOffered: the server's SETTINGS came without
	// SETTINGS_ENABLE_CONNECT_PROTOCOL.
	notOffered bool
	// With no upstream leg: the stream was reset instead of answered, or
	// answered with an error.
	reset, refusedStatus bool
}

// refused: the proxy refused the extended CONNECT itself, so no upstream
// leg was due.
func (h *h2Facts) refused() bool { return h.ws && (h.notOffered || h.reset || h.refusedStatus) }

func h2FactsOf(chain []*exchange) h2Facts {
	A := chain[0]
	r := A.req
	if r.H2 == nil {
		return h2Facts{}
	}
	h := h2Facts{stream: true, ws: h2WebSocket(r)}
	if !h.ws {
		return h
	}
	h.notOffered = r.H2.ServerSettings && !r.H2.ConnectProtocol
	if len(chain) == 1 && A.resp != nil && !A.switched() {
		h.reset = A.resp.Reset
		h.refusedStatus = !A.resp.Reset && A.resp.Status >= 400
	}
	return h
}

// h2Rule: the HTTP/2 client leg is a finding of its own (client_http2);
// an extended CONNECT the proxy never advertised, or answered itself with
// an error or RST_STREAM, is h2_websocket_refused.
func h2Rule(a *attempt, out []finding) []finding {
	h := &a.client.h2
	if !h.stream {
		return out
	}
	A := a.chain[0]
	r := A.req
	leg, rleg := a.legName(0)
	out = append(out, explains(ClientHTTP2, 0, leg+": HTTP/2 stream "+strconv.FormatUint(uint64(r.H2.ID), 10)+": "+requestLine(r)+protocolNote(r)))
	var ev []string
	if h.ws && h.notOffered {
		ev = append(ev, rleg+": SETTINGS without SETTINGS_ENABLE_CONNECT_PROTOCOL: the server never offered WebSockets over HTTP/2")
	}
	switch {
	case h.ws && h.reset:
		ev = append(ev, rleg+": stream reset ("+A.resp.Reason+") instead of an answer")
	case h.ws && h.refusedStatus:
		ev = append(ev, rleg+": "+statusLine(A.resp))
	}
	if len(ev) == 0 {
		return out
	}
	return append(out, found(H2WebSocketRefused, 0, ev...))
}

func protocolNote(r *reassembly.Request) string {
	if r.H2.Protocol == "" {
		return ""
	}
	return " (:protocol " + r.H2.Protocol + ")"
}

// upgradeEv is the evidence of what the request asked for: its Upgrade
// header, or the extended CONNECT that stands for it on HTTP/2.
func upgradeEv(leg string, r *reassembly.Request) string {
	if h2WebSocket(r) {
		return leg + ": " + requestLine(r) + " with :protocol websocket (HTTP/2 extended CONNECT)"
	}
	return headerEv(leg, "Upgrade", r.Headers)
}

func adviceH2WebSocketRefused(v *Verdict, a *attempt, _ *finding) (string, string) {
	p := proxyName(v)
	switch {
	case strings.HasPrefix(v.ProxyProduct, "nginx") || a.proxy.generatedBy == "nginx":
		return "", p + " (nginx) does not implement WebSockets over HTTP/2 (RFC 8441) and never advertises them: a client must open WebSockets on a separate HTTP/1.1 connection (browsers do, when the server does not send SETTINGS_ENABLE_CONNECT_PROTOCOL); fix the client that sent extended CONNECT anyway, or put a proxy that supports it in front (HAProxy ≥ 2.4, Envoy with allow_connect, Traefik ≥ 3.2.4)"
	case strings.HasPrefix(strings.ToLower(v.ProxyProduct), "haproxy"):
		return "", p + " (HAProxy) refused the extended CONNECT: check that no `http-request deny`/`return` matches the WebSocket path and that `option h2-workaround-bogus-websocket-clients` is not set if the clients are standard"
	}
	return "", p + " refused the WebSocket over HTTP/2 (RFC 8441): enable extended CONNECT on it (Envoy: http2_protocol_options.allow_connect and upgrade_configs websocket; h2o; Traefik ≥ 3.2.4), or serve WebSockets over HTTP/1.1 (disable h2 on that listener, or stop advertising SETTINGS_ENABLE_CONNECT_PROTOCOL)"
}

// keylessH2 explains an opaque TLS client leg that speaks HTTP/2: its
// ServerHello chose h2 (TLS 1.2), or, in TLS 1.3 where the choice is
// encrypted, the client offered h2 (browsers offer only http/1.1 on the
// separate connections they open for WebSockets to HTTP/1.1 servers).
func keylessH2(out []finding, l *tlsLeg) []finding {
	if l == nil || l.end == nil || l.end.TLSInfo == nil {
		return out
	}
	in := l.end.TLSInfo
	switch {
	case in.ALPN == "h2":
		out = append(out, explains(ClientHTTP2, 0, "client→proxy: ServerHello chose ALPN h2: the WebSocket travels on an HTTP/2 stream (RFC 8441 extended CONNECT)"))
	case in.ALPN == "" && slices.Contains(in.ALPNOffered, "h2"):
		out = append(out, explains(ClientHTTP2, 0, "client→proxy: ClientHello offers ALPN "+strings.Join(in.ALPNOffered, ",")+
			"; TLS 1.3 hides the server's choice, so the leg is likely HTTP/2 (RFC 8441 extended CONNECT): --keylog tells for sure"))
	}
	return out
}

// legProto names a leg's HTTP for the outputs.
func legProto(r *reassembly.Request) string {
	if r.H2 != nil {
		return "h2"
	}
	return strings.ToLower(r.Version)
}
