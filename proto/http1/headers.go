package http1

import "strings"

// Header is one header line as it was on the wire.
type Header struct {
	Name, Value string
}

// Headers is a header block in wire order.
type Headers []Header

// Get returns the first value of the header named name (any case).
func (h Headers) Get(name string) (string, bool) {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Values returns every value of the header named name, in order.
func (h Headers) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// HasToken reports whether a comma-separated header (Connection, Upgrade)
// carries token, compared case-insensitively across all its lines.
func (h Headers) HasToken(name, token string) bool {
	for _, f := range h {
		if !strings.EqualFold(f.Name, name) {
			continue
		}
		for v := f.Value; ; {
			t, rest, more := strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
			if !more {
				break
			}
			v = rest
		}
	}
	return false
}
