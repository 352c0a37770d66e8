package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wsdiag/wsdiag/cmd/internal/browser"
	"github.com/wsdiag/wsdiag/cmd/internal/visible"
)

// ownColours are the only escape sequences the text output writes itself.
var ownColours = []string{ansiReset, ansiRed, ansiYellow, ansiGreen, ansiDim, ansiCyan}

// terminalSafe fails unless out is UTF-8 without a control or bidi
// character of anyone else's: its own newlines, and with colour its own
// colour sequences, are all that may act on a terminal.
func terminalSafe(t *testing.T, what, out string, colour bool) {
	t.Helper()
	if colour {
		for _, c := range ownColours {
			out = strings.ReplaceAll(out, c, "")
		}
	}
	if !utf8.ValidString(out) {
		t.Errorf("%s: not UTF-8", what)
	}
	for i, l := range strings.Split(out, "\n") {
		if !visible.Safe(l) {
			t.Errorf("%s: line %d carries raw control or bidi characters: %q", what, i+1, l)
		}
	}
}

// The hostile string of testdata/gen/hostile, as the text output shows it.
const evilShown = `\x1b[2J\x1b]0;owned\x07 \x1b]52;c;cm0gLXJmIC8=\x07 \x1b]8;;http://evil.example/\x1b\link\x1b]8;;\x1b\ \x07\x7f \u009b31m \x9b1m \u202etxt.exe \u2066x\u2069 \u200e\u200f\u061c`

// TestHostileBytesText: in hostile-bytes (real nginx; testdata/gen/
// hostile.sh) the request path, header values, the status reason, the
// body, the subprotocol, the close reason and nginx's error-log line carry
// ESC sequences, BEL, DEL, C1 controls (as UTF-8 and as a lone byte) and
// bidi controls. Every text view shows each of them escaped, in each
// field, and nothing else of them.
func TestHostileBytesText(t *testing.T) {
	pcap := filepath.Join(capturesDir, "hostile-bytes.pcap")
	elog := filepath.Join(capturesDir, "hostile-bytes.nginx-error.log")
	for _, args := range [][]string{{}, {"-v"}, {"-vv"}, {"-vv", "--color", "always"}} {
		var out, errb bytes.Buffer
		code := run(append(append([]string{"read", "--error-log", elog, "--progress", "never"}, args...), pcap), nil, &out, &errb)
		what := "read " + strings.Join(args, " ")
		if code != exitNotOK || errb.Len() != 0 {
			t.Fatalf("%s: exit %d, stderr %q", what, code, errb.String())
		}
		colour := len(args) > 1
		terminalSafe(t, what, out.String(), colour)
		page := out.String()
		if colour {
			if !strings.Contains(page, ansiRed) {
				t.Errorf("%s: no colour of its own", what)
			}
			for _, c := range ownColours {
				page = strings.ReplaceAll(page, c, "")
			}
		}
		want := []string{`/ws/\x1b[2J\x1b]0;o…`, `/ws/\u009b31m\x9b1m…`} // the path column
		if len(args) > 0 {
			want = append(want,
				`GET /ws/\x1b[2J\x1b]0;owned\x07\x7f\u009b31m\x9b1m\u202etxt.exe\u2066x\u2069\u200e\u200f\u061c HTTP/1.1`, // request line
				`backend→proxy: HTTP/1.1 400 Bad `+evilShown,                                                              // status reason
				`backend→proxy body: "refused: \x1b[2J\x1b]0;owned\x07 `,                                                  // body
				`backend sent close 4000 "`+evilShown+`"`,                                                                 // close reason
				`then closed by the backend with close 4000 "`+evilShown+`" (FIN)`,
				`client: 127.0.0.1, server: , request: "GET /down/\u009b31m\x9b1m\u202etxt.exe\u2066x\u2069\u200e\u200f\u061c HTTP/1.1"`, // the error-log line
				`referrer: "http://x/`+evilShown+`"`,
				`fix: nginx answered 400 itself: a return 400 (or error_page) in the location or server that took Host 127.0.0.1:24080 path /ws/\x1b[2J`)
		}
		if len(args) > 0 && args[0] == "-vv" {
			want = append(want,
				`> User-Agent: `+evilShown, `> Referer: http://x/`+evilShown, `> X-Evil: `+evilShown, // header values
				`< X-Evil: `+evilShown,
				`> Sec-WebSocket-Protocol: chat`+evilShown, `< Sec-WebSocket-Protocol: chat`+evilShown, // subprotocol
				`< HTTP/1.1 400 Bad `+evilShown)
		}
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: no %q in\n%s", what, w, page)
			}
		}
	}
}

// TestHostileBytesJSON: JSON lines stay JSON (the values as sent), with
// the DEL, C1 and bidi controls JSON allows raw written as \u escapes.
func TestHostileBytesJSON(t *testing.T) {
	var out, errb bytes.Buffer
	run([]string{"read", "--format", "json", "-vv", "--error-log", filepath.Join(capturesDir, "hostile-bytes.nginx-error.log"),
		filepath.Join(capturesDir, "hostile-bytes.pcap")}, nil, &out, &errb)
	terminalSafe(t, "json", out.String(), false)
	paths := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var v VerdictLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not JSON: %v: %s", err, l)
		}
		paths[v.Path] = true
	}
	// Decoded, the path is what was sent (the lone 0x9B, not UTF-8,
	// becomes U+FFFD as JSON requires).
	if want := "/ws/\x1b[2J\x1b]0;owned\x07\x7f\u009b31m\ufffd1m\u202etxt.exe\u2066x\u2069\u200e\u200f\u061c"; !paths[want] {
		t.Errorf("paths %v, want %q among them", paths, want)
	}
}

// TestTextLogEscapes: wsdiag's own warnings and errors on stderr quote
// file names, hosts and paths; shown as text or as JSON lines they carry
// no raw control or bidi character.
func TestTextLogEscapes(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var b bytes.Buffer
		l := newLogger(format, &b)
		l.Warn().Msg("a path /ws/\x1b]0;owned\x07\u009b\xc2\x9b\x9b\u202e\x7f")
		terminalSafe(t, format, b.String(), false)
		// (zerolog, JSON inside, has made the lone 0x9B U+FFFD)
		if format == "text" && !strings.Contains(b.String(), `/ws/\x1b]0;owned\x07\u009b\u009b`+"\ufffd"+`\u202e\x7f`) {
			t.Errorf("text: %q", b.String())
		}
	}
	var b bytes.Buffer
	cmdCodes(&b)
	terminalSafe(t, "codes", b.String(), false)
}

// TestHostileBytesHTML: the report of hostile-bytes, opened in headless
// Chromium with every attempt expanded, shows the control and bidi
// characters as the text output does (visible escapes), in the page's
// text and its data: none reaches the DOM raw.
func TestHostileBytesHTML(t *testing.T) {
	path := browser.Need(t, testing.Short())
	html := filepath.Join(t.TempDir(), "hostile.html")
	var out, errb bytes.Buffer
	run([]string{"read", "--format", "json", "--html", html, "--error-log", filepath.Join(capturesDir, "hostile-bytes.nginx-error.log"),
		filepath.Join(capturesDir, "hostile-bytes.pcap")}, nil, &out, &errb)
	raw, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "the page's file", string(raw), false)
	b, err := browser.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	page, err := b.NewPage(1280, 900)
	if err != nil {
		t.Fatal(err)
	}
	if err := page.Navigate("file://" + html + "#expand"); err != nil {
		t.Fatal(err)
	}
	var text string
	if err := page.Eval(`Promise.all([window.wsdiag.ready, window.wsdiag.details]).then(() => document.body.innerText)`, &text); err != nil {
		t.Fatal(err)
	}
	terminalSafe(t, "the page's text", strings.ReplaceAll(text, "\t", " "), false) // tabs: innerText's table cells
	for _, w := range []string{`HTTP/1.1 400 Bad \x1b[2J\x1b]0;owned\x07`, `refused: \x1b[2J`, `\u009b31m\x9b1m\u202etxt.exe`,
		`referrer: "http://x/\x1b[2J`, "NGINX WOULD LOG"} {
		if !strings.Contains(strings.ToUpper(text), strings.ToUpper(w)) {
			t.Errorf("the page does not show %q", w)
		}
	}
}
