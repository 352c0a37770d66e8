package analyze

// Code is a stable verdict code: scripts match on these strings.
type Code string

// The verdict catalogue. Each code has one row in table below; codes are
// appended there and never renamed (codes_test.go holds the list).
const (
	OK                    Code = "ok"
	ClientNotWebSocket    Code = "client_not_websocket"
	UpgradeHeaderDropped  Code = "upgrade_header_dropped"
	ConnectionNotUpgrade  Code = "connection_not_upgrade"
	UpstreamHTTP10        Code = "upstream_http10"
	WSHeaderAltered       Code = "ws_header_altered"
	HostRewritten         Code = "host_rewritten"
	PathRewritten         Code = "path_rewritten"
	UpstreamConnectFailed Code = "upstream_connect_failed"
	UpstreamTimeout       Code = "upstream_timeout"
	UpstreamClosedEarly   Code = "upstream_closed_early"
	BackendRejected       Code = "backend_rejected"
	BackendNotWebSocket   Code = "backend_not_websocket"
	BadAccept             Code = "bad_accept"
	ProxyRejected         Code = "proxy_rejected"
	Redirected            Code = "redirected"
	ResponseAltered       Code = "response_altered"
	IdleTimeout           Code = "idle_timeout"
	MessageTooBig         Code = "message_too_big"
	ClosedByBackend       Code = "closed_by_backend"
	ClosedByClient        Code = "closed_by_client"
	AbnormalClose         Code = "abnormal_close"
	FrameProtocolError    Code = "frame_protocol_error"
	FramesNotRelayed      Code = "frames_not_relayed"
	TLSHandshakeFailed    Code = "tls_handshake_failed"
	EncryptedLeg          Code = "encrypted_leg"
	Unpaired              Code = "unpaired"
	// PlainHTTP marks an exchange that is no WebSocket attempt; reported
	// only with --all and never counted as an attempt.
	PlainHTTP Code = "plain_http"

	// Added as real captures showed them.
	HandshakeNotCaptured   Code = "handshake_not_captured"
	FrontIdleTimeout       Code = "front_idle_timeout"
	LifetimeLimit          Code = "lifetime_limit"
	MassClose              Code = "mass_close"
	StickySessionMissing   Code = "sticky_session_missing"
	ProxyAtCapacity        Code = "proxy_at_capacity"
	HeadersTooLarge        Code = "headers_too_large"
	OriginMismatch         Code = "origin_mismatch"
	UntrustedProxy         Code = "untrusted_proxy"
	H2WebSocketRefused     Code = "h2_websocket_refused"
	ClientHTTP2            Code = "client_http2"
	UpstreamTLSFailed      Code = "upstream_tls_failed"
	UpstreamSchemeMismatch Code = "upstream_scheme_mismatch"

	// CannotTell: the capture lacks the bytes that decide the attempt (a
	// snap length cut them); the evidence says which.
	CannotTell Code = "cannot_tell"
	// From the proxy's own configuration (Options.Config).
	ConfigReadTimeoutShort    Code = "config_read_timeout_short"
	ConfigHeadersNotInherited Code = "config_headers_not_inherited"

	// The node: what a proxy host in a cluster or a cloud records.
	UpgradeNotRelayed     Code = "upgrade_not_relayed"
	ExtensionsStripped    Code = "extensions_stripped"
	ProxyProtocolMismatch Code = "proxy_protocol_mismatch"
)

// Hop is where along the chain a finding sits.
type Hop string

const (
	HopNone    Hop = "-"
	HopClient  Hop = "client"
	HopFront   Hop = "front" // something in front of the captured proxy
	HopProxy   Hop = "proxy"
	HopConnect Hop = "connect"
	HopBackend Hop = "backend"
	HopSession Hop = "session"
)

// Severity orders verdicts for people and for exit codes.
type Severity string

const (
	SevOK    Severity = "ok"
	SevInfo  Severity = "info"
	SevWarn  Severity = "warn"
	SevError Severity = "error"
)

// Stages, in the order a handshake travels: the earliest stage holding a
// finding gives the primary code; within a stage, the earlier row wins.
const (
	stageClient = iota
	stageProxyRequest
	stageConnect
	stageBackend
	stageProxyResponse
	// The session stage is ordered by cause: a protocol error explains a
	// close, a too-big message explains a reset, and so on.
	stageSession
	stageSessionTooBig
	stageSessionIdle
	stageSessionRelay
	stageSessionAbnormal
	stageSessionClose
	// Config findings the wire does not show yet come after all of it.
	stageConfig
	stageNone // ok
	// Codes that explain others and never lead (a rewritten Host behind
	// a backend's 403); cannot_tell and unpaired lead a failed attempt
	// when nothing else holds.
	stageExplains
)

// adviceFunc returns the proxy error-log line that goes with a verdict
// whose primary code is the row's (nginx's wording, "" when none) and the
// fix, from the verdict, the attempt's facts and the primary finding p
// (nil: ok).
type adviceFunc func(v *Verdict, a *attempt, p *finding) (errorLog, fix string)

// codeRow is everything the package knows of a code but its rules.
type codeRow struct {
	code    Code
	hop     Hop
	sev     Severity // default; verdict() may raise it
	stage   int
	summary string
	advice  adviceFunc
}

// table is the catalogue, in the order `wsdiag codes` lists it and ties
// between findings of one stage are broken. Adding a code:
//  1. append its constant above and its string to stableCodes (codes_test.go);
//  2. append its row here, with its advice func (advice.go, or beside its
//     rule; what it needs beyond the verdict is a fact of the attempt);
//  3. write the rule that finds it, a function of the attempt's facts, and
//     give it a row in rules (rules.go) and a case in rules_test.go;
//  4. add it to README's verdict tables.
//
// Never reorder or rename: scripts match on the strings.
var table = []codeRow{
	{code: OK, hop: HopNone, sev: SevOK, stage: stageNone, summary: "upgrade on every leg, 101 on every leg", advice: adviceOK},
	{code: ClientNotWebSocket, hop: HopClient, sev: SevError, stage: stageClient, summary: "the client's own request lacks Upgrade/Connection/Key/Version 13", advice: adviceClientNotWebSocket},
	{code: UpgradeHeaderDropped, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "the client sent Upgrade: websocket, the proxy's upstream request has none", advice: adviceUpgradeHeaderDropped},
	{code: ConnectionNotUpgrade, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "the proxy's upstream Connection header lacks the upgrade token", advice: adviceConnectionNotUpgrade},
	{code: UpstreamHTTP10, hop: HopProxy, sev: SevWarn, stage: stageProxyRequest, summary: "the proxy's upstream request is HTTP/1.0 (nginx's default before 1.29.7)", advice: adviceUpstreamHTTP10},
	{code: WSHeaderAltered, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "Sec-WebSocket-Key/Version/Protocol/Extensions differ or are missing upstream", advice: adviceWSHeaderAltered},
	{code: HostRewritten, hop: HopProxy, sev: SevInfo, stage: stageExplains, summary: "the upstream Host differs from the client's (finding)", advice: noAdvice},
	{code: PathRewritten, hop: HopProxy, sev: SevInfo, stage: stageExplains, summary: "the upstream path differs from the client's (finding)", advice: noAdvice},
	{code: UpstreamConnectFailed, hop: HopConnect, sev: SevError, stage: stageConnect, summary: "the proxy's SYN to the backend was refused or never answered", advice: adviceUpstreamConnectFailed},
	{code: UpstreamTimeout, hop: HopBackend, sev: SevError, stage: stageBackend, summary: "the backend took the request and did not answer before the proxy gave up", advice: adviceUpstreamTimeout},
	{code: UpstreamClosedEarly, hop: HopBackend, sev: SevError, stage: stageBackend, summary: "the backend closed before a complete response header", advice: adviceUpstreamClosedEarly},
	{code: BackendRejected, hop: HopBackend, sev: SevError, stage: stageBackend, summary: "a correct upgrade reached the backend, which answered 4xx/5xx", advice: adviceBackendRejected},
	{code: BackendNotWebSocket, hop: HopBackend, sev: SevError, stage: stageBackend, summary: "a correct upgrade reached the backend, which answered 2xx/3xx without 101", advice: adviceBackendNotWebSocket},
	{code: BadAccept, hop: HopBackend, sev: SevError, stage: stageBackend, summary: "101 whose Sec-WebSocket-Accept does not match the key", advice: adviceBadAccept},
	{code: ProxyRejected, hop: HopProxy, sev: SevError, stage: stageProxyResponse, summary: "the proxy answered with an error itself; no upstream request", advice: adviceProxyRejected},
	{code: Redirected, hop: HopProxy, sev: SevError, stage: stageProxyResponse, summary: "the client got a redirect: WebSocket clients do not follow them", advice: adviceRedirected},
	{code: ResponseAltered, hop: HopProxy, sev: SevError, stage: stageProxyResponse, summary: "the proxy did not relay the backend's answer as it was", advice: adviceResponseAltered},
	{code: IdleTimeout, hop: HopSession, sev: SevWarn, stage: stageSessionIdle, summary: "after 101 the proxy closed both legs after N s without frames", advice: adviceIdleTimeout},
	{code: MessageTooBig, hop: HopSession, sev: SevError, stage: stageSessionTooBig, summary: "close 1009, or the backend dropping the connection mid-message", advice: adviceMessageTooBig},
	{code: ClosedByBackend, hop: HopSession, sev: SevWarn, stage: stageSessionClose, summary: "the backend sent a close frame", advice: adviceClosedByBackend},
	{code: ClosedByClient, hop: HopSession, sev: SevWarn, stage: stageSessionClose, summary: "the client sent a close frame", advice: adviceClosedByClient},
	{code: AbnormalClose, hop: HopSession, sev: SevWarn, stage: stageSessionAbnormal, summary: "RST or FIN without a close frame", advice: adviceAbnormalClose},
	{code: FrameProtocolError, hop: HopSession, sev: SevError, stage: stageSession, summary: "an invalid WebSocket frame", advice: adviceFrameProtocolError},
	{code: FramesNotRelayed, hop: HopSession, sev: SevError, stage: stageSessionRelay, summary: "frames in on one leg never left on the other", advice: adviceFramesNotRelayed},
	// tlsFailure (tls.go) builds this verdict and its fix from the alert.
	{code: TLSHandshakeFailed, hop: HopClient, sev: SevError, stage: stageClient, summary: "TLS alert or abandoned handshake on a TLS leg", advice: noAdvice},
	{code: EncryptedLeg, hop: HopNone, sev: SevInfo, stage: stageExplains, summary: "the client leg is TLS without keys: judged from the upstream leg", advice: noAdvice},
	{code: Unpaired, hop: HopNone, sev: SevWarn, stage: stageExplains, summary: "only one leg is in the capture, and it hides the cause", advice: adviceUnpaired},
	{code: PlainHTTP, hop: HopNone, sev: SevInfo, stage: stageExplains, summary: "a plain HTTP exchange, not a WebSocket attempt (shown with --all)", advice: noAdvice},

	// Stages put a code before the one it refines (untrusted_proxy before
	// backend_rejected).
	{code: HandshakeNotCaptured, hop: HopSession, sev: SevInfo, stage: stageExplains, summary: "the session started before the capture: its handshake is not in it (finding)", advice: adviceHandshakeNotCaptured},
	{code: FrontIdleTimeout, hop: HopFront, sev: SevWarn, stage: stageSessionIdle, summary: "something in front of the proxy cut the client leg after N s without frames", advice: adviceFrontIdleTimeout},
	{code: LifetimeLimit, hop: HopFront, sev: SevWarn, stage: stageSessionIdle, summary: "the client leg was cut at a fixed age despite traffic (a maximum connection lifetime)", advice: adviceLifetimeLimit},
	{code: MassClose, hop: HopSession, sev: SevWarn, stage: stageSessionIdle, summary: "many tunnels closed at once by the proxy or a backend (reload, restart, deploy): one event line, each tunnel points to it", advice: adviceMassClose},
	{code: StickySessionMissing, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "the session's polling handshake and its upgrade reached different backends", advice: adviceStickySessionMissing},
	{code: ProxyAtCapacity, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "new attempts fail while the open tunnels sit at a plateau (worker_connections, file descriptors)", advice: adviceProxyAtCapacity},
	{code: HeadersTooLarge, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "the handshake's header block was refused as too large (400/431)", advice: adviceHeadersTooLarge},
	{code: OriginMismatch, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "the backend refused the Origin against the Host or scheme it received", advice: adviceOriginMismatch},
	{code: UntrustedProxy, hop: HopBackend, sev: SevError, stage: stageConnect, summary: "the backend refused X-Forwarded-For from a proxy not in its trusted list", advice: adviceUntrustedProxy},
	{code: H2WebSocketRefused, hop: HopProxy, sev: SevError, stage: stageProxyRequest, summary: "an HTTP/2 extended CONNECT (RFC 8441) was refused or never advertised", advice: adviceH2WebSocketRefused},
	{code: ClientHTTP2, hop: HopClient, sev: SevInfo, stage: stageExplains, summary: "the client leg is HTTP/2 (ALPN h2) (finding)", advice: noAdvice},
	{code: UpstreamTLSFailed, hop: HopConnect, sev: SevError, stage: stageConnect, summary: "the proxy's TLS handshake with the backend failed (no SNI, certificate not verified)", advice: adviceUpstreamTLSFailed},
	{code: UpstreamSchemeMismatch, hop: HopConnect, sev: SevError, stage: stageConnect, summary: "plain HTTP to a TLS port, or TLS to a plain one, on the upstream leg", advice: adviceUpstreamSchemeMismatch},

	// cutRule (cut.go) finds it; it leads only when nothing else is proven.
	{code: CannotTell, hop: HopNone, sev: SevWarn, stage: stageExplains, summary: "the capture lacks the bytes that decide the attempt (a snap length cut them, or the capture ended first): the evidence says which", advice: adviceCannotTell},
	// config.go: from the proxy's configuration, with --nginx-config or --proxy-config.
	{code: ConfigReadTimeoutShort, hop: HopProxy, sev: SevWarn, stage: stageConfig, summary: "the location's read timeout is below the longest silence or ping interval on the wire (config)", advice: adviceConfigReadTimeoutShort},
	{code: ConfigHeadersNotInherited, hop: HopProxy, sev: SevError, stage: stageExplains, summary: "upgrade headers set in an outer block are not inherited: the block sets its own proxy_set_header (finding)", advice: noAdvice},

	// notrelayed.go
	{code: UpgradeNotRelayed, hop: HopProxy, sev: SevError, stage: stageProxyResponse, summary: "the backend's 101 reached the proxy and never its client, who waited (a Node.js proxy without its upgrade handler)", advice: adviceUpgradeNotRelayed},
	// extensions.go
	{code: ExtensionsStripped, hop: HopProxy, sev: SevInfo, stage: stageExplains, summary: "the proxy dropped the client's Sec-WebSocket-Extensions offer: the tunnel works, uncompressed (finding)", advice: noAdvice},
	// proxyproto.go
	{code: ProxyProtocolMismatch, hop: HopProxy, sev: SevError, stage: stageClient, summary: "the PROXY protocol on one end only: a header the proxy does not expect (answered 400 at once), or none where it expects one (closed without a byte)", advice: adviceProxyProtocolMismatch},
}

// rowIndex maps a code to its row in table; built in init so that advice
// funcs may look rows up without an initialization cycle.
var rowIndex map[Code]int

// Codes lists every code in table order (for documentation and tests).
var Codes []Code

func init() {
	rowIndex = make(map[Code]int, len(table))
	Codes = make([]Code, len(table))
	for i, r := range table {
		rowIndex[r.code] = i
		Codes[i] = r.code
	}
}

// rowOf returns c's row; an unknown code gets an empty row ordered last.
func rowOf(c Code) *codeRow {
	if i, ok := rowIndex[c]; ok {
		return &table[i]
	}
	return &codeRow{code: c, hop: HopNone, stage: stageNone}
}

// codeIndex is c's position in table (len(table) when unknown).
func codeIndex(c Code) int {
	if i, ok := rowIndex[c]; ok {
		return i
	}
	return len(table)
}

// Describe returns the hop and default severity of a code.
func Describe(c Code) (Hop, Severity) {
	r := rowOf(c)
	return r.hop, r.sev
}

// Summary is a one-line description of a code.
func Summary(c Code) string { return rowOf(c).summary }
