package main

import "testing"

// TestURLHostPort: the host and port nginx's proxy_pass and Apache's
// ProxyPass targets name, with the port their scheme implies.
func TestURLHostPort(t *testing.T) {
	for _, c := range []struct {
		in, hp, port string
		ok           bool
	}{
		{"http://127.0.0.1:9001/ws", "127.0.0.1:9001", "80", true},
		{"https://app.internal/", "app.internal", "443", true},
		{"wss://[::1]:8443", "[::1]:8443", "443", true},
		{"ws://backend", "backend", "80", true},
		{"http://unix:/run/app.sock:/ws", "", "", false},
		{"127.0.0.1:9001", "", "", false},
	} {
		hp, port, ok := urlHostPort(c.in)
		if hp != c.hp || port != c.port || ok != c.ok {
			t.Errorf("%q: %q %q %v, want %q %q %v", c.in, hp, port, ok, c.hp, c.port, c.ok)
		}
	}
}
