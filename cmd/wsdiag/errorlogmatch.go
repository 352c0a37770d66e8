package main

import (
	"net/netip"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
)

// logKind is what an error-log line says happened, by nginx's own
// "while …" phrase: the stage of the request it is about. A line goes
// only under an attempt whose wire shows that stage: a connect() failure
// never under a 101.
type logKind uint8

const (
	kindOther    logKind = iota
	kindConnect          // connecting to the upstream failed, timed out, or no upstream was left
	kindUpTLS            // the TLS handshake with the upstream failed
	kindUpAnswer         // sending the request upstream or reading its answer failed
	kindUpgraded         // the tunnel after a 101
	kindClient           // reading the client's request failed, or it was refused
	kindDenied           // the proxy refused the request itself (access rules)
	// reading the PROXY protocol header the listener expects failed: nginx
	// closed the connection without an answer
	kindProxyProtocol
)

// kindOf classifies a line's message (the text before ", client: ").
func kindOf(msg string) logKind {
	switch {
	case strings.Contains(msg, " while connecting to upstream"), strings.HasPrefix(msg, "no live upstreams"):
		return kindConnect
	case strings.Contains(msg, " while SSL handshaking to upstream"):
		return kindUpTLS
	case strings.Contains(msg, " while sending request to upstream"), strings.Contains(msg, " while reading response header from upstream"):
		return kindUpAnswer
	case strings.Contains(msg, " while proxying upgraded connection"):
		return kindUpgraded
	case strings.Contains(msg, " while reading client request"), strings.HasPrefix(msg, "client sent "), strings.HasPrefix(msg, "client intended "):
		return kindClient
	case strings.HasPrefix(msg, "access forbidden by rule"):
		return kindDenied
	case strings.HasSuffix(msg, " while reading PROXY protocol"):
		return kindProxyProtocol
	}
	return kindOther
}

// fits reports whether line e can be about attempt v: one hop of v has
// e's client, request line and Host; e's upstream is that hop's next leg
// or a connect the attempt made; the wire shows the stage e is about; and
// e was written while that hop was under way.
func (e *logEntry) fits(v *analyze.Verdict) bool {
	for i := range v.Legs {
		if e.fitsLeg(v, i) {
			return true
		}
	}
	return false
}

func (e *logEntry) fitsLeg(v *analyze.Verdict, i int) bool {
	l := &v.Legs[i]
	// A listener that expects a PROXY header answers nothing: it is the
	// server of the last leg, whatever its place.
	hop := proxyHop(v, i) || e.kind == kindProxyProtocol
	if !hop || e.upstream.IsValid() && e.upstream == l.Server || !e.fitsRequest(v, l) {
		return false
	}
	var next *analyze.Leg
	if i+1 < len(v.Legs) {
		next = &v.Legs[i+1]
	}
	connected, ok := e.fitsUpstream(v, next)
	return ok && e.fitsStatus(l, next, connected) && e.fitsTime(v, l)
}

// fitsRequest: the line's client, request, Host and server name are the
// leg's, where the line names them.
func (e *logEntry) fitsRequest(v *analyze.Verdict, l *analyze.Leg) bool {
	if e.client.IsValid() && !legClient(l, e.client) {
		return false
	}
	if e.target != "" {
		method, rest, _ := strings.Cut(l.RequestLine, " ")
		target, _, _ := strings.Cut(rest, " ")
		if target != e.target || (l.Proto != "h2" && method != e.method) {
			return false
		}
	}
	if e.host != "" {
		if h, ok := l.RequestHeaders.Get("Host"); ok && !strings.EqualFold(h, e.host) {
			return false
		}
	}
	return e.server == "" || v.Config == nil || v.Config.Server == "" || serverNamed(v.Config.Server, e.server)
}

// fitsUpstream: the upstream the line names is the next leg's server, or
// a failed connect of this attempt; neither on the wire: no upstream leg
// seen. connected says whether a connect attempt to it was seen.
func (e *logEntry) fitsUpstream(v *analyze.Verdict, next *analyze.Leg) (connected, ok bool) {
	for _, c := range v.Connects {
		if !e.upstream.IsValid() || c.Server == e.upstream {
			connected = true
		}
	}
	if e.upstream.IsValid() && !connected && (next != nil && next.Server != e.upstream || next == nil && len(v.Connects) > 0) {
		return connected, false
	}
	return connected, true
}

// fitsStatus: what the line says fits the leg's answer (a connect()
// failure never belongs to a 101).
func (e *logEntry) fitsStatus(l, next *analyze.Leg, connected bool) bool {
	s := l.Status
	failed := s == 0 || s >= 500 // what nginx answers when the upstream failed
	switch e.kind {
	case kindConnect:
		return s != 101 && failed && (connected || next == nil)
	case kindUpTLS, kindUpAnswer:
		return s != 101 && failed
	case kindUpgraded:
		return s == 101
	case kindClient:
		return s != 101 && (next == nil || next.Status == 0)
	case kindDenied:
		return (s == 403 || s == 0) && next == nil
	case kindProxyProtocol:
		// the leg's server (the one that logged) closed it, first, unanswered
		t := &l.Times
		return s == 0 && next == nil && !t.ServerEnd.IsZero() && (t.ClientEnd.IsZero() || !t.ClientEnd.Before(t.ServerEnd))
	}
	return true
}

// fitsTime: the line was written while the hop was under way: from its
// request to its answer, or to the end of the tunnel for what happens
// after a 101.
func (e *logEntry) fitsTime(v *analyze.Verdict, l *analyze.Leg) bool {
	start := l.Times.Request
	if start.IsZero() {
		start = v.Time
	}
	end := v.End
	if e.kind != kindUpgraded && e.kind != kindOther && !l.Times.Response.IsZero() {
		end = l.Times.Response
	}
	if end.Before(start) {
		end = start
	}
	return !e.t.Before(start.Truncate(time.Second).Add(-logSlack)) && !e.t.After(end.Add(logSlack))
}

// proxyHop reports whether leg i can be a proxy's hop (the proxy its
// server): a leg followed by another, the only leg, or a leg answered by
// nginx itself. The last leg of a chain is the backend's: on loopback its
// client address is every other leg's too.
func proxyHop(v *analyze.Verdict, i int) bool {
	if i+1 < len(v.Legs) || len(v.Legs) == 1 {
		return true
	}
	s, _ := v.Legs[i].ResponseHeaders.Get("Server")
	return strings.HasPrefix(strings.ToLower(s), "nginx")
}

// legClient: a is the leg's client, or the client that a proxy in front
// names in X-Real-IP or X-Forwarded-For (what nginx's realip module logs).
func legClient(l *analyze.Leg, a netip.Addr) bool {
	if l.Client.Addr().Unmap() == a {
		return true
	}
	for _, name := range []string{"X-Real-IP", "X-Forwarded-For"} {
		if h, ok := l.RequestHeaders.Get(name); ok {
			first, _, _ := strings.Cut(h, ",")
			if x, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil && x.Unmap() == a {
				return true
			}
		}
	}
	return false
}

// serverNamed: name is one of the names of a configuration block's server
// ("server example.com www.example.com").
func serverNamed(block, name string) bool {
	for _, n := range strings.Fields(strings.TrimPrefix(block, "server ")) {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// match returns the lines that are about attempt v (fits) and that no
// other attempt took. Lines of one second and one kind do not tell the
// attempts of one client apart; nginx numbers connections in accept
// order, so the verdicts, coming in time order, take one connection's
// lines each, the oldest first. A line that fits no attempt is left out.
func (el *errorLog) match(v *analyze.Verdict) []string {
	el.catchUp()
	if el.vFirst.IsZero() || v.Time.Before(el.vFirst) {
		el.vFirst = v.Time
	}
	if v.Time.After(el.vLast) {
		el.vLast = v.Time
	}
	from := v.Time.Truncate(time.Second).Add(-logSlack)
	var cands []*logEntry // newest first
	for i := len(el.entries) - 1; i >= 0; i-- {
		e := &el.entries[i]
		if e.t.Before(from) {
			if !el.follow {
				continue // a file may hold several runs out of order
			}
			break
		}
		if !e.claimed && e.fits(v) {
			cands = append(cands, e)
		}
	}
	var conn uint64
	for _, e := range cands {
		if e.conn != 0 && (conn == 0 || e.conn < conn) {
			conn = e.conn
		}
	}
	var out []string
	for i := len(cands) - 1; i >= 0 && len(out) < maxPerVerdict; i-- {
		if e := cands[i]; e.conn == conn || e.conn == 0 {
			e.claimed = true
			out = append(out, e.line)
			el.attached++
		}
	}
	return out
}
