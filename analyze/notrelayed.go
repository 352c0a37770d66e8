package analyze

import (
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// A proxy that forwards an upgrade as a plain request (Node's http-proxy
// and http-proxy-middleware without their upgrade handler: every dev
// server's proxy) gets the backend's 101 and never writes it to its
// client: Node's HTTP client has no 'upgrade' listener and destroys the
// socket. The client waits for an answer that never comes. The 101 on the
// upstream leg must not make that attempt look ok.

// notRelayedRule: hop i's upstream leg switched protocols, its client leg
// got no answer at all, and the client leg is in the capture and went on
// (it ended, or the capture went on a second past the 101).
func notRelayedRule(a *attempt, out []finding) []finding {
	for i := range a.hops {
		x, y := a.chain[i], a.chain[i+1]
		if x.resp != nil || !y.switched() || !wentOnAfter(x, y.resp.End) {
			continue
		}
		_, rx := a.legName(i)
		_, ry := a.legName(i + 1)
		ev := []string{ry + ": " + statusLine(y.resp) + " at " + ts(y.resp.End)}
		if y.end != nil {
			if side, c := y.end.FirstClose(); side == reassembly.SideClient && !c.Time.Before(y.resp.End) {
				ev = append(ev, "the proxy closed the upstream leg "+dur(c.Time.Sub(y.resp.End))+" after the 101 ("+c.Kind.String()+")")
			}
		}
		ev = append(ev, rx+": no answer; "+waited(x))
		out = append(out, found(UpgradeNotRelayed, i, ev...))
	}
	return out
}

// wentOnAfter: leg x's connection ended after t, or was still open a
// second after t: its missing answer is not the capture's end.
func wentOnAfter(x *exchange, t time.Time) bool {
	return x.end != nil && (x.end.Reason == reassembly.EndClosed && !x.end.Last.Before(t) || x.end.Last.Sub(t) >= time.Second)
}

// unansweredRule: no verdict is ok while a leg's answer is unknown and
// that leg is in the capture. An attempt whose client leg got no 101, with
// a leg that has no answer and no finding above that explains it, says
// so (cannot_tell) instead of passing for ok.
func unansweredRule(a *attempt, out []finding) []finding {
	if a.chain[0].switched() || a.primary() != nil {
		return out
	}
	for i, x := range a.chain {
		if x.resp != nil {
			continue
		}
		_, rx := a.legName(i)
		if x.end == nil {
			return append(out, found(CannotTell, i, rx+": no answer, and the connection's end is not in the capture"))
		}
		return append(out, found(CannotTell, i, rx+": no answer in the capture; "+waited(x)))
	}
	return out
}

// waited says how long the client of leg x waited for its answer and how
// the leg ended.
func waited(x *exchange) string {
	side, c := x.end.FirstClose()
	switch side {
	case reassembly.SideClient:
		return "the client waited " + dur(c.Time.Sub(x.req.End)) + " and closed (" + c.Kind.String() + ") at " + ts(c.Time)
	case reassembly.SideServer:
		return "the proxy closed the leg (" + c.Kind.String() + ") at " + ts(c.Time) + ", " + dur(c.Time.Sub(x.req.End)) + " after the request"
	}
	return "the leg was open " + dur(x.end.Last.Sub(x.req.End)) + " after the request, with no close in the capture"
}

func adviceUpgradeNotRelayed(v *Verdict, _ *attempt, _ *finding) (string, string) {
	return "", "the proxy forwarded the upgrade as a plain request and dropped the backend's 101: Node's http-proxy needs " +
		"server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head)); http-proxy-middleware needs ws: true and " +
		"server.on('upgrade', proxyMiddleware.upgrade), registered before the first request (with ws: true alone it subscribes " +
		"only after a first plain request, so the first upgrades are swallowed); any other proxy: turn on its WebSocket or " +
		"upgrade forwarding (nginx: proxy_http_version 1.1 with the Upgrade and Connection headers; Apache: ProxyPass … upgrade=websocket)"
}
