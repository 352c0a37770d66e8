package analyze

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// ConfigLocator names the block of a proxy's own configuration that
// handled a request, by that proxy's rules. cmd implements it over the
// config readers (nginxconf and the lighter ones), so analyze reads no
// config format: it only asks, and places the answer in the verdict.
type ConfigLocator interface {
	// Locate returns the block that served a request arriving at the
	// proxy's local address with this Host and path, or nil when the
	// configuration has nothing listening there.
	Locate(proxy netip.AddrPort, host, path string) *ConfigBlock
}

// ConfigBlock is where in the proxy's configuration an attempt was
// handled, and what that block says about WebSocket.
type ConfigBlock struct {
	File  string
	Line  int
	Block string // "location /ws", "frontend www", "<VirtualHost *:80>", a Caddy site
	// Server names the enclosing block when Block is nested in one
	// ("server example.com"); "" when Block is the top.
	Server string
	// Problems are what keeps this block from forwarding an upgrade,
	// each naming its file and line; empty when it would.
	Problems []string
	// NotInherited explains upgrade headers set in an outer block that
	// this block does not inherit (nginx: a level that sets any
	// proxy_set_header inherits none); "" when none are lost.
	NotInherited string
	// ReadTimeout is the idle timeout in force after the upgrade (0:
	// unknown), set by ReadTimeoutAt ("proxy_read_timeout 5s at
	// file:line"; "" for the default).
	ReadTimeout   time.Duration
	ReadTimeoutAt string
	// Ref is the reader's own handle on the block (for a patch).
	Ref any
}

// Where is "file:line (block)".
func (b *ConfigBlock) Where() string {
	s := fmt.Sprintf("%s:%d (%s", b.File, b.Line, b.Block)
	if b.Server != "" {
		s += " in " + b.Server
	}
	return s + ")"
}

// configFacts are the block of the proxy's configuration that served
// the attempt (nil: no configuration given, or none serves it), and the
// hop of that proxy.
type configFacts struct {
	block *ConfigBlock
	hop   int
}

// locateConfig asks the locator for the block of the hop the findings so
// far blame (in a chain of proxies, its configuration is the one to name),
// then of the other proxy hops in order.
func (a *attempt) locateConfig() configFacts {
	loc := a.an.opt.Config
	if loc == nil {
		return configFacts{}
	}
	n := len(a.chain)
	hops := make([]int, 0, n)
	if p := a.primary(); p != nil && int(p.hop)+1 < n {
		hops = append(hops, int(p.hop))
	}
	if n == 1 {
		hops = append(hops, 0) // the proxy answered itself
	}
	for i := 0; i+1 < n; i++ {
		if len(hops) == 0 || hops[0] != i {
			hops = append(hops, i)
		}
	}
	for _, i := range hops {
		r := a.chain[i].req
		host, ok := r.Headers.Get("Host")
		if !ok {
			host, _ = r.Headers.Get(":authority") // HTTP/2
		}
		if b := loc.Locate(r.Server, host, r.Target); b != nil {
			return configFacts{b, i}
		}
	}
	return configFacts{}
}

// configInheritRule: the upgrade headers set in an outer block are lost
// in the block that served the attempt (config_headers_not_inherited):
// what the wire shows gets the file and line.
func configInheritRule(a *attempt, out []finding) []finding {
	b := a.config.block
	if b == nil || b.NotInherited == "" || len(b.Problems) == 0 {
		return out
	}
	return append(out, explains(ConfigHeadersNotInherited, a.config.hop, "config: "+b.NotInherited))
}

// configTimeoutRule: the block's read timeout is below the longest
// one-way silence or the ping interval on the wire
// (config_read_timeout_short): the tunnel lived only because the other
// direction talked. An idle timeout on the wire says it already.
func configTimeoutRule(a *attempt, out []finding) []finding {
	b := a.config.block
	if b == nil {
		return out
	}
	s := a.sessionFigures()
	if s == nil || b.ReadTimeout <= 0 || a.has(IdleTimeout) {
		return out
	}
	at := b.ReadTimeoutAt
	if at == "" {
		at = "the default"
	}
	// Pings further apart than the timeout do not keep it open either.
	silence := max(s.LongestSilence, a.oneWaySilence())
	switch {
	case silence > b.ReadTimeout:
		out = append(out, found(ConfigReadTimeoutShort, a.config.hop, fmt.Sprintf("config: the read timeout %s (%s, %s) is below the longest one-way silence on the wire, %s: the tunnel stays open only while the other direction talks",
			dur(b.ReadTimeout), at, b.Block, dur(silence))))
	case s.Pings >= 2 && s.Duration/time.Duration(s.Pings) > b.ReadTimeout:
		out = append(out, found(ConfigReadTimeoutShort, a.config.hop, fmt.Sprintf("config: the read timeout %s (%s, %s) is below the ping interval on the wire, about %s",
			dur(b.ReadTimeout), at, b.Block, dur(s.Duration/time.Duration(s.Pings)))))
	}
	return out
}

// configFix names the block in the fix: the file and line to edit.
func configFix(v *Verdict, fix string) string {
	b := v.Config
	if b == nil {
		return fix
	}
	switch v.Code {
	case UpgradeHeaderDropped, ConnectionNotUpgrade, UpstreamHTTP10, ConfigHeadersNotInherited:
		if len(b.Problems) == 0 {
			return fix
		}
		return fix + "\nin " + b.Where() + ": " + strings.Join(b.Problems, "; ")
	case IdleTimeout, ConfigReadTimeoutShort:
		at := b.ReadTimeoutAt
		if at == "" {
			return fix + "\nin " + b.Where() + ": no read timeout set, the default applies"
		}
		return fix + "\nin " + b.Where() + ": " + at
	case UpstreamConnectFailed:
		return fix + "\nthe upstream is set in " + b.Where()
	}
	return fix
}

func adviceConfigReadTimeoutShort(*Verdict, *attempt, *finding) (string, string) {
	return "", "raise the proxy's read timeout above the longest silence (nginx: proxy_read_timeout 1h; in the location), or have a side ping more often than the timeout"
}

// end is the last moment any leg of the attempt was seen.
func (a *attempt) end() time.Time {
	var t time.Time
	for _, x := range a.chain {
		if x.req.End.After(t) {
			t = x.req.End
		}
		if x.resp != nil && x.resp.End.After(t) {
			t = x.resp.End
		}
		if x.end != nil && x.end.Last.After(t) {
			t = x.end.Last
		}
	}
	for _, c := range a.connect.failed {
		if c.Last.After(t) {
			t = c.Last
		}
	}
	return t
}

// oneWaySilence is the longest time one direction of the client's
// upgraded leg carried no frame, counting from the upgrade and to the
// end (a direction that never spoke was silent throughout).
func (a *attempt) oneWaySilence() time.Duration {
	A := a.chain[0]
	if A.resp == nil || A.end == nil || A.end.WS == nil {
		return 0
	}
	start, end := A.resp.End, A.end.Last
	var longest time.Duration
	for _, d := range []reassembly.WSDir{A.end.WS.C2S, A.end.WS.S2C} {
		gap := end.Sub(start)
		if d.Frames > 0 {
			gap = max(d.LongestSilence, d.First.Sub(start), end.Sub(d.Last))
		}
		longest = max(longest, gap)
	}
	return longest
}
