package analyze

import (
	"crypto/sha1"
	"encoding/base64"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// The WebSocket handshake of RFC 6455 §4: what a correct request carries
// and the Sec-WebSocket-Accept a 101 must answer it with.

// wsGUID is RFC 6455's magic string for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptFor computes the Sec-WebSocket-Accept a server must send for key.
func AcceptFor(key string) string {
	var b [28]byte
	return string(acceptFor(key, &b))
}

// acceptFor writes key's Sec-WebSocket-Accept into b.
func acceptFor(key string, b *[28]byte) []byte {
	var a [128]byte
	h := sha1.Sum(append(append(a[:0], key...), wsGUID...))
	base64.StdEncoding.Encode(b[:], h[:])
	return b[:]
}

// correctUpgrade reports whether a request is a complete WebSocket
// handshake request (RFC 6455 §4.1).
func correctUpgrade(r *reassembly.Request) bool {
	k, _ := r.Headers.Get("Sec-WebSocket-Key")
	v, _ := r.Headers.Get("Sec-WebSocket-Version")
	return r.Method == "GET" && r.Version == "HTTP/1.1" &&
		r.Headers.HasToken("Upgrade", "websocket") && r.Headers.HasToken("Connection", "upgrade") &&
		validKey(k) && strings.TrimSpace(v) == "13"
}

func validKey(k string) bool {
	k = strings.TrimSpace(k)
	var b [64]byte
	if base64.StdEncoding.DecodedLen(len(k)) > len(b) {
		return false // far longer than 16 bytes
	}
	n, err := base64.StdEncoding.Decode(b[:], []byte(k))
	return err == nil && n == 16
}

// strippedUpstream: a request with a WebSocket client's Sec-WebSocket-Key
// but no Upgrade: websocket is a proxy's upstream request (clients that
// make a key send Upgrade), whose client leg is not in the capture.
func strippedUpstream(r *reassembly.Request) bool {
	k, _ := r.Headers.Get("Sec-WebSocket-Key")
	return validKey(k) && !r.Headers.HasToken("Upgrade", "websocket") && !r.Truncated
}

// acceptState is what a leg's 101 answered to its request's key.
type acceptState uint8

const (
	acceptUnchecked acceptState = iota // no 101, or no key to check it with
	acceptRight
	acceptMissing // no Sec-WebSocket-Accept header
	acceptCut     // none in the part of the answer the capture kept
	acceptWrong
)

// checkAccept checks leg x's answer, when it is a 101, against its key.
func checkAccept(x *exchange) acceptState {
	if x.resp == nil || x.resp.Status != 101 {
		return acceptUnchecked
	}
	key, _ := x.req.Headers.Get("Sec-WebSocket-Key")
	if key == "" {
		return acceptUnchecked
	}
	got, present := x.resp.Headers.Get("Sec-WebSocket-Accept")
	var b [28]byte
	switch {
	case !present && x.resp.Truncated:
		return acceptCut
	case !present:
		return acceptMissing
	case strings.TrimSpace(got) != string(acceptFor(strings.TrimSpace(key), &b)):
		return acceptWrong
	}
	return acceptRight
}

// acceptRule finds a leg's 101 whose Sec-WebSocket-Accept is missing or
// wrong (bad_accept at leg i).
func (a *attempt) acceptRule(out []finding, i int) []finding {
	st := a.accepts[i]
	if st != acceptMissing && st != acceptWrong {
		return out
	}
	x := a.chain[i]
	key, _ := x.req.Headers.Get("Sec-WebSocket-Key")
	_, rleg := a.legName(i)
	want := AcceptFor(strings.TrimSpace(key))
	if st == acceptMissing {
		return append(out, found(BadAccept, i, rleg+": no Sec-WebSocket-Accept header (expected "+want+" for key "+key+")"))
	}
	got, _ := x.resp.Headers.Get("Sec-WebSocket-Accept")
	return append(out, found(BadAccept, i, rleg+": Sec-WebSocket-Accept: "+got+" (expected "+want+" for key "+key+")"))
}
