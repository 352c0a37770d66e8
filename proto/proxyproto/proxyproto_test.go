package proxyproto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// The headers haproxy 2.6 wrote in testdata/captures/pp-v1-nginx.pcap
// (send-proxy) and pp-v2-nginx.pcap (send-proxy-v2), each alone in the
// first segment of the balancer's connection.
var (
	haproxyV1 = mustHex("50524f585920544350342031302e3233312e312e322031302e3233312e312e312034393639302038300d0a")
	haproxyV2 = mustHex("0d0a0d0a000d0a515549540a2111000c0ae701020ae70101c2300050")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// v2 builds a version 2 header: command, family byte, address block, TLVs.
func v2(cmd, fam byte, addr, tlv []byte) []byte {
	b := append([]byte(v2Sig), 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(addr)+len(tlv)))
	return append(append(b, addr...), tlv...)
}

var ap = netip.MustParseAddrPort

var valid = []struct {
	name string
	in   []byte
	want Header
}{
	{"haproxy v1", haproxyV1, Header{Version: 1, Family: "TCP4", Src: ap("10.231.1.2:49690"), Dst: ap("10.231.1.1:80"), Len: 43}},
	{"haproxy v2", haproxyV2, Header{Version: 2, Family: "TCP4", Src: ap("10.231.1.2:49712"), Dst: ap("10.231.1.1:80"), Len: 28}},
	{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 443\r\n"),
		Header{Version: 1, Family: "TCP6", Src: ap("[2001:db8::1]:65535"), Dst: ap("[2001:db8::2]:443"), Len: 46}},
	{"v1 UNKNOWN", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), Header{Version: 1, Family: "UNKNOWN", Len: 35}},
	{"v1 UNKNOWN bare", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Family: "UNKNOWN", Len: 15}},
	{"v1 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		Header{Version: 1, Family: "TCP6", Src: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Dst: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Len: 104}},
	{"v2 TCP6 with TLVs", v2(1, 0x21, append(append(netip.MustParseAddr("2001:db8::7").AsSlice(), netip.MustParseAddr("2001:db8::8").AsSlice()...), 0x1f, 0x90, 0x01, 0xbb),
		append([]byte{0x01, 0, 2, 'h', '2'}, bytes.Repeat([]byte{0xea, 0, 0xf0}, 1)...)), // ALPN, then an AWS TLV cut to nothing
		Header{Version: 2, Family: "TCP6", Src: ap("[2001:db8::7]:8080"), Dst: ap("[2001:db8::8]:443"), Len: 16 + 36 + 8}},
	{"v2 LOCAL", v2(0, 0x00, nil, nil), Header{Version: 2, Local: true, Family: "UNKNOWN", Len: 16}},
	{"v2 LOCAL with addresses", v2(0, 0x11, make([]byte, 12), nil), Header{Version: 2, Local: true, Family: "TCP4", Len: 28}},
	{"v2 UNIX", v2(1, 0x31, make([]byte, 216), nil), Header{Version: 2, Family: "UNIX", Len: 232}},
	{"v2 big TLVs", v2(1, 0x11, []byte{192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2}, bytes.Repeat([]byte{0x04, 0x03, 0xfc}, 1)),
		Header{Version: 2, Family: "TCP4", Src: ap("192.0.2.1:1"), Dst: ap("192.0.2.2:2"), Len: 31}},
}

func init() {
	// a header whose TLVs (64 KiB in all) are far longer than the Parser holds
	big := v2(1, 0x11, []byte{192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2}, bytes.Repeat([]byte{0xee}, 65535-12))
	valid = append(valid, struct {
		name string
		in   []byte
		want Header
	}{"v2 64 KiB", big, Header{Version: 2, Family: "TCP4", Src: ap("192.0.2.1:1"), Dst: ap("192.0.2.2:2"), Len: 16 + 65535}})
}

const request = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"

// run feeds in in pieces cut at the given offsets and returns the status,
// the header and the bytes the caller would pass on (held and the rest).
func run(in []byte, cuts ...int) (Status, Header, []byte) {
	var p Parser
	var out []byte
	prev := 0
	st := NeedMore
	for i := 0; i <= len(cuts); i++ {
		end := len(in)
		if i < len(cuts) {
			end = cuts[i]
		}
		piece := in[prev:end]
		prev = end
		if st != NeedMore {
			out = append(out, piece...)
			continue
		}
		var n int
		st, n = p.Feed(piece)
		switch st {
		case NeedMore:
			if n != len(piece) {
				panic("NeedMore took part of a piece")
			}
		case Done:
			out = append(out, piece[n:]...)
		default:
			out = append(append(out, p.Held()...), piece...)
		}
	}
	return st, p.Header(), out
}

func TestValid(t *testing.T) {
	for _, c := range valid {
		in := append(append([]byte(nil), c.in...), request...)
		// whole, at every single split, and byte by byte
		splits := [][]int{nil}
		for i := 1; i < len(in); i++ {
			splits = append(splits, []int{i})
		}
		if len(in) < 1000 {
			var every []int
			for i := 1; i < len(in); i++ {
				every = append(every, i)
			}
			splits = append(splits, every)
		}
		for _, cuts := range splits {
			st, h, rest := run(in, cuts...)
			if st != Done || h != c.want || string(rest) != request {
				t.Fatalf("%s cut at %v: %v %+v rest %q, want %+v", c.name, cuts[:min(len(cuts), 3)], st, h, rest, c.want)
			}
		}
	}
}

func TestNotProxy(t *testing.T) {
	for _, in := range []string{
		request, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "POST / HTTP/1.1\r\n",
		"PROXYGET / HTTP/1.1\r\n", "\r\n\r\n\x00\r\nQUIT!", "PROXZ ", "\x81\x05hello",
	} {
		for i := 0; i <= len(in); i++ {
			var cuts []int
			if i > 0 && i < len(in) {
				cuts = []int{i}
			}
			st, _, rest := run([]byte(in), cuts...)
			if st != NotProxy || string(rest) != in {
				t.Fatalf("%q cut at %d: %v, passed on %q", in, i, st, rest)
			}
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{
		"PROXY TCP4 10.0.0.1 10.0.0.2 1 2 3\r\n",
		"PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n",
		"PROXY TCP4 2001:db8::1 10.0.0.2 1 2\r\n",
		"PROXY TCP6 10.0.0.1 10.0.0.2 1 2\r\n",
		"PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n",
		"PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n",
		"PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n",
		"PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n",
		"PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n",
		"PROXY TCP4 " + strings.Repeat("1", 100) + "\r\n",
		"PROXY " + strings.Repeat("x", 200),
		string(v2Sig) + "\x31\x11\x00\x0c",                  // version 3
		string(v2Sig) + "\x22\x11\x00\x0c",                  // command 2
		string(v2Sig) + "\x21\x11\x00\x08" + "01234567",     // shorter than its TCP4 addresses
		string(v2Sig) + "\x21\x41\x00\x00",                  // family 4
		string(v2Sig) + "\x21\x21\x00\x0c" + "0123456789ab", // TCP6 in 12 bytes
	} {
		st, _, rest := run([]byte(in + request))
		var p Parser
		p.Feed([]byte(in + request))
		if st != Malformed || string(rest) != in+request || p.Err() == nil {
			t.Errorf("%q: %v, passed on %q", in, st, rest)
		}
	}
}

// A connection's first segment may be shorter than a signature: the
// Parser holds it and says NeedMore; the connection ending there leaves
// the caller with Held empty until a decision, which a close never makes.
func TestShortStart(t *testing.T) {
	for _, in := range []string{"P", "PROXY", "\r\n", "\r\n\r\n\x00\r\nQUI", "PROXY TCP4 1.2.3.4"} {
		var p Parser
		if st, n := p.Feed([]byte(in)); st != NeedMore || n != len(in) || p.Held() != nil || !Start([]byte(in)) {
			t.Errorf("%q: %v %d", in, st, n)
		}
	}
	if Start([]byte("GET")) || Start(nil) || Start([]byte("\x16")) {
		t.Error("Start on a request, nothing, a TLS record")
	}
}

func TestStatusString(t *testing.T) {
	if NeedMore.String() != "need more" || Done.String() != "done" || NotProxy.String() != "not proxy" || Malformed.String() != "malformed" {
		t.Error("Status.String")
	}
}

// FuzzParser: any input, whole or split in two, gives the same decision
// and header, takes no more than it is given, and passes on exactly what
// is not the header.
func FuzzParser(f *testing.F) {
	for _, c := range valid[:len(valid)-1] {
		f.Add(append(append([]byte(nil), c.in...), request...), uint16(7))
	}
	f.Add([]byte(request), uint16(3))
	f.Add([]byte("PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r"), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		st1, h1, rest1 := run(in)
		c := int(cut) % (len(in) + 1)
		var cuts []int
		if c > 0 && c < len(in) {
			cuts = []int{c}
		}
		st2, h2, rest2 := run(in, cuts...)
		if st1 != st2 || h1 != h2 || !bytes.Equal(rest1, rest2) {
			t.Fatalf("whole: %v %+v %q; cut at %d: %v %+v %q", st1, h1, rest1, c, st2, h2, rest2)
		}
		switch st1 {
		case Done:
			if h1.Len > len(in) || !bytes.Equal(rest1, in[h1.Len:]) || h1.Version == 1 && h1.Len > v1Max {
				t.Fatalf("done: len %d of %d, rest %q", h1.Len, len(in), rest1)
			}
		case NotProxy, Malformed:
			if !bytes.Equal(rest1, in) {
				t.Fatalf("%v passed on %q", st1, rest1)
			}
		}
	})
}
