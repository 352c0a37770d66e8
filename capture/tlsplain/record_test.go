package tlsplain

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// rec builds a ring record as the programs write it.
func rec(kind Kind, dir Dir, family uint8, local, remote netip.AddrPort, off uint64, data string) []byte {
	b := make([]byte, HeaderLen+len(data))
	le := binary.LittleEndian
	b[0], b[1], b[2], b[3] = byte(kind), byte(dir), 1, family
	le.PutUint32(b[4:], 4242)
	le.PutUint32(b[8:], 4243)
	le.PutUint32(b[12:], uint32(len(data)))
	le.PutUint64(b[16:], 0x55f3a90a5e90)
	le.PutUint64(b[24:], 123456789)
	le.PutUint64(b[32:], off)
	le.PutUint32(b[40:], 257)
	le.PutUint16(b[44:], local.Port())
	le.PutUint16(b[46:], remote.Port())
	l, r := local.Addr().As16(), remote.Addr().As16()
	if family == afInet {
		l4, r4 := local.Addr().As4(), remote.Addr().As4()
		copy(b[48:], l4[:])
		copy(b[64:], r4[:])
	} else {
		copy(b[48:], l[:])
		copy(b[64:], r[:])
	}
	copy(b[HeaderLen:], data)
	return b
}

func TestDecode(t *testing.T) {
	l, r := netip.MustParseAddrPort("127.0.0.1:443"), netip.MustParseAddrPort("127.0.0.1:40000")
	var x Record
	if err := x.Decode(rec(KindData, Read, afInet, l, r, 7, "GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	if x.Kind != KindData || x.Dir != Read || !x.Start || x.PID != 4242 || x.TID != 4243 || x.SSL != 0x55f3a90a5e90 || x.Gen != 257 ||
		x.Mono != 123456789 || x.Off != 7 || x.Local != l || x.Remote != r || string(x.Data) != "GET / HTTP/1.1\r\n" || x.Src() != r || x.Dst() != l {
		t.Errorf("decoded %+v", x)
	}
	// A dual-stack socket's IPv4 peer is IPv4.
	m := netip.MustParseAddrPort("[::ffff:10.1.2.3]:5000")
	if err := x.Decode(rec(KindData, Write, afInet6, netip.MustParseAddrPort("[::ffff:10.0.0.1]:443"), m, 0, "x")); err != nil {
		t.Fatal(err)
	}
	if x.Remote != netip.MustParseAddrPort("10.1.2.3:5000") || x.Src() != netip.MustParseAddrPort("10.0.0.1:443") {
		t.Errorf("v4-mapped: %v → %v", x.Src(), x.Dst())
	}
	// Unknown socket: no addresses.
	if err := x.Decode(rec(KindData, Read, 0, l, r, 0, "x")); err != nil || x.Local.IsValid() {
		t.Errorf("no socket: %v %v", err, x.Local)
	}
	f := rec(KindFork, 0, 0, l, r, 0, "")
	binary.LittleEndian.PutUint64(f[16:], 99)
	if err := x.Decode(f); err != nil || x.Kind != KindFork || x.PID != 4242 || x.PPID != 99 {
		t.Errorf("fork: %v %+v", err, x)
	}
	for _, bad := range [][]byte{nil, make([]byte, HeaderLen-1), rec(KindData, Read, afInet, l, r, 0, "abc")[:HeaderLen+2], rec(9, Read, afInet, l, r, 0, "")} {
		if err := x.Decode(bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	b := rec(KindData, Read, afInet6, netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::2]:1"), 0, "hello")
	var x Record
	if n := testing.AllocsPerRun(100, func() { x.Decode(b) }); n != 0 {
		t.Errorf("%v allocations per record", n)
	}
}

func FuzzRecord(f *testing.F) {
	l, r := netip.MustParseAddrPort("127.0.0.1:443"), netip.MustParseAddrPort("[2001:db8::2]:1")
	f.Add(rec(KindData, Read, afInet, l, l, 0, "GET"))
	f.Add(rec(KindEnd, Write, afInet6, r, r, 1<<40, ""))
	f.Add(rec(KindFork, 0, 0, l, l, 0, ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		var x Record
		if x.Decode(b) != nil {
			return
		}
		if len(x.Data) > MaxChunk || len(x.Data) > len(b)-HeaderLen {
			t.Fatalf("%d bytes of data from a %d-byte record", len(x.Data), len(b))
		}
		if x.Local.IsValid() != x.Remote.IsValid() {
			t.Fatalf("one end without the other: %v %v", x.Local, x.Remote)
		}
	})
}
