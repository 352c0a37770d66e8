package tlsplain

import (
	"testing"
	"unsafe"
)

// TestLayout holds Decode's offsets to the C struct, as bpf2go saw it.
func TestLayout(t *testing.T) {
	var h probeRecHdr
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(h), HeaderLen},
		{"len", unsafe.Offsetof(h.Len), 12},
		{"ssl", unsafe.Offsetof(h.Ssl), 16},
		{"ts", unsafe.Offsetof(h.Ts), 24},
		{"off", unsafe.Offsetof(h.Off), 32},
		{"gen", unsafe.Offsetof(h.Gen), 40},
		{"lport", unsafe.Offsetof(h.Lport), 44},
		{"laddr", unsafe.Offsetof(h.Laddr), 48},
		{"raddr", unsafe.Offsetof(h.Raddr), 64},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, Decode reads it at %d", f.name, f.got, f.want)
		}
	}
	if n := len(probeScratch{}.Data); n != MaxChunk {
		t.Errorf("chunk %d, MaxChunk %d", n, MaxChunk)
	}
}
