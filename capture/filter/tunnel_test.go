package filter_test

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/capture/filter"
)

// tunPkt is an overlay packet (an Ethernet frame) and what a live socket
// with Socket.Tunnels makes of it.
type tunPkt struct {
	name string
	eth  []byte
	keep keepKind
}

type keepKind uint8

const (
	exact     keepKind = iota // the kernel judges the inner packet as capture would
	kept                      // kept whole: capture judges it
	unwatched                 // never kept (UDP on another port)
)

// frames reads the Ethernet frames of a capture of testdata/gen/node.sh.
func ethFrames(t testing.TB, file string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("../../testdata/captures", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var next func() ([]byte, error)
	if strings.HasSuffix(file, ".pcapng") {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		next = func() ([]byte, error) { b, _, err := r.ReadPacketData(); return b, err }
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		next = func() ([]byte, error) { b, _, err := r.ReadPacketData(); return b, err }
	}
	var out [][]byte
	for {
		b, err := next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), b...))
	}
}

// tunnelPackets are the overlay frames of the real captures (VXLAN on
// 4789 and 8472, Geneve, GRE with a key, IPIP, two tenants' VNIs), each
// one the kernel judges exactly, and variants of them it keeps whole or
// never sees; probe is a VXLAN frame carrying UDP, which only a program
// that keeps every overlay packet keeps (too big a program otherwise).
func tunnelPackets(t testing.TB) (pkts []tunPkt, probe []byte) {
	var out []tunPkt
	var vxlan, geneve, gre []byte
	for _, f := range []string{"vxlan-nginx.pcapng", "vxlan8472-haproxy.pcap", "geneve-nginx.pcap", "gre-nginx.pcap", "ipip-nginx.pcap", "vxlan-tenants-nginx.pcap"} {
		frames := ethFrames(t, f)
		segs := decode(t, layers.LinkTypeEthernet, frames)
		n := 0
		for i, s := range segs {
			if s == nil || s.tun == capture.TunnelNone || n == 6 {
				continue
			}
			n++
			out = append(out, tunPkt{f + " " + s.net.String(), frames[i], exact})
			switch s.tun {
			case capture.TunnelVXLAN:
				vxlan = frames[i]
			case capture.TunnelGeneve:
				geneve = frames[i]
			case capture.TunnelGRE:
				gre = frames[i]
			}
		}
		if n == 0 {
			t.Fatalf("%s: no tunnelled segment", f)
		}
	}
	// insert puts b at off of frame f, with the outer IP length (and the
	// UDP length, when udp) grown by len(b).
	insert := func(f []byte, off int, b []byte, udp bool) []byte {
		g := append(append(append([]byte(nil), f[:off]...), b...), f[off:]...)
		ihl := int(g[14]&0x0f) * 4
		binary.BigEndian.PutUint16(g[16:], binary.BigEndian.Uint16(g[16:])+uint16(len(b)))
		if udp {
			binary.BigEndian.PutUint16(g[14+ihl+4:], binary.BigEndian.Uint16(g[14+ihl+4:])+uint16(len(b)))
		}
		return g
	}
	opts := insert(vxlan, 14+20, []byte{1, 1, 1, 0}, false)
	opts[14] = 0x46
	vlan := insert(vxlan, 14+20+8+8+12, []byte{0x81, 0, 0, 1}, true)
	port := append([]byte(nil), vxlan...)
	binary.BigEndian.PutUint16(port[14+20+2:], 5555)
	greSum := insert(gre, 14+20+4, []byte{0, 0, 0, 0}, false)
	greSum[14+20] = 0xa0
	genOpt := insert(geneve, 14+20+16, []byte{1, 2, 3, 0}, true) // an option of 4 bytes (class, type, length 0)
	genOpt[14+20+8] = 1
	// IPIP carrying the VXLAN packet
	nest := append(append([]byte(nil), vxlan[:14+20]...), vxlan[14:]...)
	binary.BigEndian.PutUint16(nest[16:], uint16(len(nest)-14))
	nest[14+9] = 4
	// the VXLAN packet behind an IPv6 header
	v6 := append([]byte(nil), vxlan[:14]...)
	v6[12], v6[13] = 0x86, 0xdd
	h := make([]byte, 40)
	h[0], h[6], h[7] = 0x60, 17, 64
	binary.BigEndian.PutUint16(h[4:], uint16(len(vxlan)-14-20))
	h[8], h[23], h[24], h[39] = 0xfd, 1, 0xfd, 2
	v6 = append(append(v6, h...), vxlan[14+20:]...)
	probe = append([]byte(nil), vxlan...)
	probe[14+20+16+14+9] = 17
	return append(out,
		tunPkt{"outer IPv4 options", opts, kept},
		tunPkt{"VLAN tag inside VXLAN", vlan, kept},
		tunPkt{"GRE checksum", greSum, kept},
		tunPkt{"Geneve option", genOpt, kept},
		tunPkt{"VXLAN in IPIP", nest, kept},
		tunPkt{"VXLAN over IPv6", v6, exact},
		tunPkt{"VXLAN on UDP 5555", port, unwatched}), probe
}

// With Socket.Tunnels, a live socket keeps overlay packets and judges
// their inner packet as capture's Matcher does: exactly where its place is
// fixed, keeping the others whole; UDP on other ports is never kept; and
// what it keeps of plain packets does not change.
func TestTunnelProgram(t *testing.T) {
	tps, probe := tunnelPackets(t)
	plain := testPackets(t)
	for _, lt := range linkTypes {
		var data [][]byte
		for _, p := range tps {
			data = append(data, toLink(p.eth, lt))
		}
		segs := decode(t, lt, data)
		for _, expr := range []string{"", "port 9000", "port 80", "host 10.231.3.2", "net 10.231.2.0/24", "not port 9000",
			"ip6", "src host 10.231.3.1 and dst port 9000", "port 4789"} {
			e, err := filter.Parse(expr)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := filter.NewMatcher(expr)
			raw, err := e.Program(lt, filter.Socket{Tunnels: true}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if runBPFVM(t, raw, toLink(probe, lt)) {
				t.Errorf("%s %q: kept VXLAN carrying UDP", lt, expr)
			}
			checkTunnels(t, lt, expr, raw, m, tps, data, segs, true)
			whole, err := e.Program(lt, filter.Socket{Tunnels: true, WholeTunnels: true}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !runBPFVM(t, whole, toLink(probe, lt)) {
				t.Errorf("%s %q: WholeTunnels judged the probe", lt, expr)
			}
			checkTunnels(t, lt, expr, whole, m, tps, data, segs, false)
			bare, _ := e.Program(lt, filter.Socket{}, 0)
			for _, p := range plain {
				if got, want := runBPFVM(t, raw, toLink(p.eth, lt)), runBPFVM(t, bare, toLink(p.eth, lt)); got != want {
					t.Errorf("%s %q on %s: %v with tunnels, %v without", lt, expr, p.name, got, want)
				}
			}
		}
	}
}

// checkTunnels holds a program with Socket.Tunnels to what the Matcher
// makes of each overlay packet's decoded segment: equal where the kernel
// judges exactly (when judged: the program is not one that keeps every
// overlay packet), kept where it keeps the packet whole, never kept on
// other UDP ports.
func checkTunnels(t *testing.T, lt layers.LinkType, expr string, raw []bpf.RawInstruction, m filter.Matcher, tps []tunPkt, data [][]byte, segs []*segment, judged bool) {
	t.Helper()
	matched := 0
	for i, p := range tps {
		vm := runBPFVM(t, raw, data[i])
		if segs[i] == nil || segs[i].tun == capture.TunnelNone {
			t.Fatalf("%s: %s not decoded as tunnelled", lt, p.name)
		}
		want := m.Match(segs[i].net, &segs[i].tcp)
		switch p.keep {
		case exact:
			if vm != want && (judged || !vm) {
				t.Errorf("%s %q on %s: kernel %v, Matcher %v", lt, expr, p.name, vm, want)
			}
		case kept:
			if !vm {
				t.Errorf("%s %q on %s: not kept", lt, expr, p.name)
			}
		case unwatched:
			if vm {
				t.Errorf("%s %q on %s: kept", lt, expr, p.name)
			}
		}
		if want {
			matched++
		}
	}
	if expr == "" && matched != len(tps) {
		t.Errorf("%s: the Matcher takes %d of %d", lt, matched, len(tps))
	}
}
