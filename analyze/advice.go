package analyze

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The nginx recipe for proxying WebSocket, in full.
const nginxRecipe = `in http {}:  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
in the location:  proxy_http_version 1.1;
                  proxy_set_header Upgrade $http_upgrade;
                  proxy_set_header Connection $connection_upgrade;`

// upgradeFix is how to make a proxy that is not nginx forward the upgrade.
func upgradeFix(fam string) string {
	switch fam {
	case "apache":
		return `Apache's mod_proxy_http forwards the upgrade only when told: ProxyPass /ws http://backend/ws upgrade=websocket (Apache ≥ 2.4.47; older: mod_proxy_wstunnel with ProxyPass /ws ws://backend/ws)`
	case "haproxy":
		return `HAProxy forwards upgrades natively in "mode http": look for rules that remove or rewrite Upgrade/Connection (http-request del-header / set-header), and set "timeout tunnel"`
	case "caddy":
		return `Caddy's reverse_proxy forwards upgrades by default: look for header_up rules that remove or rewrite Upgrade/Connection`
	case "envoy":
		return `Envoy needs upgrade_configs: [{upgrade_type: websocket}] on the HTTP connection manager or route`
	case "traefik":
		return `Traefik forwards upgrades by default: look for middlewares that rewrite Upgrade/Connection`
	}
	return genericRecipe
}

// whereUpstream says where a product configures its backend's address.
func whereUpstream(fam string) string {
	switch fam {
	case "nginx":
		return "proxy_pass / the upstream block"
	case "apache":
		return "the ProxyPass line"
	case "haproxy":
		return `the "server" line of the backend section`
	case "caddy":
		return "the reverse_proxy upstream"
	}
	return "the proxy's upstream address"
}

const genericRecipe = `forward the upgrade: HAProxy does it natively (mind "timeout tunnel"); Apache ≥ 2.4.47 needs "ProxyPass … upgrade=websocket" (or mod_proxy_wstunnel); Caddy's reverse_proxy does it by default; Envoy needs upgrade_configs: [{upgrade_type: websocket}]; nginx: ` +
	`proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;`

// isNginx reports whether the proxy is nginx, and its version when known.
func isNginx(v *Verdict) (bool, [3]int) {
	var ver [3]int
	p := strings.ToLower(v.ProxyProduct)
	if !strings.HasPrefix(p, "nginx") {
		return false, ver
	}
	if _, vs, ok := strings.Cut(p, "/"); ok {
		vs, _, _ = strings.Cut(vs, " ")
		for i, part := range strings.SplitN(vs, ".", 3) {
			ver[i], _ = strconv.Atoi(part)
		}
	}
	return true, ver
}

// noAdvice is for codes that are never primary (notes) or whose verdict
// gets its fix elsewhere.
func noAdvice(*Verdict, *attempt, *finding) (string, string) { return "", "" }

func proxyName(v *Verdict) string {
	if v.Proxy.IsValid() {
		return "the proxy at " + v.Proxy.String()
	}
	return "the proxy"
}

func backendName(v *Verdict) string {
	if v.Backend.IsValid() {
		return "the backend at " + v.Backend.String()
	}
	return "the backend"
}

// hasFinding reports whether c is among the verdict's findings.
func (v *Verdict) hasFinding(c Code) bool {
	for _, f := range v.Findings {
		if f == c {
			return true
		}
	}
	return false
}

func adviceOK(v *Verdict, _ *attempt, _ *finding) (string, string) {
	if v.hasFinding(Unpaired) {
		return "", "nothing to fix; the upstream leg is not in the capture, so only the client's side was checked"
	}
	return "", ""
}

func adviceClientNotWebSocket(*Verdict, *attempt, *finding) (string, string) {
	return "", "the client's request is not a WebSocket handshake (RFC 6455 §4.1: GET, HTTP/1.1, Upgrade: websocket, Connection: Upgrade, a 16-byte base64 Sec-WebSocket-Key, Sec-WebSocket-Version: 13): fix the client, or use a WebSocket library"
}

func adviceUpgradeHeaderDropped(v *Verdict, a *attempt, _ *finding) (string, string) {
	el, fix := upgradeAdvice(v, "nginx does not forward the client's Upgrade and Connection headers unless told to; add:\n")
	return offWireToo(v, a, el, fix)
}

// offWireToo adds to a fix how to see the upstream leg the capture lacks
// (unless the client's leg alone was judged by design: its caller says
// what shows more).
func offWireToo(v *Verdict, a *attempt, el, fix string) (string, string) {
	if a.alone.offWire && a.an.opt.ClientLegOnly == "" {
		fix += "\n(" + offWireAdvice(family(v.ProxyProduct)) + ")"
	}
	return el, fix
}

func adviceConnectionNotUpgrade(v *Verdict, a *attempt, _ *finding) (string, string) {
	if conn := a.upstreamConnection(); conn != "" {
		el, fix := upgradeAdvice(v, "nginx sends \"Connection: "+conn+"\" upstream unless told otherwise; add:\n")
		return offWireToo(v, a, el, fix)
	}
	el, fix := upgradeAdvice(v, `the upstream request has no Connection header (the keep-alive recipe proxy_set_header Connection ""; removes the upgrade token); use the map instead:`+"\n")
	return offWireToo(v, a, el, fix)
}

func adviceUpstreamHTTP10(v *Verdict, a *attempt, _ *finding) (string, string) {
	el, fix := upgradeAdvice(v, "the upgrade needs HTTP/1.1 upstream (some backends tolerate 1.0, many do not); add:\n")
	return offWireToo(v, a, el, fix)
}

// upgradeAdvice is the fix for a proxy that does not forward the upgrade:
// nginx's recipe after intro, or the product's own way.
func upgradeAdvice(v *Verdict, intro string) (string, string) {
	nginx, ver := isNginx(v)
	if !nginx {
		return "", upgradeFix(family(v.ProxyProduct))
	}
	defaultsHTTP11 := ver[0] > 1 || ver[0] == 1 && (ver[1] > 29 || ver[1] == 29 && ver[2] >= 7)
	var b strings.Builder
	b.WriteString(intro)
	b.WriteString(nginxRecipe)
	if defaultsHTTP11 {
		b.WriteString("\n(" + v.ProxyProduct + " already defaults to proxy_http_version 1.1, but still drops Upgrade)")
	} else if strings.Contains(v.ProxyProduct, "/") && v.hasFinding(UpstreamHTTP10) {
		b.WriteString("\n(" + v.ProxyProduct + " defaults to proxy_http_version 1.0 with Connection: close)")
	}
	return "", b.String()
}

func adviceWSHeaderAltered(v *Verdict, _ *attempt, p *finding) (string, string) {
	nginx, _ := isNginx(v)
	if p != nil && len(p.evidence) > 0 && strings.Contains(p.evidence[len(p.evidence)-1], "in the proxy's 101") {
		if nginx {
			return "", "remove proxy_hide_header Sec-WebSocket-Extensions (or -Protocol): nginx passes the backend's 101 headers on by default; or turn compression off on the backend"
		}
		return "", "make the proxy pass the backend's 101 on with its Sec-WebSocket-Extensions and -Protocol headers, or turn compression off on the backend"
	}
	if nginx {
		return "", "remove the proxy_set_header lines that override Sec-WebSocket-Key/-Version/-Protocol/-Extensions; nginx forwards them untouched by default"
	}
	return "", "make the proxy forward Sec-WebSocket-Key, -Version, -Protocol and -Extensions unchanged"
}

func adviceUpstreamConnectFailed(v *Verdict, a *attempt, _ *finding) (string, string) {
	nginx, _ := isNginx(v)
	nginxLog := nginx || a.proxy.generatedBy == "nginx"
	if len(a.connect.failed) == 0 && a.alone.offWire {
		el := ""
		if nginxLog {
			el = "connect() to unix:/path failed (2: No such file or directory) while connecting to upstream (logged at crit), or (111: Connection refused) / (13: Permission denied)"
		}
		if why := a.an.opt.ClientLegOnly; why != "" {
			return el, "the proxy could not reach its upstream (its 502 came at once, without waiting for an answer): " + why
		}
		return el, "the proxy could not reach its upstream, whose leg is not on the wire: for a unix socket, start the backend that creates it (php-fpm, gunicorn, uvicorn …), check that the path in " +
			whereUpstream(family(v.ProxyProduct)) + " is the one it listens on (ss -xlp) and that the proxy's user may write to it; for a TCP upstream, capture its interface and port to see the SYN and its answer"
	}
	refused := false
	for _, c := range a.connect.failed {
		if c.ServerClose.Kind == reassembly.CloseRST && !c.SYNACK {
			refused = true
		}
	}
	if refused {
		el := ""
		if nginxLog {
			el = "connect() failed (111: Connection refused) while connecting to upstream"
		}
		return el, fmt.Sprintf("nothing listens at %s: start the backend, or point %s at the right address and port", strings.TrimPrefix(backendName(v), "the backend at "), whereUpstream(family(v.ProxyProduct)))
	}
	el := ""
	if nginxLog {
		el = "upstream timed out (110: Connection timed out) while connecting to upstream"
	}
	return el, backendName(v) + " does not answer SYNs (down, firewalled, or wrong address): check it is up and reachable from " + proxyName(v)
}

func adviceUpstreamTimeout(v *Verdict, _ *attempt, _ *finding) (string, string) {
	el := ""
	if nginx, _ := isNginx(v); nginx {
		el = "upstream timed out (110: Connection timed out) while reading response header from upstream"
	}
	return el, backendName(v) + " accepted the connection but did not answer the handshake before the proxy gave up (nginx: proxy_read_timeout, 60 s by default): check why the backend stalls on this path"
}

func adviceUpstreamClosedEarly(v *Verdict, _ *attempt, _ *finding) (string, string) {
	el := ""
	if nginx, _ := isNginx(v); nginx {
		el = "upstream prematurely closed connection while reading response header from upstream"
	}
	return el, backendName(v) + " closed the connection without answering the handshake: check its logs (crash, wrong protocol on that port, a TLS backend spoken to in plain HTTP)"
}

func adviceBackendRejected(v *Verdict, a *attempt, _ *finding) (string, string) {
	nginx, _ := isNginx(v)
	switch {
	case a.backend.connList() != "":
		fix := fmt.Sprintf("the proxy forwarded the client's Connection: %s as is and %s wants exactly \"Upgrade\": send a single token upstream", a.backend.connList(), backendName(v))
		if nginx {
			fix += ": proxy_set_header Connection $connection_upgrade; (with the map in http {}) or proxy_set_header Connection \"upgrade\"; instead of $http_connection"
		}
		return "", fix
	case v.StatusBackend == 403 && v.hasFinding(HostRewritten):
		f := "the backend refused the handshake (403) and the proxy rewrote Host: backends that check Origin against Host (gorilla/websocket's default, Socket.IO, Django Channels' AllowedHostsOriginValidator) reject it"
		if nginx {
			f += "; add proxy_set_header Host $http_host; in the location ($http_host keeps the port, $host drops it, and a port-less Host fails the same check), or allow the origin in the backend"
		}
		return "", f
	case v.StatusBackend == 404 && v.hasFinding(PathRewritten):
		f := "the proxy rewrote the path and the backend has nothing there (404)"
		if nginx {
			f += ": a URI part in proxy_pass (\"proxy_pass http://host/x/;\") replaces the location prefix; drop it, or fix the location/proxy_pass pair"
		}
		return "", f
	}
	return "", fmt.Sprintf("%s refused a correct upgrade with %s: the reason is in its body and logs (subprotocol, auth, origin, path)", backendName(v), statusWord(backendStatus(v)))
}

func adviceBackendNotWebSocket(v *Verdict, _ *attempt, _ *finding) (string, string) {
	return "", fmt.Sprintf("%s answered %s instead of 101: it has no WebSocket handler at this path (wrong upstream, wrong path, or an HTTP-only service)", backendName(v), statusWord(backendStatus(v)))
}

// backendStatus is what the backend answered, or with one leg only what
// the client got: never 0 when an answer was seen.
func backendStatus(v *Verdict) int {
	if v.StatusBackend != 0 {
		return v.StatusBackend
	}
	return v.StatusClient
}

func adviceBadAccept(v *Verdict, a *attempt, p *finding) (string, string) {
	if a.accepts[int(p.hop)] == acceptMissing {
		return "", backendName(v) + " answered 101 without Sec-WebSocket-Accept (it must send base64(SHA-1(key + \"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\"))): clients refuse the connection; fix the backend's handshake code, or a proxy rule that strips response headers"
	}
	return "", backendName(v) + " computes Sec-WebSocket-Accept wrongly (it must be base64(SHA-1(key + \"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\"))): clients close the connection; fix the backend's handshake code"
}

func adviceProxyRejected(v *Verdict, a *attempt, _ *finding) (string, string) {
	el := ""
	if nginx, _ := isNginx(v); nginx || a.proxy.generatedBy == "nginx" {
		switch v.StatusClient {
		case 403:
			el = "access forbidden by rule"
		case 502, 503:
			el = "no live upstreams while connecting to upstream"
		}
	}
	if cause := a.selfAnswerCause(); cause != "" {
		return el, cause
	}
	p := proxyName(v)
	switch st := v.StatusClient; {
	case st == 403:
		return el, p + " refused the request itself (403: deny/allow rules, auth, or a WAF on this location); the backend never saw it"
	case st == 404:
		return el, p + " has no location for this path and answered 404 itself; add a location that proxies it"
	case st == 400 || st == 431 || st == 414:
		return el, p + " refused the request as malformed or too large (nginx: large_client_header_buffers)"
	case st >= 500:
		return el, p + " answered " + strconv.Itoa(st) + " without contacting a backend (no live upstreams, or the upstream leg is not in the capture)"
	}
	return el, p + " answered the handshake itself; the backend never saw it"
}

func adviceRedirected(*Verdict, *attempt, *finding) (string, string) {
	return "", "WebSocket clients do not follow redirects: make the client use the final URL (see Location), or stop redirecting this path (nginx: return/rewrite rules, or a missing trailing slash on the location)"
}

func adviceResponseAltered(v *Verdict, _ *attempt, _ *finding) (string, string) {
	return "", proxyName(v) + " changed the backend's answer: make it relay 101 untouched (nginx: no proxy_intercept_errors or header filters on this location)"
}

func adviceIdleTimeout(v *Verdict, a *attempt, _ *finding) (string, string) {
	nginx, _ := isNginx(v)
	el := ""
	if nginx {
		el = "upstream timed out (110: Connection timed out) while proxying upgraded connection (logged at info level)"
	}
	secs := int(a.session.idle.silence.Round(time.Second) / time.Second)
	fix := fmt.Sprintf("the proxy closed the tunnel after %d s without a frame in either direction: raise %s above the longest silence", secs, timeoutName(v.ProxyProduct))
	if nginx {
		if secs == 60 {
			fix += " (60 s is nginx's default)"
		}
		fix += ", e.g. proxy_read_timeout 1h; proxy_send_timeout 1h; in the location"
	}
	return el, fix + ", or have the client or the server send a ping more often than that"
}

func adviceMessageTooBig(*Verdict, *attempt, *finding) (string, string) {
	return "", "the receiver refuses messages this large (close 1009, or a reset mid-message): raise its limit (gorilla/websocket SetReadLimit, ws maxPayload, Tornado websocket_max_message_size …) or split messages; proxies do not limit frames after the upgrade"
}

func adviceClosedByBackend(v *Verdict, _ *attempt, _ *finding) (string, string) {
	return "", fmt.Sprintf("the backend ended the session with close code %d: see its logs for why (4000–4999 are application codes)", sessionCode(v))
}

func adviceClosedByClient(v *Verdict, _ *attempt, _ *finding) (string, string) {
	return "", fmt.Sprintf("the client ended the session with close code %d: see the client's code for why", sessionCode(v))
}

func adviceAbnormalClose(*Verdict, *attempt, *finding) (string, string) {
	return "", "a side ended the TCP connection without the WebSocket closing handshake (crash, network drop, a process killed, or a proxy/firewall timeout): the other side sees code 1006; check the side named in the evidence"
}

func adviceFrameProtocolError(*Verdict, *attempt, *finding) (string, string) {
	return "", "a side sent a frame RFC 6455 forbids (see the evidence for which rule): the receiver must fail the connection; fix that side's WebSocket library or framing code"
}

func adviceFramesNotRelayed(v *Verdict, _ *attempt, _ *finding) (string, string) {
	return "", proxyName(v) + " took frames on one leg that never left on the other: check its buffering and error log, and for filters or middleware that consume WebSocket traffic"
}

func adviceUnpaired(v *Verdict, a *attempt, _ *finding) (string, string) {
	if why := a.an.opt.ClientLegOnly; why != "" {
		return "", "the client's leg alone does not show which hop refused the upgrade: " + why
	}
	if a.alone.offWire {
		return "", "only the client's leg of this attempt is in the capture, and it does not show the cause: " + offWireAdvice(family(v.ProxyProduct))
	}
	return "", "only one leg of this attempt is in the capture, and it does not show the cause: capture on both sides of the proxy (-i any, or a filter that includes the backend's port)"
}

func adviceCannotTell(_ *Verdict, a *attempt, _ *finding) (string, string) {
	if a.cut.ended && !a.cut.cut {
		return "", "the capture ended before this attempt was answered (Ctrl-C, tcpdump -c or -G, --duration, a file cut short): capture until the handshakes you want judged are over"
	}
	return "", "the capture's snap length cut the handshake before the bytes that decide it (see which above): capture whole packets, tcpdump -s 0 (tcpdump before 4.0 kept 68 or 96 bytes by default, and tutorials copy -s 96/-s 200), or use wsdiag live"
}

// upstreamConnection is the Connection header of the first upstream
// request: leg 0 when the chain starts upstream (the client's leg unseen).
func (a *attempt) upstreamConnection() string {
	if a.kind == fromUpstream {
		return a.legHeader(0, "Connection")
	}
	return a.legHeader(1, "Connection")
}

// legHeader returns a header of leg i's request, or "".
func (a *attempt) legHeader(i int, name string) string {
	if i >= len(a.chain) {
		return ""
	}
	v, _ := a.chain[i].req.Headers.Get(name)
	return v
}

func sessionCode(v *Verdict) uint16 {
	if v.Session != nil {
		return v.Session.CloseCode
	}
	return 0
}

// Advice for the codes that look across connections.

func adviceFrontIdleTimeout(v *Verdict, a *attempt, _ *finding) (string, string) {
	return "", fmt.Sprintf("something in front of %s (a load balancer or another proxy: AWS ALB's idle timeout is 60 s, Azure's 4 min, haproxy's \"timeout client\"/\"timeout tunnel\") cut the tunnel after %s without a frame: send pings more often than that (every %s or less, from the client or the server), or raise that idle timeout",
		proxyName(v), secs(a.cross.front.silence), secs(a.cross.front.silence/2))
}

func adviceLifetimeLimit(v *Verdict, a *attempt, _ *finding) (string, string) {
	return "", fmt.Sprintf("something in front of %s ends every connection at %s of age whatever the traffic (a maximum connection lifetime: a cloud load balancer's backend or request timeout, a relay's or firewall's session limit): raise that limit, or have clients reconnect before it with backoff and jitter",
		proxyName(v), secs(a.cross.front.age))
}

func adviceMassClose(v *Verdict, a *attempt, _ *finding) (string, string) {
	if e := a.cross.mass.event; e != nil {
		return "", "part of the " + e.Ref() + ": " + e.Cause + "; " + e.Fix
	}
	return "", "many tunnels were closed at once: clients must reconnect with backoff and jitter"
}

func adviceStickySessionMissing(v *Verdict, _ *attempt, _ *finding) (string, string) {
	fix := "the session's requests must reach the backend that created it: "
	switch family(v.ProxyProduct) {
	case "nginx":
		fix += "in nginx's upstream block add ip_hash; (or hash $remote_addr consistent;); with ingress-nginx, the annotation nginx.ingress.kubernetes.io/affinity: \"cookie\""
	case "haproxy":
		fix += "in haproxy's backend: balance source, or cookie SERVERID insert indirect nocache with a cookie on each server line"
	default:
		fix += "turn on sticky sessions in the load balancer (nginx ip_hash or hash; haproxy balance source or a cookie; ingress-nginx affinity: cookie)"
	}
	return "", fix + "; or let the client skip long-polling (socket.io transports: [\"websocket\"], SignalR skipNegotiation with the WebSockets transport)"
}

func adviceProxyAtCapacity(v *Verdict, _ *attempt, _ *finding) (string, string) {
	if nginx, _ := isNginx(v); nginx || v.ProxyProduct == "" {
		return "worker_connections are not enough", proxyName(v) + " refuses new connections while its open tunnels hold every slot: raise worker_connections in events {} (each tunnel holds two: the client's connection and the upstream one) and worker_rlimit_nofile (file descriptors) with it"
	}
	return "", proxyName(v) + " refuses new connections while its open tunnels hold every slot: raise its connection limit (haproxy maxconn, the process's file descriptor limit)"
}

func adviceHeadersTooLarge(v *Verdict, _ *attempt, _ *finding) (string, string) {
	if v.Hop == HopBackend {
		return "", backendName(v) + " refused the handshake's header block as too large: raise its limit (Go http.Server MaxHeaderBytes, Node --max-http-header-size, Tomcat maxHttpHeaderSize, uvicorn h11_max_incomplete_event_size) or send fewer/smaller cookies on the WebSocket path"
	}
	fix := proxyName(v) + " refused the handshake's header block as too large itself"
	if nginx, _ := isNginx(v); nginx || strings.HasPrefix(v.ProxyProduct, "nginx") {
		fix += ": raise large_client_header_buffers (e.g. large_client_header_buffers 4 16k;) in the server block"
	}
	return "", fix + ", or send fewer/smaller cookies on the WebSocket path"
}

func adviceOriginMismatch(v *Verdict, _ *attempt, _ *finding) (string, string) {
	if v.Hop == HopBackend {
		return "", backendName(v) + " refused the page's Origin: it differs from the host the client asked for, so allow that origin in the backend's allowed-origins list (only if that page should connect)"
	}
	fix := proxyName(v) + " changed the Host the backend compares the Origin with (gorilla/websocket's default check, Socket.IO, Django Channels' AllowedHostsOriginValidator)"
	if nginx, _ := isNginx(v); nginx {
		fix += ": add proxy_set_header Host $http_host; in the location ($http_host keeps the client's Host with its port, $host drops the port; behind TLS also proxy_set_header X-Forwarded-Proto $scheme;)"
	}
	return "", fix + "; or allow the origin in the backend"
}

func adviceUntrustedProxy(v *Verdict, _ *attempt, _ *finding) (string, string) {
	return "", backendName(v) + " does not trust the proxy that sent X-Forwarded-For: add the proxy's address as the backend sees it to its trusted proxies (Home Assistant: http: use_x_forwarded_for: true and trusted_proxies: [address]; Django/Rails/Express: their trusted-proxy settings), or stop sending X-Forwarded-For"
}
