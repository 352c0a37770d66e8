package analyze

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/reassembly"
)

// fakeLocator answers for one proxy address and remembers what it was asked.
type fakeLocator struct {
	at    netip.AddrPort
	block ConfigBlock
	asked []string
}

func (f *fakeLocator) Locate(proxy netip.AddrPort, host, path string) *ConfigBlock {
	f.asked = append(f.asked, proxy.String()+" "+host+" "+path)
	if proxy != f.at {
		return nil
	}
	b := f.block
	return &b
}

func judgeWith(loc ConfigLocator, chain func(*Analyzer) []*exchange) *Verdict {
	opt := DefaultOptions
	opt.Config = loc
	a := New(opt, func(*Verdict) {})
	return judge(chain(a), a, nil, ConfNone)
}

// The inheritance trap: the wire shows the upgrade dropped; the config
// says why, and the fix names the file and line.
func TestConfigInheritanceTrap(t *testing.T) {
	loc := &fakeLocator{at: ap("192.0.2.1:80"), block: ConfigBlock{File: "/etc/nginx/conf.d/app.conf", Line: 12, Block: "location /ws", Server: "server example.org",
		Problems:     []string{"proxy_set_header Upgrade at /etc/nginx/conf.d/app.conf:5 is not inherited"},
		NotInherited: "proxy_set_header Upgrade at /etc/nginx/conf.d/app.conf:5 is not inherited: location /ws at /etc/nginx/conf.d/app.conf:12 sets its own proxy_set_header, so it inherits none"}}
	ws := wsReq(key1, "example.org")
	nginx := reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}}
	v := judgeWith(loc, func(*Analyzer) []*exchange {
		up := with(without(ws, "Upgrade"), "Connection", "close")
		return []*exchange{clientLeg(ws, 400, nginx), upLeg("GET /ws HTTP/1.0", up, 400, nil)}
	})
	if v.Code != UpgradeHeaderDropped || !slices.Contains(v.Findings, ConfigHeadersNotInherited) {
		t.Fatalf("code %s findings %v", v.Code, v.Findings)
	}
	if v.Config == nil || v.Config.Line != 12 {
		t.Fatalf("config %+v", v.Config)
	}
	if !strings.Contains(v.Fix, "in /etc/nginx/conf.d/app.conf:12 (location /ws in server example.org): proxy_set_header Upgrade at /etc/nginx/conf.d/app.conf:5 is not inherited") {
		t.Errorf("fix does not name the block:\n%s", v.Fix)
	}
	if want := "192.0.2.1:80 example.org /ws"; len(loc.asked) == 0 || loc.asked[0] != want {
		t.Errorf("asked %q, want %q first", loc.asked, want)
	}
}

// A tunnel that lives only because one side talks: one direction silent
// past the configured timeout is a finding the wire does not show yet.
func TestConfigReadTimeoutShort(t *testing.T) {
	loc := &fakeLocator{at: ap("192.0.2.1:80"), block: ConfigBlock{File: "nginx.conf", Line: 30, Block: "location /ws", ReadTimeout: 5 * time.Second, ReadTimeoutAt: "nginx.conf:33"}}
	// client talks throughout, the server is silent for 9 s
	quiet := dir(1, 0.2, 1000, 9.1)
	quiet.LongestSilence = 8900 * time.Millisecond
	chain := upgradedChain(dir(50, 9, 1000, 9), quiet, dir(50, 9, 1000, 9), quiet,
		ends(reassembly.SideClient, reassembly.CloseFIN, at(9.2)), ends(reassembly.SideClient, reassembly.CloseFIN, at(9.2)))
	v := judgeWith(loc, chain)
	if v.Code != ConfigReadTimeoutShort || v.Severity != SevWarn {
		t.Fatalf("code %s sev %s findings %v evidence %q", v.Code, v.Severity, v.Findings, v.Evidence)
	}
	if !strings.Contains(v.Fix, "nginx.conf:33") || !slices.ContainsFunc(v.Evidence, func(s string) bool { return strings.Contains(s, "below the longest one-way silence") }) {
		t.Errorf("fix %q evidence %q", v.Fix, v.Evidence)
	}
	// The same session under a timeout above the silence is fine.
	loc.block.ReadTimeout = time.Minute
	if v := judgeWith(loc, chain); slices.Contains(v.Findings, ConfigReadTimeoutShort) {
		t.Errorf("60 s timeout, 9 s silence: %v", v.Findings)
	}
	// No locator answer: no config, no finding.
	loc.at = ap("192.0.2.9:80")
	if v := judgeWith(loc, chain); v.Config != nil || slices.Contains(v.Findings, ConfigReadTimeoutShort) {
		t.Errorf("unmatched proxy got config %+v findings %v", v.Config, v.Findings)
	}
}

// configCases are the configuration rules' cases: the chain func gives
// the analyzer a locator that answers for the proxy.
func configCases() []ruleCase {
	ws := wsReq(key1, "example.org")
	nginx := reassembly.Headers{{Name: "Server", Value: "nginx/1.22.1"}}
	quiet := dir(1, 0.2, 1000, 9.1)
	quiet.LongestSilence = 8900 * time.Millisecond
	return []ruleCase{
		{
			name: "upgrade headers of the server block lost in the location",
			by:   "config: headers not inherited",
			chain: func(a *Analyzer) []*exchange {
				a.opt.Config = &fakeLocator{at: ap("192.0.2.1:80"), block: ConfigBlock{File: "app.conf", Line: 12, Block: "location /ws",
					Problems:     []string{"proxy_set_header Upgrade at app.conf:5 is not inherited"},
					NotInherited: "proxy_set_header Upgrade at app.conf:5 is not inherited: location /ws at app.conf:12 sets its own proxy_set_header"}}
				up := with(without(ws, "Upgrade"), "Connection", "close")
				return []*exchange{clientLeg(ws, 400, nginx), upLeg("GET /ws HTTP/1.0", up, 400, nil)}
			},
			code: UpgradeHeaderDropped, hop: HopProxy,
			findings: []Code{UpgradeHeaderDropped, ConnectionNotUpgrade, UpstreamHTTP10, ConfigHeadersNotInherited},
			evidence: []string{"config: proxy_set_header Upgrade at app.conf:5 is not inherited"},
			fix:      "in app.conf:12 (location /ws): proxy_set_header Upgrade at app.conf:5 is not inherited",
		},
		{
			name: "one direction silent past the configured read timeout",
			by:   "config: read timeout short",
			chain: func(a *Analyzer) []*exchange {
				a.opt.Config = &fakeLocator{at: ap("192.0.2.1:80"), block: ConfigBlock{File: "nginx.conf", Line: 30, Block: "location /ws", ReadTimeout: 5 * time.Second, ReadTimeoutAt: "nginx.conf:33"}}
				return upgradedChain(dir(50, 9, 1000, 9), quiet, dir(50, 9, 1000, 9), quiet,
					ends(reassembly.SideClient, reassembly.CloseFIN, at(9.2)), ends(reassembly.SideClient, reassembly.CloseFIN, at(9.2)))(a)
			},
			code: ConfigReadTimeoutShort, hop: HopProxy,
			findings: []Code{ConfigReadTimeoutShort, ClosedByClient},
			evidence: []string{"config: the read timeout 5.00s (nginx.conf:33, location /ws) is below the longest one-way silence on the wire"},
			fix:      "nginx.conf:33",
		},
	}
}

func TestConfigRules(t *testing.T) { runRuleCases(t, configCases()) }

// In a chain of proxies the configuration asked first is that of the hop
// the primary finding blames: here the second proxy dropped Upgrade.
func TestConfigAsksBlamedHopFirst(t *testing.T) {
	loc := &fakeLocator{at: ap("127.0.0.1:8081"), block: ConfigBlock{File: "second.conf", Line: 3, Block: "location /ws"}}
	ws := wsReq(key1, "example.org")
	v := judgeWith(loc, func(*Analyzer) []*exchange {
		return []*exchange{
			legX(0, "10.0.0.5:50000", "192.0.2.1:80", "GET /ws HTTP/1.1", ws, 400, nil),
			legX(1, "127.0.0.1:40000", "127.0.0.1:8081", "GET /ws HTTP/1.1", ws, 400, nil),
			legX(2, "127.0.0.1:40001", "127.0.0.1:9001", "GET /ws HTTP/1.1", without(ws, "Upgrade"), 400, nil),
		}
	})
	if v.Code != UpgradeHeaderDropped || v.Proxy != ap("127.0.0.1:8081") {
		t.Fatalf("code %s proxy %s findings %v", v.Code, v.Proxy, v.Findings)
	}
	if len(loc.asked) == 0 || !strings.HasPrefix(loc.asked[0], "127.0.0.1:8081 ") {
		t.Errorf("asked %q, want the second proxy first", loc.asked)
	}
	if v.Config == nil || v.Config.File != "second.conf" {
		t.Errorf("config %+v", v.Config)
	}
}
