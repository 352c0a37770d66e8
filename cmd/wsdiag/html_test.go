package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/cmd/internal/browser"
)

// domAttempt is what the report page shows of one attempt, read from its
// DOM by domProbe.
type domAttempt struct {
	Code, Hop string
	Arrows    []string // the ladder's arrows (data-ev), in drawing order
	Dropped   []string // header lines marked dropped
	Changed   int      // header lines marked changed
	Fix       bool     // a fix with a copy button
	Lanes     int      // the ladder's lanes
	Diffs     int      // header blocks compared across a proxy (the "(out)" sides)
	InUpgrade bool     // a block a proxy received carries Upgrade
	Cut       int      // header blocks marked cut by the capture
	// NoHandshake: a session that began before the capture (its findings
	// say handshake_not_captured): frames and ends, no request, no answer.
	NoHandshake bool
}

type domPage struct {
	Ready    bool
	Attempts []domAttempt
	Shown    string // the summary's attempt count
	JSErrors string // what the page's own error handler caught
}

// domProbe waits for the report's first page, then reads every attempt
// element (opened by #expand) from the DOM.
const domProbe = `Promise.all([window.wsdiag.ready, window.wsdiag.details]).then(() => ({
	Ready: document.body.dataset.ready === '1',
	Shown: document.getElementById('n-attempts').textContent,
	JSErrors: document.getElementById('js-errors').textContent,
	Attempts: [...document.querySelectorAll('#list .att')].map(a => ({
		Code: a.dataset.code, Hop: a.dataset.hop,
		Arrows: [...a.querySelectorAll('.ladder g.ev')].map(g => g.dataset.ev),
		Dropped: [...a.querySelectorAll('.hdrdiff .ln.drop')].map(l => l.firstChild.textContent),
		Changed: a.querySelectorAll('.hdrdiff .ln.chg').length,
		Fix: !!a.querySelector('.fix button[data-copy]'),
		Lanes: a.querySelectorAll('.ladder .lanename').length,
		Diffs: [...a.querySelectorAll('.hdrdiff h4')].filter(h => h.textContent.endsWith('(out)')).length,
		InUpgrade: [...a.querySelectorAll('.hdrdiff .col:first-child .ln')].some(l => /^upgrade:/i.test(l.textContent)),
		Cut: a.querySelectorAll('.hdrdiff .ln.cut').length,
		NoHandshake: [...a.querySelectorAll('.findings')].some(f => f.textContent.includes('handshake_not_captured')),
	})),
}))`

// TestHTMLReportInBrowser writes the --html report of every capture in
// testdata/captures and loads each in headless Chromium: the attempts
// and their codes must be those of the JSON output, each with a ladder,
// nginx's dropped Upgrade marked in the header diff, and no JavaScript
// error. Screenshots go to a temporary directory (WSDIAG_SCREENSHOTS
// keeps them).
func TestHTMLReportInBrowser(t *testing.T) {
	path := browser.Need(t, testing.Short())
	// Screenshots of the first screen, or of whole pages (up to 6000 px)
	// into WSDIAG_SCREENSHOTS, to look at.
	shots, shotH := os.Getenv("WSDIAG_SCREENSHOTS"), 6000
	if shots == "" {
		shots, shotH = t.TempDir(), 900
	}
	b, err := browser.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	page, err := b.NewPage(1280, 900)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(capturesDir, "*.pcap*"))
	if len(files) < 40 {
		t.Fatalf("found %d captures in %s", len(files), capturesDir)
	}
	dir := t.TempDir()
	for _, file := range files {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".pcapng"), ".pcap")
		t.Run(name, func(t *testing.T) {
			t0 := time.Now()
			html := filepath.Join(dir, name+".html")
			args := []string{"read", "--format", "json", "--html", html, file}
			if k := strings.TrimSuffix(strings.TrimSuffix(file, ".pcapng"), ".pcap") + ".keylog"; fileSize(k) > 0 {
				args = append(args, "--keylog", k)
			}
			var out, errb bytes.Buffer
			if code := run(args, nil, &out, &errb); code == exitTrouble {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			want := verdictsOf(t, out.Bytes())
			t1 := time.Now()
			if err := page.Navigate("file://" + html + "#expand"); err != nil {
				t.Fatal(err)
			}
			var got domPage
			if err := page.Eval(domProbe, &got); err != nil {
				t.Fatal(err)
			}
			t2 := time.Now()
			if errs := page.Errors(); len(errs) > 0 || got.JSErrors != "" {
				t.Errorf("JavaScript errors: %q %q", errs, got.JSErrors)
			}
			if !got.Ready || got.Shown != fmt.Sprint(len(want)) {
				t.Errorf("ready %v, summary shows %q attempts, want %d", got.Ready, got.Shown, len(want))
			}
			var codes []string
			for _, a := range got.Attempts {
				codes = append(codes, a.Code+"/"+a.Hop)
			}
			sort.Strings(codes)
			if strings.Join(codes, " ") != strings.Join(want, " ") {
				t.Errorf("attempts in the page:\n%v\nwant (JSON output):\n%v", codes, want)
			}
			for i, a := range got.Attempts {
				checkAttempt(t, name, i, a)
			}
			png := filepath.Join(shots, name+".png")
			if err := page.Screenshot(png, shotH); err != nil {
				t.Error(err)
			} else if b, _ := os.ReadFile(png); len(b) < 10000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Errorf("screenshot %s: %d bytes, not a PNG of the page", png, len(b))
			}
			t.Logf("read %s, load %s, screenshot %s", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
		})
	}
}

func checkAttempt(t *testing.T, capture string, i int, a domAttempt) {
	t.Helper()
	has := func(kind string) bool {
		for _, k := range a.Arrows {
			if k == kind {
				return true
			}
		}
		return false
	}
	if a.NoHandshake {
		// a session begun before the capture: the frames and how the legs
		// ended are all there is
		// (a tunnel cut on idle before any frame of it was captured holds
		// only its ends)
		if has("request") || has("response") || !has("frame") && !strings.HasPrefix(capture, "idle-cut-") || !has("fin") && !has("rst") && !has("close") {
			t.Errorf("attempt %d (%s, no handshake): ladder arrows %v", i, a.Code, a.Arrows)
		}
		return
	}
	// a failed TLS handshake carries no HTTP, nor does TLS passed through
	// by SNI (its sessions and its refusal of an unknown name)
	if !has("request") && a.Code != "tls_handshake_failed" && a.Code != "encrypted_leg" && !strings.HasPrefix(capture, "tls-passthrough-") {
		t.Errorf("attempt %d (%s): ladder without a request arrow: %v", i, a.Code, a.Arrows)
	}
	if a.Code != "ok" && !a.Fix {
		t.Errorf("attempt %d (%s): no fix with a copy button", i, a.Code)
	}
	if a.Diffs == 0 && bothLegs[capture] {
		t.Errorf("attempt %d (%s): no header block compared across the proxy", i, a.Code)
	}
	switch {
	case a.Code == "upgrade_header_dropped" && a.Diffs > 0 && !a.InUpgrade:
		// the capture cut the client's block before its Upgrade line
		if a.Cut == 0 {
			t.Errorf("attempt %d: no Upgrade in the blocks the proxy received, and none marked cut", i)
		}
	case a.Code == "upgrade_header_dropped" && a.Diffs > 0: // a capture of one leg has nothing to compare
		dropped := strings.Join(a.Dropped, "\n")
		if !strings.Contains(dropped, "Upgrade: websocket") && !strings.Contains(dropped, "upgrade: websocket") {
			t.Errorf("attempt %d: the header diff does not mark Upgrade dropped; dropped lines: %q", i, a.Dropped)
		}
	case a.Code == "ok":
		for _, k := range []string{"response", "frame"} {
			if !has(k) && capture != "tls-13-keys-injected" {
				t.Errorf("attempt %d (ok): ladder lacks a %s arrow: %v", i, k, a.Arrows)
			}
		}
	case a.Code == "upstream_connect_failed" && a.Lanes == 3: // the proxy's connect was seen (not on a unix socket)
		if !has("syn") || !has("rst") {
			t.Errorf("attempt %d: ladder lacks the refused connect (SYN, RST): %v", i, a.Arrows)
		}
	}
}

// bothLegs are captures that hold both legs of every attempt: their
// reports must compare the header blocks across the proxy.
var bothLegs = map[string]bool{"nginx-defaults": true, "concurrent-20": true, "http11-no-headers": true,
	"haproxy-chain": true, "apache-no-upgrade": true, "correct": true, "backend-down": false}

func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// verdictsOf returns "code/hop" of each verdict in JSON output, sorted.
func verdictsOf(t *testing.T, out []byte) []string {
	t.Helper()
	var vs []string
	for _, v := range decodeOutput(t, out).verdicts {
		vs = append(vs, v.Code+"/"+v.Hop)
	}
	sort.Strings(vs)
	return vs
}
