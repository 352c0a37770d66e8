package analyze

import (
	"strings"
	"testing"

	"github.com/wsdiag/wsdiag/reassembly"
)

func TestQuoteBody(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Bad Request\n", `"Bad Request"`},
		// an error page by its text, the <title> not repeated
		{nginxPage, `"502 Bad Gateway nginx/1.22.1"`},
		// credentials an application echoes are redacted
		{`{"error":"invalid token","token":"eyJhbGciOi.xyz"}`, `"{\"error\":\"invalid token\",\"token\":\"[redacted]\"}"`},
		{"Authorization: Bearer abc.def.ghi rejected", `"Authorization: Bearer [redacted] rejected"`},
		{"login failed for password=hunter2&user=bob", `"login failed for password=[redacted]&user=bob"`},
		// bounded, not inside a UTF-8 sequence
		{strings.Repeat("é", 100), `"` + strings.Repeat("é", 60) + `…"`},
	} {
		if got := quoteBody(c.in); got != c.want {
			t.Errorf("quoteBody(%.40q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// Bodies of backend libraries' refusals, as the production captures hold
// them, and answers that are not such refusals.
func TestRefusedBy(t *testing.T) {
	gorillaHdr := reassembly.Headers{{Name: "Sec-Websocket-Version", Value: "13"}}
	for _, c := range []struct {
		status int
		h      reassembly.Headers
		body   string
		lib    string // "" : not a library's refusal
	}{
		{400, gorillaHdr, "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header\n", "gorilla/websocket"},
		{400, gorillaHdr, "Bad Request\n", "gorilla/websocket (its default refusal"},
		{426, nil, "Upgrade Required", "a WebSocket server (426"},
		{400, nil, "Failed to open a WebSocket connection: did not receive a valid HTTP request.\n", "Python websockets"},
		{400, nil, `Can "Upgrade" only to "WebSocket".`, "Tornado or Spring"},
		{400, nil, "Bad Request\n", ""},      // no Sec-WebSocket-Version: anyone's
		{403, gorillaHdr, "Forbidden\n", ""}, // an origin check, not a dropped header
		{502, nil, nginxPage, ""},
	} {
		lib, ok := refusedBy(&reassembly.Response{Status: c.status, Headers: c.h, Body: c.body})
		if ok != (c.lib != "") || !strings.HasPrefix(lib.name, c.lib) {
			t.Errorf("%d %.40q: %q %v, want %q", c.status, c.body, lib.name, ok, c.lib)
		}
	}
}

// maySayASecret never hides a body the redaction regexp would change.
func TestMaySayASecret(t *testing.T) {
	for _, b := range []string{"BEARER x", "Basic  y", "TOKEN=1", "passwd: 2", "PassWord=3", "secret=4", "API_KEY=5", "apikey: 6",
		"SessionID=7", "authorization=8", "auth_token=9", "to\u212aen=10", "\u017fecret=11", "Bad Request", "Not Found", ""} {
		if secretInBody.MatchString(b) && !maySayASecret(b) {
			t.Errorf("%q: the regexp matches, the prefilter says no secret", b)
		}
	}
	if maySayASecret("Bad Request") || maySayASecret("502 Bad Gateway nginx/1.22.1") {
		t.Error("the prefilter does not filter")
	}
}

func TestSpacedOnce(t *testing.T) {
	for _, b := range []string{"", "a", "Bad Request", " a", "a ", "a  b", "a\tb", "a\nb", "a\u00a0b", "a\u0085b", "x y z"} {
		if got, want := spacedOnce(b), strings.Join(strings.Fields(b), " ") == b; got && !want {
			t.Errorf("spacedOnce(%q) = %v, but Fields changes it", b, got)
		}
	}
}
