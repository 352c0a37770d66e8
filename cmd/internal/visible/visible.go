// Package visible shows bytes that someone else wrote (request paths,
// header values, status reasons, bodies, close reasons, proxy log lines)
// on a terminal without letting them act on it.
//
// wsdiag runs as root and prints what anyone on the internet sent. A raw
// ESC starts a terminal command (clear the screen, set the window title,
// write the clipboard with OSC 52, make a link with OSC 8); U+009B is a
// CSI on many terminals, and so is a lone byte 0x9B on one that is not in
// UTF-8 mode; bidi controls reorder what the reader sees. One rule, for
// every text output:
//
//   - C0 controls (0x00–0x1F), DEL and bytes that are not UTF-8 are shown
//     as \xNN;
//   - C1 controls (U+0080–U+009F) and the bidi controls (U+061C, U+200E,
//     U+200F, U+202A–U+202E, U+2066–U+2069) are shown as \uNNNN;
//   - everything else is shown as it is.
//
// A C1 control is recognised only as the rune it is (0xC2 0x9B is U+009B);
// a byte that does not begin a valid UTF-8 sequence is escaped on its own,
// so no sequence of escaped and plain pieces can form one again.
package visible

import (
	"io"
	"unicode/utf8"
	"unsafe"
)

const hex = "0123456789abcdef"

// Hidden reports whether r is shown escaped: a C0 or C1 control, DEL, or
// a bidi control.
func Hidden(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// clean returns how many leading bytes of s are shown as they are.
func clean(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		if c < 0x80 {
			return i
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || Hidden(r) {
			return i
		}
		i += n
	}
	return len(s)
}

// Safe reports whether s is shown exactly as it is.
func Safe(s string) bool { return clean(s) == len(s) }

// String returns s with every hidden rune and every byte that is not
// UTF-8 escaped; s itself when there is none.
func String(s string) string {
	i := clean(s)
	if i == len(s) {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	return string(appendFrom(b, s[i:]))
}

// Append appends s, escaped as String does, to dst.
func Append(dst []byte, s string) []byte {
	i := clean(s)
	dst = append(dst, s[:i]...)
	if i == len(s) {
		return dst
	}
	return appendFrom(dst, s[i:])
}

func appendFrom(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			b = append(b, c)
			i++
			continue
		}
		if c < 0x80 {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		case Hidden(r):
			b = append(b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

// Lines is String for text of several lines: the newlines, which are the
// text's own structure, stay; everything else is escaped as String does.
func Lines(s string) string {
	if lineSafe(s) {
		return s
	}
	return string(appendLines(make([]byte, 0, len(s)+16), s))
}

func appendLines(b []byte, s string) []byte {
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		b = Append(b, s[:i])
		if i < len(s) {
			b = append(b, '\n')
			i++
		}
		s = s[i:]
	}
	return b
}

// JSON appends encoded JSON src to dst with the hidden runes that JSON
// lets through raw (DEL, C1 and bidi controls) written as \uNNNN escapes:
// the same JSON value, safe on a terminal. src must be the output of a
// JSON encoder (valid UTF-8, those runes only inside strings).
func JSON(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c < 0x7f {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		if r != utf8.RuneError && Hidden(r) {
			dst = append(dst, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
		} else {
			dst = append(dst, src[i:i+n]...)
		}
		i += n
	}
	return dst
}

// Writer escapes everything written through it except the newline (the
// line structure is the writer's own), so that no hidden byte reaches the
// terminal whatever a caller forgot. Each Write is escaped on its own:
// callers write whole lines (a rune split across two writes is escaped
// as the bytes it then is). Raw writes bytes of the program's own (colour
// sequences) unchanged.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes p escaped; it returns len(p) when all of it was written.
func (v *Writer) Write(p []byte) (int, error) {
	s := unsafeString(p)
	if lineSafe(s) {
		return v.w.Write(p)
	}
	v.buf = appendLines(v.buf[:0], s)
	if _, err := v.w.Write(v.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteString is Write for a string.
func (v *Writer) WriteString(s string) (int, error) { return v.Write([]byte(s)) }

// Raw writes s unchanged: for the program's own control sequences only,
// never for text that came from outside.
func (v *Writer) Raw(s string) error {
	_, err := io.WriteString(v.w, s)
	return err
}

// lineSafe: s is shown as it is, newlines aside.
func lineSafe(s string) bool {
	for {
		i := clean(s)
		if i == len(s) {
			return true
		}
		if s[i] != '\n' {
			return false
		}
		s = s[i+1:]
	}
}

// unsafeString views p as a string for scanning; the string is not kept.
func unsafeString(p []byte) string { return unsafe.String(unsafe.SliceData(p), len(p)) }
