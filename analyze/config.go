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

// locateConfig asks the locator for the block of the hop the verdict
// blames, then the other proxy hops, and adds the configuration's
// findings: what the wire already shows gets the file and line, what it
// does not show yet becomes a finding of its own.
func (j *judgement) locateConfig() *ConfigBlock {
	loc := j.a.opt.Config
	if loc == nil || j.upstreamOnly {
		return nil
	}
	n := len(j.chain)
	// The hop the verdict will blame first: in a chain of proxies, its
	// configuration is the one to name.
	hops := make([]int, 0, n)
	if p := j.primaryHop(); p >= 0 && p+1 < n {
		hops = append(hops, p)
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
		r := j.chain[i].req
		host, ok := r.Headers.Get("Host")
		if !ok {
			host, _ = r.Headers.Get(":authority") // HTTP/2
		}
		b := loc.Locate(r.Server, host, r.Target)
		if b == nil {
			continue
		}
		j.configFindings(b, i)
		return b
	}
	return nil
}

func (j *judgement) configFindings(b *ConfigBlock, hop int) {
	if b.NotInherited != "" && len(b.Problems) > 0 {
		j.addNote(ConfigHeadersNotInherited, hop, "config: "+b.NotInherited)
	}
	s := j.sessionFigures()
	if s == nil || b.ReadTimeout <= 0 || j.has(IdleTimeout) {
		return
	}
	at := b.ReadTimeoutAt
	if at == "" {
		at = "the default"
	}
	// One direction silent past the timeout: the tunnel lived only
	// because the other direction talked. Pings further apart than the
	// timeout do not keep it open either.
	silence := max(s.LongestSilence, j.oneWaySilence())
	switch {
	case silence > b.ReadTimeout:
		j.add(ConfigReadTimeoutShort, hop, fmt.Sprintf("config: the read timeout %s (%s, %s) is below the longest one-way silence on the wire, %s: the tunnel stays open only while the other direction talks",
			dur(b.ReadTimeout), at, b.Block, dur(silence)))
	case s.Pings >= 2 && s.Duration/time.Duration(s.Pings) > b.ReadTimeout:
		j.add(ConfigReadTimeoutShort, hop, fmt.Sprintf("config: the read timeout %s (%s, %s) is below the ping interval on the wire, about %s",
			dur(b.ReadTimeout), at, b.Block, dur(s.Duration/time.Duration(s.Pings))))
	}
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

// primaryHop is the hop of the finding verdict() will make primary, or -1.
func (j *judgement) primaryHop() int {
	if p := j.primary(); p != nil {
		return p.hop
	}
	return -1
}

func adviceConfigReadTimeoutShort(v *Verdict, _ facts) (string, string) {
	return "", "raise the proxy's read timeout above the longest silence (nginx: proxy_read_timeout 1h; in the location), or have a side ping more often than the timeout"
}

// end is the last moment any leg of the attempt was seen.
func (j *judgement) end() time.Time {
	var t time.Time
	for _, x := range j.chain {
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
	for _, c := range j.connect {
		if c.Last.After(t) {
			t = c.Last
		}
	}
	return t
}

// oneWaySilence is the longest time one direction of the client's
// upgraded leg carried no frame, counting from the upgrade and to the
// end (a direction that never spoke was silent throughout).
func (j *judgement) oneWaySilence() time.Duration {
	A := j.chain[0]
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
