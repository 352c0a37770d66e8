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

// headerEvCut quotes a header, says it is absent, or, in a block the
// capture cut, that it is not in the part kept.
func headerEvCut(leg, name string, r *reassembly.Request) string {
	if absentCut(r, name) {
		return leg + ": " + name + " not in the part the capture kept"
	}
	return headerEv(leg, name, r.Headers)
}

// wsHeaders are what a cut block may have lost that decides a handshake.
var wsHeaders = []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"}

// cutEvidence says, for each leg the capture cut, how much it kept and
// which of the deciding headers are not in the file.
func (j *judgement) cutEvidence() []string {
	var ev []string
	for i, x := range j.chain {
		leg, rleg := j.legName(i)
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

// cut reports whether some leg of the chain lost bytes of its handshake
// to the snap length.
func (j *judgement) cut() bool {
	for _, x := range j.chain {
		if x.req.Cut || x.resp != nil && x.resp.Cut {
			return true
		}
	}
	return false
}

// cutRules runs last: a failed attempt with nothing proven on a cut
// capture cannot be told; a good one says what it could not check.
func (j *judgement) cutRules() {
	if !j.cut() {
		return
	}
	A := j.chain[0]
	succeeded := A.resp != nil && A.resp.Status == 101
	asked := wsAsked(A.req)
	for _, x := range j.chain {
		asked = asked || x.resp != nil && x.resp.Status == 101
	}
	if !asked {
		// Whether this was a WebSocket attempt at all is past the cut:
		// what the proxy did (HTTP/1.0 upstream) may be right for a
		// plain request, so it only explains.
		for i := range j.findings {
			j.findings[i].note = true
		}
		j.add(CannotTell, 0, append(j.cutEvidence(), "whether this GET asked for a WebSocket upgrade at all is in the part the capture cut")...)
		return
	}
	for _, f := range j.findings {
		if !f.note && !rowNote(f.code) {
			return // something was proven
		}
	}
	ev := j.cutEvidence()
	if succeeded {
		j.addNote(CannotTell, 0, append(ev, "the 101 came on every leg; what the cut took (Sec-WebSocket-Accept, extensions) was not checked")...)
		return
	}
	j.add(CannotTell, 0, ev...)
}

func rowNote(c Code) bool { return rowOf(c).note }

func hasHeader(h reassembly.Headers, name string) bool {
	_, ok := h.Get(name)
	return ok
}

// upgradeEvCut is upgradeEv for a block the capture may have cut.
func upgradeEvCut(leg string, r *reassembly.Request) string {
	if h2WebSocket(r) {
		return upgradeEv(leg, r)
	}
	return headerEvCut(leg, "Upgrade", r)
}
