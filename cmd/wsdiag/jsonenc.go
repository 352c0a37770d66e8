package main

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/wsdiag/wsdiag/cmd/internal/visible"
)

// The verdict line's JSON, appended field by field: the bytes encoding/json
// writes for VerdictLine (SetEscapeHTML(false), a newline after), without
// reflection, since a run writes one line per attempt. jsonenc_test.go
// holds the two to each other on every golden capture and on random
// lines; a field added to VerdictLine is added here in its place.

// appendJSON appends l and a newline.
func (l *VerdictLine) appendJSON(b []byte) []byte {
	b = appendField(b, '{', "type", l.Type)
	b = appendField(b, ',', "ts", l.TS)
	b = appendField(b, ',', "code", l.Code)
	b = appendField(b, ',', "severity", l.Severity)
	b = appendField(b, ',', "hop", l.Hop)
	b = appendStrings(appendKey(b, ',', "findings"), l.Findings)
	b = appendStringPtr(appendKey(b, ',', "client"), l.Client)
	b = appendStringPtr(appendKey(b, ',', "proxy"), l.Proxy)
	b = appendStringPtr(appendKey(b, ',', "backend"), l.Backend)
	b = appendField(b, ',', "path", l.Path)
	b = appendIntPtr(appendKey(b, ',', "status_backend"), l.StatusBackend)
	b = appendIntPtr(appendKey(b, ',', "status_client"), l.StatusClient)
	b = appendField(b, ',', "pair_confidence", l.PairConfidence)
	b = appendStrings(appendKey(b, ',', "evidence"), l.Evidence)
	b = appendField(b, ',', "fix", l.Fix)
	if l.ErrorLogExpected != "" {
		b = appendField(b, ',', "error_log_expected", l.ErrorLogExpected)
	}
	if len(l.ErrorLog) > 0 {
		b = appendStrings(appendKey(b, ',', "error_log"), l.ErrorLog)
	}
	if c := l.Config; c != nil {
		b = appendField(appendKey(b, ',', "config"), '{', "file", c.File)
		b = strconv.AppendInt(appendKey(b, ',', "line"), int64(c.Line), 10)
		b = appendField(b, ',', "block", c.Block)
		if c.Server != "" {
			b = appendField(b, ',', "server", c.Server)
		}
		if len(c.Problems) > 0 {
			b = appendStrings(appendKey(b, ',', "problems"), c.Problems)
		}
		b = append(b, '}')
	}
	if l.ProxyProduct != "" {
		b = appendField(b, ',', "proxy_product", l.ProxyProduct)
	}
	b = appendKey(b, ',', "legs")
	if l.Legs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range l.Legs {
			if i > 0 {
				b = append(b, ',')
			}
			b = l.Legs[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	if s := l.Session; s != nil {
		b = appendFloat(appendKey(appendKey(b, ',', "session"), '{', "duration_s"), s.DurationS)
		b = strconv.AppendUint(appendKey(b, ',', "frames_c2s"), s.FramesC2S, 10)
		b = strconv.AppendUint(appendKey(b, ',', "frames_s2c"), s.FramesS2C, 10)
		b = strconv.AppendUint(appendKey(b, ',', "bytes_c2s"), s.BytesC2S, 10)
		b = strconv.AppendUint(appendKey(b, ',', "bytes_s2c"), s.BytesS2C, 10)
		b = appendFloat(appendKey(b, ',', "longest_silence_s"), s.LongestSilenceS)
		b = strconv.AppendUint(appendKey(b, ',', "pings"), uint64(s.Pings), 10)
		b = strconv.AppendBool(appendKey(b, ',', "open"), s.Open)
		b = appendStringPtr(appendKey(b, ',', "closed_by"), s.ClosedBy)
		b = appendKey(b, ',', "close_code")
		if s.CloseCode == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendUint(b, uint64(*s.CloseCode), 10)
		}
		b = appendField(b, ',', "close_reason", s.CloseReason)
		b = append(b, '}')
	}
	return append(b, '}', '\n')
}

func (l *LegLine) appendJSON(b []byte) []byte {
	b = appendField(b, '{', "client", l.Client)
	b = appendField(b, ',', "server", l.Server)
	b = appendField(b, ',', "request", l.Request)
	if l.Response != "" {
		b = appendField(b, ',', "response", l.Response)
	}
	if l.RequestHeaders != nil { // omitzero: an empty list is written
		b = appendStrings(appendKey(b, ',', "request_headers"), l.RequestHeaders)
	}
	if l.ResponseHeaders != nil {
		b = appendStrings(appendKey(b, ',', "response_headers"), l.ResponseHeaders)
	}
	if l.Proto != "" {
		b = appendField(b, ',', "proto", l.Proto)
	}
	return append(b, '}')
}

// appendKey appends sep (',' or '{') and "key":.
func appendKey(b []byte, sep byte, key string) []byte {
	b = append(b, sep, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendField(b []byte, sep byte, key, v string) []byte {
	return appendJSONString(appendKey(b, sep, key), v)
}

// appendStrings appends a list of strings (null when nil, as encoding/json).
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *s)
}

func appendIntPtr(b []byte, n *int) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(*n), 10)
}

// appendFloat writes f as encoding/json does: the shortest decimal that
// reads back as f, in exponent form only below 1e-6 or from 1e21 on (with
// a one-digit negative exponent unpadded). Durations are finite.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-07 → e-7
		b = b[:n-1]
	}
	return b
}

const hexDigits = "0123456789abcdef"

// plainJSON marks the bytes a JSON string holds as they are: printable
// ASCII but for quote and backslash.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string, escaped as writeLine
// escapes it: as encoding/json does without HTML escaping (quote and
// backslash, control characters: \b \f \n \r \t by name, the rest as
// \u00XX; U+2028 and U+2029 as \u escapes; bytes that are not UTF-8 as
// \ufffd), and the runes visible.JSON hides from a terminal (DEL, C1 and
// bidi controls) as \u escapes too. Every JSON string of a verdict line is
// written here and nowhere else.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is still to be copied as it is
	for i := 0; i < len(s); {
		for i+4 <= len(s) && plainJSON[s[i]] && plainJSON[s[i+1]] && plainJSON[s[i+2]] && plainJSON[s[i+3]] {
			i += 4
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if plainJSON[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default: // the rest of C0, and DEL
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029' || visible.Hidden(r):
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
