package analyze

import (
	"net/netip"
	"time"

	rs "github.com/wsdiag/wsdiag/reassembly"
)

// Code is a stable verdict code: scripts match on these strings.
type Code string

// The verdict catalogue (DESIGN.md). Session-phase codes are decided from
// the upgraded connections' ends.
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
)

// Hop is where along the chain a finding sits.
type Hop string

const (
	HopNone    Hop = "-"
	HopClient  Hop = "client"
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

func (s Severity) rank() int {
	switch s {
	case SevInfo:
		return 1
	case SevWarn:
		return 2
	case SevError:
		return 3
	}
	return 0
}

// codeInfo is a catalogue entry.
type codeInfo struct {
	hop Hop
	sev Severity
	// stage orders findings along the request's path: the earliest stage
	// holding a finding gives the primary code.
	stage int
	// note codes explain others (a rewritten Host behind a backend 403)
	// and are primary only when nothing else holds.
	note bool
}

// Stages, in the order a handshake travels.
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
	stageNone
)

var catalogue = map[Code]codeInfo{
	OK:                    {HopNone, SevOK, stageNone, false},
	ClientNotWebSocket:    {HopClient, SevError, stageClient, false},
	TLSHandshakeFailed:    {HopClient, SevError, stageClient, false},
	UpgradeHeaderDropped:  {HopProxy, SevError, stageProxyRequest, false},
	ConnectionNotUpgrade:  {HopProxy, SevError, stageProxyRequest, false},
	UpstreamHTTP10:        {HopProxy, SevWarn, stageProxyRequest, false},
	WSHeaderAltered:       {HopProxy, SevError, stageProxyRequest, false},
	HostRewritten:         {HopProxy, SevInfo, stageProxyRequest, true},
	PathRewritten:         {HopProxy, SevInfo, stageProxyRequest, true},
	UpstreamConnectFailed: {HopConnect, SevError, stageConnect, false},
	UpstreamTimeout:       {HopBackend, SevError, stageBackend, false},
	UpstreamClosedEarly:   {HopBackend, SevError, stageBackend, false},
	BackendRejected:       {HopBackend, SevError, stageBackend, false},
	BackendNotWebSocket:   {HopBackend, SevError, stageBackend, false},
	BadAccept:             {HopBackend, SevError, stageBackend, false},
	ProxyRejected:         {HopProxy, SevError, stageProxyResponse, false},
	Redirected:            {HopProxy, SevError, stageProxyResponse, false},
	ResponseAltered:       {HopProxy, SevError, stageProxyResponse, false},
	IdleTimeout:           {HopSession, SevWarn, stageSessionIdle, false},
	MessageTooBig:         {HopSession, SevError, stageSessionTooBig, false},
	ClosedByBackend:       {HopSession, SevWarn, stageSessionClose, false},
	ClosedByClient:        {HopSession, SevWarn, stageSessionClose, false},
	AbnormalClose:         {HopSession, SevWarn, stageSessionAbnormal, false},
	FrameProtocolError:    {HopSession, SevError, stageSession, false},
	FramesNotRelayed:      {HopSession, SevError, stageSessionRelay, false},
	EncryptedLeg:          {HopNone, SevInfo, stageNone, true},
	Unpaired:              {HopNone, SevWarn, stageNone, true},
	PlainHTTP:             {HopNone, SevInfo, stageNone, true},
}

// Codes lists every code in catalogue order (for documentation and tests).
var Codes = []Code{OK, ClientNotWebSocket, UpgradeHeaderDropped, ConnectionNotUpgrade, UpstreamHTTP10,
	WSHeaderAltered, HostRewritten, PathRewritten, UpstreamConnectFailed, UpstreamTimeout,
	UpstreamClosedEarly, BackendRejected, BackendNotWebSocket, BadAccept, ProxyRejected, Redirected,
	ResponseAltered, IdleTimeout, MessageTooBig, ClosedByBackend, ClosedByClient, AbnormalClose,
	FrameProtocolError, FramesNotRelayed, TLSHandshakeFailed, EncryptedLeg, Unpaired, PlainHTTP}

// Confidence says how sure a pairing of legs is.
type Confidence string

const (
	ConfExact  Confidence = "exact"  // same Sec-WebSocket-Key
	ConfHigh   Confidence = "high"   // fallback, strong agreement
	ConfMedium Confidence = "medium" // fallback, some agreement
	ConfLow    Confidence = "low"    // fallback, time order only
	ConfNone   Confidence = "none"   // one leg only
)

// Leg is one hop's exchange as the verdict saw it.
type Leg struct {
	Client, Server netip.AddrPort
	RequestLine    string
	StatusLine     string // empty: no response
	Status         int
	// The header blocks as on the wire; renderers redact secrets.
	RequestHeaders, ResponseHeaders rs.Headers
}

// Redacted returns the value to show for header name: secrets (cookies,
// credentials) become "[redacted]" unless show is set.
func Redacted(name, value string, show bool) string {
	if !show && isSecret(name) {
		return "[redacted]"
	}
	return value
}

// Session holds figures of an upgraded connection, as the client's leg
// saw it.
type Session struct {
	Duration             time.Duration
	FramesC2S, FramesS2C uint64
	BytesC2S, BytesS2C   uint64 // frame payload (TCP payload when frames were not parsed)
	LongestSilence       time.Duration
	Pings                uint32
	// ClosedBy is who ended it first: "client", "backend", "proxy" or
	// "server" (no proxy seen); "" while open. CloseCode and CloseReason
	// come from the first close frame (0: none was sent).
	ClosedBy    string
	CloseCode   uint16
	CloseReason string
	CloseKind   string // FIN or RST: how the TCP connection ended
	Open        bool   // still open at the end of the capture
}

// Verdict is the judgement of one WebSocket attempt.
type Verdict struct {
	Time     time.Time
	Code     Code
	Severity Severity
	Hop      Hop
	Findings []Code
	Client   netip.AddrPort
	Proxy    netip.AddrPort // the proxy of the hop blamed, or the first proxy
	Backend  netip.AddrPort
	// ProxyProduct is what the proxy's responses tell of it ("nginx/1.22.1").
	ProxyProduct string
	Path         string
	// StatusBackend and StatusClient are 0 when there was no response.
	StatusBackend, StatusClient int
	PairConfidence              Confidence
	Evidence                    []string
	ErrorLog                    string
	Fix                         string
	Legs                        []Leg
	Session                     *Session
}

// OK reports whether the verdict needs no action.
func (v *Verdict) OK() bool { return v.Code == OK || v.Code == PlainHTTP }

// Attempt reports whether the verdict judges a WebSocket attempt (and not
// a plain exchange shown with --all).
func (v *Verdict) Attempt() bool { return v.Code != PlainHTTP }

// Describe returns the hop and default severity of a code.
func Describe(c Code) (Hop, Severity) {
	ci := catalogue[c]
	return ci.hop, ci.sev
}

// Summary is a one-line description of a code.
func Summary(c Code) string { return summaries[c] }

var summaries = map[Code]string{
	OK:                    "upgrade on every leg, 101 on every leg",
	ClientNotWebSocket:    "the client's own request lacks Upgrade/Connection/Key/Version 13",
	UpgradeHeaderDropped:  "the client sent Upgrade: websocket, the proxy's upstream request has none",
	ConnectionNotUpgrade:  "the proxy's upstream Connection header lacks the upgrade token",
	UpstreamHTTP10:        "the proxy's upstream request is HTTP/1.0 (nginx's default before 1.29.7)",
	WSHeaderAltered:       "Sec-WebSocket-Key/Version/Protocol/Extensions differ or are missing upstream",
	HostRewritten:         "the upstream Host differs from the client's (finding)",
	PathRewritten:         "the upstream path differs from the client's (finding)",
	UpstreamConnectFailed: "the proxy's SYN to the backend was refused or never answered",
	UpstreamTimeout:       "the backend took the request and did not answer before the proxy gave up",
	UpstreamClosedEarly:   "the backend closed before a complete response header",
	BackendRejected:       "a correct upgrade reached the backend, which answered 4xx/5xx",
	BackendNotWebSocket:   "a correct upgrade reached the backend, which answered 2xx/3xx without 101",
	BadAccept:             "101 whose Sec-WebSocket-Accept does not match the key",
	ProxyRejected:         "the proxy answered with an error itself; no upstream request",
	Redirected:            "the client got a redirect: WebSocket clients do not follow them",
	ResponseAltered:       "the proxy did not relay the backend's answer as it was",
	IdleTimeout:           "after 101 the proxy closed both legs after N s without frames",
	MessageTooBig:         "close 1009, or the backend dropping the connection mid-message",
	ClosedByBackend:       "the backend sent a close frame",
	ClosedByClient:        "the client sent a close frame",
	AbnormalClose:         "RST or FIN without a close frame",
	FrameProtocolError:    "an invalid WebSocket frame",
	FramesNotRelayed:      "frames in on one leg never left on the other",
	TLSHandshakeFailed:    "TLS alert or abandoned handshake on a TLS leg",
	EncryptedLeg:          "the client leg is TLS without keys: judged from the upstream leg",
	Unpaired:              "only one leg is in the capture, and it hides the cause",
	PlainHTTP:             "a plain HTTP exchange, not a WebSocket attempt (shown with --all)",
}
