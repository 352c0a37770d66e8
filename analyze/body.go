package analyze

import (
	"regexp"
	"strings"

	"github.com/wsdiag/wsdiag/reassembly"
)

// What an answer's body tells: the first bytes quoted as evidence (an
// application server names its cause there), and whether a backend's
// WebSocket library wrote it.

// maxQuote bounds a quoted body.
const maxQuote = 120

// quoteBody quotes the start of a body on one line: an HTML page by its
// text, whitespace collapsed, credentials redacted, at most maxQuote bytes.
func quoteBody(b string) string {
	if strings.HasPrefix(strings.TrimSpace(b), "<") {
		b = htmlHead.ReplaceAllString(b, " ") // a <title> repeats the <h1>
		b = htmlTag.ReplaceAllString(b, " ")
	}
	if !spacedOnce(b) {
		b = strings.Join(strings.Fields(b), " ")
	}
	b = redactBody(b)
	if len(b) > maxQuote {
		cut := maxQuote
		for cut > 0 && b[cut]&0xc0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		b = b[:cut] + "…"
	}
	return `"` + strings.ReplaceAll(b, `"`, `\"`) + `"`
}

var (
	htmlHead = regexp.MustCompile(`(?is)<head>.*?</head>`)
	htmlTag  = regexp.MustCompile(`<[^>]*>`)
)

// secretInBody matches credentials an error page may echo: a bearer
// token, or a value after a name that says it is secret.
var secretInBody = regexp.MustCompile(`(?i)((?:bearer|basic)\s+|(?:token|password|passwd|secret|api[_-]?key|session(?:id)?|auth[a-z_]*)["']?\s*[=:]\s*["']?(?:(?:bearer|basic)\s+)?)([^\s"'&,;]+)`)

// redactBody replaces credentials in a quoted body with "[redacted]", as
// evidence never quotes a secret header.
func redactBody(b string) string {
	if !maySayASecret(b) || !secretInBody.MatchString(b) { // matching allocates nothing, replacing does
		return b
	}
	return secretInBody.ReplaceAllString(b, "${1}[redacted]")
}

// spacedOnce reports whether strings.Join(strings.Fields(b), " ") is b:
// ASCII, words apart by single spaces, none at either end.
func spacedOnce(b string) bool {
	if b == "" || b[0] == ' ' || b[len(b)-1] == ' ' {
		return b == ""
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c >= 0x80 || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			return false
		case c == ' ' && b[i+1] == ' ':
			return false
		}
	}
	return true
}

// secretWords are what every match of secretInBody contains (any case).
var secretWords = []string{"bearer", "basic", "token", "passw", "secret", "api", "session", "auth"}

// maySayASecret is a cheap test before secretInBody's: most error pages
// contain none of its words.
func maySayASecret(b string) bool {
	for i := 0; i < len(b); i++ {
		if b[i] >= 0x80 {
			return true // (?i) folds some non-ASCII letters (K, ſ) onto ASCII ones
		}
	}
	for _, w := range secretWords {
		for i := 0; i+len(w) <= len(b); i++ {
			if b[i]|0x20 == w[0] && strings.EqualFold(b[i:i+len(w)], w) {
				return true
			}
		}
	}
	return false
}

// bodyEvidence quotes the body of a 4xx/5xx answer on a leg, or "".
func bodyEvidence(rleg string, r *reassembly.Response) string {
	if r == nil || r.Status < 400 {
		return ""
	}
	b := strings.TrimSpace(r.Body)
	if b == "" {
		return ""
	}
	return rleg + " body: " + quoteBody(b)
}

// library is what a WebSocket server library's refusal of a handshake
// says about the request that reached it.
type library struct {
	name string // "gorilla/websocket"
	// missing says what the request lacked, in the library's words
	// ("the upgrade token in Connection"); header names the code: the
	// proxy dropped or rewrote the upgrade headers, or the
	// Sec-WebSocket-* ones.
	missing string
	wsHdr   bool
	// requestLine: the library refused the request line (HTTP/1.0).
	requestLine bool
	// generic: the answer is typical of such libraries, not one's own words.
	generic bool
}

// librarySignatures are refusals of handshake requests by backend
// WebSocket libraries, matched in the body (first match wins). Each was
// seen relayed by a proxy that had altered a correct client handshake.
var librarySignatures = []struct {
	needle string
	lib    library
}{
	// gorilla/websocket with Upgrader.Error writing the reason
	{"'upgrade' token not found in 'Connection' header", library{"gorilla/websocket", "the upgrade token in Connection", false, false, false}},
	{"'websocket' token not found in 'Upgrade' header", library{"gorilla/websocket", "Upgrade: websocket", false, false, false}},
	{"not found in 'Sec-Websocket-Version' header", library{"gorilla/websocket", "Sec-WebSocket-Version: 13", true, false, false}},
	{"'Sec-WebSocket-Key' header must be", library{"gorilla/websocket", "a valid Sec-WebSocket-Key", true, false, false}},
	// Python websockets (legacy and new servers)
	{"Failed to open a WebSocket connection: did not receive a valid HTTP request", library{"Python websockets", "an HTTP/1.1 GET request line", false, true, false}},
	{"Failed to open a WebSocket connection: missing Connection header", library{"Python websockets", "the Connection header", false, false, false}},
	{"Failed to open a WebSocket connection: invalid Connection header", library{"Python websockets", "the upgrade token in Connection", false, false, false}},
	{"Failed to open a WebSocket connection: missing Upgrade header", library{"Python websockets", "Upgrade: websocket", false, false, false}},
	{"Failed to open a WebSocket connection: invalid Upgrade header", library{"Python websockets", "Upgrade: websocket", false, false, false}},
	{"Failed to open a WebSocket connection: ", library{"Python websockets", "a valid handshake", false, false, false}},
	// Tornado and Spring word their refusals alike
	{`Can "Upgrade" only to "WebSocket"`, library{"Tornado or Spring", "Upgrade: websocket", false, false, false}},
	{`"Connection" must be "Upgrade"`, library{"Tornado or Spring", "the upgrade token in Connection", false, false, false}},
	{`"Connection" must be "upgrade"`, library{"Tornado or Spring", "the upgrade token in Connection", false, false, false}},
}

// refusedBy reports which backend WebSocket library refused the handshake
// in answer r: a known refusal in the body; 426 Upgrade Required, which
// a server sends to a request that did not ask for the upgrade it
// requires (Node's ws answers every plain request so) and no proxy sends
// on its own; or gorilla/websocket's default refusal (400 "Bad Request"
// with Sec-WebSocket-Version: 13).
func refusedBy(r *reassembly.Response) (library, bool) {
	if r == nil || r.Status < 400 || r.Status >= 500 {
		return library{}, false
	}
	for _, s := range librarySignatures {
		if strings.Contains(r.Body, s.needle) {
			return s.lib, true
		}
	}
	if r.Status == 426 {
		lib := library{"a WebSocket server (426 is Node ws's answer to a plain request)", "Upgrade: websocket", false, false, true}
		return lib, true
	}
	if v, ok := r.Headers.Get("Sec-WebSocket-Version"); ok && r.Status == 400 && strings.TrimSpace(v) == "13" &&
		strings.TrimSpace(r.Body) == "Bad Request" {
		return library{"gorilla/websocket (its default refusal: 400 \"Bad Request\" with Sec-WebSocket-Version: 13)", "the upgrade headers (its 400 does not say which: Connection: upgrade, Upgrade: websocket or a Sec-WebSocket-* header)", false, false, true}, true
	}
	return library{}, false
}
