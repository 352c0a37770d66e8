package visible

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/ws?x=1", "/ws?x=1"},
		{"héllo wörld — ✓ 日本", "héllo wörld — ✓ 日本"},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`},
		{"\x1b]52;c;cm0gLXJmIC8=\x07", `\x1b]52;c;cm0gLXJmIC8=\x07`},
		{"\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\", `\x1b]8;;http://evil/\x1b\link\x1b]8;;\x1b\`},
		{"a\tb\r\nc\x00d\x7fe", `a\x09b\x0d\x0ac\x00d\x7fe`},
		{"\u009b31m", `\u009b31m`},       // C1 CSI as the rune it is (0xC2 0x9B)
		{"\xc2\x9b", `\u009b`},           // the same, spelt as bytes
		{"\x9b31m", `\x9b31m`},           // a lone 0x9B: not UTF-8
		{"\xc2", `\xc2`},                 // a sequence cut short
		{"\xc2\x1b", `\xc2\x1b`},         // a cut sequence followed by ESC
		{"\xe0\x80\x9b", `\xe0\x80\x9b`}, // overlong CSI: not UTF-8
		{"\xc0\x9b", `\xc0\x9b`},         // overlong again
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // a surrogate
		{"abc\u202egpj.exe", `abc\u202egpj.exe`},
		{"\u2066x\u2069\u200e\u200f\u061c\u202a\u202b\u202c\u202d", `\u2066x\u2069\u200e\u200f\u061c\u202a\u202b\u202c\u202d`},
		{"\ufffd", "\ufffd"}, // U+FFFD itself is text
		{"\u00a0\u00e9", "\u00a0\u00e9"},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := string(Append([]byte("x"), c.in)); got != "x"+c.want {
			t.Errorf("Append(%q) = %q", c.in, got)
		}
		if Safe(c.in) != (c.in == c.want) {
			t.Errorf("Safe(%q) = %v", c.in, Safe(c.in))
		}
	}
}

// TestStringNoCopy: text with nothing to escape is returned as it is,
// without an allocation.
func TestStringNoCopy(t *testing.T) {
	s := strings.Repeat("GET /ws HTTP/1.1 — é ", 20)
	if n := testing.AllocsPerRun(100, func() { _ = String(s) }); n != 0 {
		t.Errorf("%v allocations for clean text", n)
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Write([]byte("line one\n"))
	w.Write([]byte("evil \x1b[2J\u202e\r\n\n"))
	w.Raw("\x1b[31m")
	w.WriteString("red\x07")
	w.Raw("\x1b[0m")
	want := "line one\nevil \\x1b[2J\\u202e\\x0d\n\n\x1b[31mred\\x07\x1b[0m"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// check fails unless out is valid UTF-8 without a hidden rune (newlines
// allowed when lines is set).
func check(t *testing.T, in []byte, out string, lines bool) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%q → %q: not UTF-8", in, out)
	}
	for _, r := range out {
		if Hidden(r) && !(lines && r == '\n') {
			t.Fatalf("%q → %q: raw %U left", in, out, r)
		}
	}
}

// FuzzString: whatever the input, no hidden rune and no byte that is not
// UTF-8 leaves String, Append agrees with it, and text with nothing to
// escape passes unchanged.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J", "\xc2\x9b", "\x9b", "\u202e", "\xe0\x80\x9b", "a\nb", "\xf4\x90\x80\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := String(string(in))
		check(t, in, out, false)
		if a := string(Append(nil, string(in))); a != out {
			t.Fatalf("Append %q, String %q", a, out)
		}
		if Safe(string(in)) != (out == string(in)) {
			t.Fatalf("Safe(%q) = %v, String %q", in, Safe(string(in)), out)
		}
		if len(out) < len(in) {
			t.Fatalf("%q → %q: bytes lost", in, out)
		}
		var b bytes.Buffer
		NewWriter(&b).Write(in)
		check(t, in, b.String(), true)
		if strings.Count(b.String(), "\n") != bytes.Count(in, []byte("\n")) {
			t.Fatalf("%q → %q: newlines changed", in, b.String())
		}
	})
}

func TestLines(t *testing.T) {
	in := "fix: add\n  proxy_set_header \x1b[2J\u202e\r\n"
	if got, want := Lines(in), "fix: add\n  proxy_set_header \\x1b[2J\\u202e\\x0d\n"; got != want {
		t.Errorf("Lines = %q, want %q", got, want)
	}
	if s := "two\nlines é"; Lines(s) != s {
		t.Errorf("clean text changed: %q", Lines(s))
	}
}

// TestJSON: the hidden runes JSON lets through raw become \u escapes of
// the same value.
func TestJSON(t *testing.T) {
	v := map[string]string{"path": "/ws/\x1b[2J\x7f\u009b31m\u202egpj.exe\u2066—é\ufffd"}
	src, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := JSON(nil, src)
	if !Safe(string(out)) {
		t.Errorf("hidden runes left: %q", out)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["path"] != v["path"] {
		t.Errorf("%q decodes to %q (%v), want %q", out, back["path"], err, v["path"])
	}
	if !bytes.Contains(out, []byte(`\u009b31m\u202egpj.exe\u2066—é`)) || !bytes.Contains(out, []byte(`\u007f`)) {
		t.Errorf("got %s", out)
	}
}

// FuzzJSON: any string, encoded and made safe, is safe and decodes to
// what encoding/json would give.
func FuzzJSON(f *testing.F) {
	f.Add("\x1b\u009b\xc2\x9b\x9b\u202e\x7f")
	f.Fuzz(func(t *testing.T, s string) {
		src, _ := json.Marshal(s)
		out := JSON(nil, src)
		if !Safe(string(out)) {
			t.Fatalf("%q → %q: hidden runes left", s, out)
		}
		var a, b string
		json.Unmarshal(src, &a)
		if err := json.Unmarshal(out, &b); err != nil || a != b {
			t.Fatalf("%q → %q: decodes to %q (%v), want %q", s, out, b, err, a)
		}
	})
}
