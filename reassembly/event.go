package reassembly

import (
	"github.com/wsdiag/wsdiag/proto/http1"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/proto/wsframe"
	"net/netip"
	"time"
)

// ConnID names one TCP connection within a run. A 4-tuple that is reused
// gets a new ID.
type ConnID uint64

// Side is one end of a connection.
type Side uint8

const (
	SideNone   Side = iota
	SideClient      // the end that sent the request (or the SYN)
	SideServer
)

func (s Side) String() string {
	switch s {
	case SideClient:
		return "client"
	case SideServer:
		return "server"
	}
	return "none"
}

// Header and Headers are a header block in wire order (http1.Headers).
type (
	Header  = http1.Header
	Headers = http1.Headers
)

// Conn names a connection and its two ends.
type Conn struct {
	ID     ConnID
	Client netip.AddrPort
	Server netip.AddrPort
	// TLS: the connection is TLS; its HTTP was decrypted with a key log.
	TLS bool
	// Node is the connection's overlay tunnel and PROXY header (node.go),
	// nil when it has neither.
	Node *Node
}

// Request is one HTTP/1.x request header block.
type Request struct {
	Conn
	// Index counts requests on the connection from 0.
	Index   int
	Method  string
	Target  string
	Version string // "HTTP/1.1"
	Headers Headers
	// Start and End are the times of the first and last byte of the header
	// block.
	Start, End time.Time
	// Opened is when the request's connection was first seen (its SYN,
	// when captured): a proxy opens its upstream connection right after
	// reading the client's request, which pairs opaque TLS legs.
	Opened time.Time
	// Truncated: the header block exceeded the limit, or the capture cut it;
	// Headers holds what came before it.
	Truncated bool
	// Cut: the capture's snap length cut the block after Kept bytes (of
	// start line and headers): a header that is not in Headers is unknown.
	Cut  bool
	Kept int
	// Unread (with Truncated): the block came as TLS plaintext read at the
	// proxy, which refused it before reading the rest; Headers holds the
	// lines it read.
	Unread bool
	// H2 is set for a request on an HTTP/2 stream (Version "HTTP/2"; the
	// pseudo-header fields stand first in Headers, with their colons).
	H2 *H2Stream
}

// H2Stream is what an HTTP/2 request's connection says about it.
type H2Stream struct {
	ID uint32
	// Protocol is the :protocol pseudo-header (RFC 8441), "" if absent.
	Protocol string
	// ServerSettings: the server's SETTINGS came before the request;
	// ConnectProtocol: they carried SETTINGS_ENABLE_CONNECT_PROTOCOL = 1.
	ServerSettings, ConnectProtocol bool
}

// Response is one HTTP/1.x response header block, with the start of its
// body for error pages.
type Response struct {
	Conn
	Index   int
	Version string
	Status  int
	Reason  string
	Headers Headers
	// Body holds up to BodyPrefix bytes of the body.
	Body       string
	Start, End time.Time
	// Request is the request this answers, when it was seen.
	Request   *Request
	Truncated bool // as Request's
	Cut       bool
	Kept      int
	// Reset: an HTTP/2 stream ended by RST_STREAM (from ResetBy, with
	// ResetCode) instead of an answer; Status is 0 then.
	Reset     bool
	ResetCode uint32
	ResetBy   Side
}

// CloseKind says how a side ended its half of the connection.
type CloseKind uint8

const (
	CloseNone CloseKind = iota
	CloseFIN
	CloseRST
)

func (k CloseKind) String() string {
	switch k {
	case CloseFIN:
		return "FIN"
	case CloseRST:
		return "RST"
	}
	return ""
}

// EndReason says why a connection record was finished.
type EndReason uint8

const (
	EndClosed  EndReason = iota // FIN/RST seen in both directions, or RST
	EndIdle                     // evicted after being idle
	EndCapture                  // the capture ended with the connection open
)

func (r EndReason) String() string {
	switch r {
	case EndClosed:
		return "closed"
	case EndIdle:
		return "idle"
	}
	return "open at end of capture"
}

// Close is how one side ended: FIN or RST, and when.
type Close struct {
	Kind CloseKind
	// finGap: µs from this side's FIN to the RST that replaced it, +1
	// (0: none); in Kind's padding, so streams keep their size class.
	finGap uint32
	Time   time.Time
}

// ConnEnd is the last event of a connection: how it opened, how it ended,
// and what it carried. Connections that carried neither HTTP nor a failed
// connect attempt produce none.
type ConnEnd struct {
	Conn
	First, Last time.Time
	// SYN: the client's SYN was seen; SYNACK: the server answered it.
	SYN, SYNACK bool
	// Closes by side: ClientClose is what the client sent first.
	ClientClose, ServerClose Close
	Reason                   EndReason
	HTTP                     bool // a direction carried HTTP
	H2                       bool // the HTTP was HTTP/2
	TLS                      bool // a direction started with a TLS record
	// Upgraded: a 101 switched the connection to another protocol at UpgradeTime.
	Upgraded    bool
	UpgradeTime time.Time
	// Bytes of payload per direction.
	BytesC2S, BytesS2C uint64
	// Gaps counts holes in the byte stream; GapBytes their size.
	Gaps     int
	GapBytes uint64
	// Requests and Responses count HTTP messages seen.
	Requests, Responses int
	// WS is what the upgraded connection carried, when it upgraded.
	WS *WSSession
	// TLSInfo describes a TLS connection's handshake (nil when not TLS).
	TLSInfo *TLSInfo

	// ClientFIN and ServerFIN are when each side sent its FIN (zero:
	// none), also when a RST followed: the moment it began to close.
	ClientFIN, ServerFIN time.Time

	// Plain describes the plaintext read from one end of the connection
	// (Assembler.Plaintext), nil when none came.
	Plain *PlainInfo
}

// TLSStart announces a connection that began with a TLS record, so that
// an encrypted client leg can be paired while it is still open.
type TLSStart struct {
	Conn
	Time time.Time
}

// TLSRecords carries a TLS connection's AppRecords so far; it is sent each
// time one is added (at most 2×TLSAppRecords times per connection), so an
// opaque leg that stays open (keep-alive, a long session) can be paired
// before it ends.
type TLSRecords struct {
	Conn
	Records         []TLSRecord // never written again: the sink may keep it
	Version, Cipher uint16
}

// TLSSink is implemented by sinks that want TLSStart and TLSRecords events.
type TLSSink interface {
	TLSStart(*TLSStart)
	TLSRecords(*TLSRecords)
}

// TLSInfo and TLSAlert describe a TLS connection's handshake.
type (
	TLSInfo  = tlsrec.Info
	TLSAlert = tlsrec.Alert
	// TLSRecord is one of TLSInfo.AppRecords.
	TLSRecord = tlsrec.Record
)

// TLSAppRecords bounds TLSInfo.AppRecords per direction.
const TLSAppRecords = tlsrec.AppRecords

// WSSession and WSDir are the WebSocket figures of an upgraded connection.
type (
	WSSession = wsframe.Summary
	WSDir     = wsframe.DirSummary
	WSPrint   = wsframe.Print
)

// Began returns when side began to close: its FIN, else its close.
func (e *ConnEnd) Began(side Side) time.Time {
	switch side {
	case SideClient:
		if !e.ClientFIN.IsZero() {
			return e.ClientFIN
		}
		return e.ClientClose.Time
	case SideServer:
		if !e.ServerFIN.IsZero() {
			return e.ServerFIN
		}
		return e.ServerClose.Time
	}
	return time.Time{}
}

// FirstClose returns the side that closed first and how.
func (e *ConnEnd) FirstClose() (Side, Close) {
	c, s := e.ClientClose, e.ServerClose
	switch {
	case c.Kind == CloseNone && s.Kind == CloseNone:
		return SideNone, Close{}
	case s.Kind == CloseNone || (c.Kind != CloseNone && !s.Time.Before(c.Time)):
		return SideClient, c
	}
	return SideServer, s
}

// Sink receives events in capture order.
type Sink interface {
	Request(*Request)
	Response(*Response)
	ConnEnd(*ConnEnd)
}
