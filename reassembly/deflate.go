package reassembly

import "github.com/wsdiag/wsdiag/proto/wsframe"

// deflateMayBe reports whether frames after the 101 resp may carry
// permessage-deflate (RSV1 on a message's first frame): its
// Sec-WebSocket-Extensions agreed to it, or the capture's snap length cut
// the 101 before that header could be read while the request offered it
// (or was cut too). A cut 101 leaves the negotiation unknown, and a
// compressed frame then is no protocol error.
func deflateMayBe(resp *Response) bool {
	const ext = "Sec-WebSocket-Extensions"
	if wsframe.DeflateNegotiated(resp.Headers.Values(ext)) {
		return true
	}
	if !resp.Cut || len(resp.Headers.Values(ext)) > 0 {
		return false
	}
	req := resp.Request
	return req == nil || req.Cut || wsframe.DeflateNegotiated(req.Headers.Values(ext))
}
