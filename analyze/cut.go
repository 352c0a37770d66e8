package analyze

import (
	"fmt"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// Header blocks cut by the capture's snap length (tcpdump -s 96 or -s 200):
// what is in the file is judged, a header that is not is unknown rather
// than missing, and where the cut took what decides an attempt the
// verdict says it cannot tell, and which bytes are missing.

// wsAsked reports whether a request asks for the WebSocket upgrade as far
// as its bytes show: Upgrade: websocket, or in a cut block the upgrade
// token in Connection (browsers and libraries send Upgrade after it).
func wsAsked(r *reassembly.Request) bool {
	return wantsUpgrade(r) ||
		r.Truncated && r.Headers.HasToken("Connection", "upgrade")
}

// maybeAttempt: a GET whose header block the capture cut before it could
// show whether it asks for an upgrade.
func maybeAttempt(r *reassembly.Request) bool {
	return r.Cut && r.Method == "GET" && !r.Headers.HasToken("Upgrade", "websocket")
}

// nginxSetHeaders says whether the upstream request y, cut by the
// capture, still proves that nginx sent no Upgrade: nginx writes the
// headers it sets (proxy_set_header, and its defaults Host and
// Connection) before those it relays from the client, and clears the
// client's own Upgrade unless told to set it; a relayed header already in
// the cut block means the set ones are all there.
func nginxSetHeaders(product string, x, y *reassembly.Request) (relayed string, ok bool) {
	if family(product) != "nginx" {
		return "", false
	}
	for _, f := range y.Headers {
		switch strings.ToLower(f.Name) {
		case "host", "connection", "upgrade", "x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host", "forwarded":
			continue
		}
		if v, ok := x.Headers.Get(f.Name); ok && v == f.Value {
			return f.Name, true
		}
	}
	return "", false
}

// wsHeaders are what a cut block may have lost that decides a handshake.
var wsHeaders = []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"}

// cutFacts are what the capture's snap length, or its end, took of the
// handshake.
type cutFacts struct {
	// cut: some leg lost bytes of its request's or answer's header block.
	cut bool
	// ended: the capture ended while the client's leg still waited for its
	// answer (Ctrl-C, tcpdump -c, --duration, a file cut short).
	ended bool
	// asked: as far as the bytes show, the client's request asks for the
	// upgrade, or some leg got a 101: it is a WebSocket attempt.
	asked bool
	// upgraded: the client's leg got its 101.
	upgraded bool
}

func cutFactsOf(chain []*exchange) cutFacts {
	var c cutFacts
	for _, x := range chain {
		if x.req.Cut || x.resp != nil && x.resp.Cut {
			c.cut = true
		}
	}
	A := chain[0]
	c.ended = A.resp == nil && A.end != nil && A.end.Reason == reassembly.EndCapture
	if !c.cut && !c.ended {
		return c
	}
	c.upgraded = A.resp != nil && A.resp.Status == 101
	c.asked = wsAsked(A.req)
	for _, x := range chain {
		c.asked = c.asked || x.resp != nil && x.resp.Status == 101
	}
	return c
}

// cutEvidence says, for each leg the capture cut, how much it kept and
// which of the deciding headers are not in the file.
func (a *attempt) cutEvidence() []string {
	var ev []string
	for i, x := range a.chain {
		leg, rleg := a.legName(i)
		if r := x.req; r.Cut {
			var lost []string
			for _, h := range wsHeaders {
				if _, ok := r.Headers.Get(h); !ok {
					lost = append(lost, h)
				}
			}
			s := fmt.Sprintf("%s: the capture kept only the first %d bytes of this request (snap length)", leg, r.Kept)
			switch {
			case len(lost) == len(wsHeaders):
				s += ": no Upgrade, Connection, Sec-WebSocket-* header is in the file"
			case len(lost) > 0:
				s += ": " + strings.Join(lost, ", ") + " not in the file"
			}
			ev = append(ev, s)
		}
		if r := x.resp; r != nil && r.Cut {
			ev = append(ev, fmt.Sprintf("%s: the capture kept only the first %d bytes of this answer (snap length): the rest of its header block and its body are not in the file", rleg, r.Kept))
		}
	}
	return ev
}

// cutRule comes after the rules of the handshake and the session: a
// failed attempt with nothing proven on a cut capture cannot be told
// (cannot_tell); a good one says what it could not check. Whether a GET
// was an attempt at all may be past the cut: then what the rules above
// found only explains (what the proxy did may be right for a plain
// request).
func cutRule(a *attempt, out []finding) []finding {
	c := &a.cut
	if c.ended {
		return a.endedRule(out)
	}
	if !c.cut {
		return out
	}
	if !c.asked {
		f := found(CannotTell, 0, append(a.cutEvidence(), "whether this GET asked for a WebSocket upgrade at all is in the part the capture cut")...)
		f.demotes = true
		return append(out, f)
	}
	for _, f := range a.findings {
		if !f.note && !rowNote(f.code) {
			return out // something was proven
		}
	}
	ev := a.cutEvidence()
	if c.upgraded {
		return append(out, explains(CannotTell, 0, append(ev, "the 101 came on every leg; what the cut took (Sec-WebSocket-Accept, extensions) was not checked")...))
	}
	return append(out, found(CannotTell, 0, ev...))
}

// endedRule: the capture ended before the client's leg got its answer.
// What the legs already prove stands (an upstream request without
// Upgrade proves the proxy dropped it, whatever the answer would have
// been); otherwise the attempt cannot be told, and the evidence says how
// far each leg got.
func (a *attempt) endedRule(out []finding) []finding {
	for _, f := range a.findings {
		if !f.note && !rowNote(f.code) && f.code != Unpaired {
			return out // something was proven
		}
	}
	ev := a.cutEvidence()
	for i, x := range a.chain {
		leg, rleg := a.legName(i)
		switch {
		case x.resp != nil:
			ev = append(ev, fmt.Sprintf("%s: request at %s; %s: %s at %s", leg, ts(x.req.Start), rleg, statusLine(x.resp), ts(x.resp.Start)))
		default:
			ev = append(ev, fmt.Sprintf("%s: request at %s, no answer before the capture ended", leg, ts(x.req.Start)))
		}
	}
	ev = append(ev, "the capture ended before the answer to the client: what decides this attempt came after it")
	f := found(CannotTell, 0, ev...)
	f.demotes = true
	return append(out, f)
}

func rowNote(c Code) bool { return rowOf(c).stage == stageExplains }

// absentCut: the request's block was cut before header name could show.
func absentCut(r *reassembly.Request, name string) bool {
	return r.Truncated && !hasHeader(r.Headers, name)
}

// upgradeEvCut is upgradeEv for a block the capture may have cut.
func upgradeEvCut(leg string, r *reassembly.Request) string {
	if h2WebSocket(r) {
		return upgradeEv(leg, r)
	}
	return headerEvCut(leg, "Upgrade", r)
}
