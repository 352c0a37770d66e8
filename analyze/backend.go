package analyze

import (
	"fmt"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// backendFacts are what the backend did with the request, on the last
// leg, when that leg is an upstream leg in the capture (a chain of two
// legs or more, or one upstream leg).
type backendFacts struct {
	leg *exchange // nil: the backend's leg is not in the capture
	// With no answer: waited, its connection was still open when the
	// capture ended; else closer ended it first, by close.
	waited bool
	closer reassembly.Side
	close  reassembly.Close
	// correct: the request it got is a complete WebSocket handshake (asked
	// only of an answer that is no 101).
	correct bool
	// plainToTLS: it answered ≥ 400 as a TLS server answers plain HTTP.
	plainToTLS bool
}

func backendFactsOf(chain []*exchange) backendFacts {
	L := chain[len(chain)-1]
	b := backendFacts{leg: L}
	switch {
	case L.resp != nil && L.resp.Status != 101:
		b.correct = correctUpgrade(L.req)
		b.plainToTLS = L.resp.Status >= 400 && schemeMismatchBody(L.resp.Body)
	case L.resp != nil:
	case L.end == nil || L.end.Reason == reassembly.EndCapture:
		b.waited = true
	default:
		b.closer, b.close = L.end.FirstClose()
	}
	return b
}

// status is the backend's answer, 0 when none.
func (b *backendFacts) status() int {
	if b.leg == nil || b.leg.resp == nil {
		return 0
	}
	return b.leg.resp.Status
}

// refused: the backend answered an error that is not a TLS server's
// answer to plain HTTP.
func (b *backendFacts) refused() bool { return b.status() >= 400 && !b.plainToTLS }

// connList is the Connection header the backend got when it is a token
// list with upgrade among them (Firefox's "keep-alive, Upgrade"
// forwarded as is), or "".
func (b *backendFacts) connList() string {
	h := b.leg.req.Headers
	v := strings.Join(h.Values("Connection"), ", ")
	if !strings.Contains(v, ",") || !h.HasToken("Connection", "upgrade") {
		return ""
	}
	return v
}

// backendSilentRule: the backend took the request and gave no answer:
// it closed first (upstream_closed_early), or the proxy gave up on it
// (upstream_timeout).
func backendSilentRule(a *attempt, out []finding) []finding {
	b := &a.backend
	if b.leg == nil || b.leg.resp != nil {
		return out
	}
	i := len(a.chain) - 1
	L, A := b.leg, a.chain[0]
	leg, rleg := a.legName(i)
	switch {
	case b.waited && A.resp != nil && A.resp.Status == 504:
		return append(out, found(UpstreamTimeout, i, leg+": request at "+ts(L.req.Start)+", no response", "proxy→client: "+statusLine(A.resp)))
	case b.waited:
		return out
	case b.closer == reassembly.SideServer:
		return append(out, found(UpstreamClosedEarly, i, fmt.Sprintf("%s: the backend closed the connection (%s) %s after the request, without a response",
			rleg, b.close.Kind, dur(b.close.Time.Sub(L.req.End)))))
	}
	return append(out, found(UpstreamTimeout, i, fmt.Sprintf("%s: no response; the proxy gave up and closed the backend leg (%s) %s after the request",
		leg, b.close.Kind, dur(b.close.Time.Sub(L.req.End)))))
}

// backendAcceptRule: the backend's 101 against its request's key
// (bad_accept).
func backendAcceptRule(a *attempt, out []finding) []finding {
	if a.backend.status() != 101 {
		return out
	}
	return a.acceptRule(out, len(a.chain)-1)
}

// backendSchemeRule: the backend's answer is a TLS server's to plain
// HTTP (upstream_scheme_mismatch).
func backendSchemeRule(a *attempt, out []finding) []finding {
	if !a.backend.plainToTLS {
		return out
	}
	L := a.backend.leg
	_, rleg := a.legName(len(a.chain) - 1)
	return append(out, found(UpstreamSchemeMismatch, len(a.chain)-1, rleg+": "+statusLine(L.resp), rleg+" body: "+quoteBody(L.resp.Body)))
}

// backendRejectedRule: a correct upgrade reached the backend, which
// refused it (backend_rejected), with its body and a Connection list it
// may have refused.
func backendRejectedRule(a *attempt, out []finding) []finding {
	b := &a.backend
	if !b.refused() || !b.correct {
		return out
	}
	_, rleg := a.legName(len(a.chain) - 1)
	ev := []string{rleg + ": " + statusLine(b.leg.resp)}
	if body := strings.TrimSpace(b.leg.resp.Body); body != "" {
		ev = append(ev, rleg+" body: "+quoteBody(body))
	}
	ev = append(ev, a.connectionList()...)
	return append(out, found(BackendRejected, len(a.chain)-1, ev...))
}

// backendNotWebSocketRule: a correct upgrade reached the backend, which
// answered neither 101 nor an error (backend_not_websocket).
func backendNotWebSocketRule(a *attempt, out []finding) []finding {
	b := &a.backend
	if b.leg == nil || b.leg.resp == nil || b.status() == 101 || b.status() >= 400 || !b.correct {
		return out
	}
	_, rleg := a.legName(len(a.chain) - 1)
	return append(out, found(BackendNotWebSocket, len(a.chain)-1, rleg+": "+statusLine(b.leg.resp)))
}
