package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// realIPPackets returns the IP packets (link header stripped) of a real
// Ethernet capture, with their capture info.
func realIPPackets(t *testing.T, name string) ([][]byte, []gopacket.CaptureInfo) {
	t.Helper()
	f, err := os.Open(filepath.Join(capturesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v, want Ethernet", name, r.LinkType())
	}
	var pkts [][]byte
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, append([]byte(nil), data[14:]...))
		cis = append(cis, ci)
	}
	return pkts, cis
}

// ipv4To6 rewrites an IPv4 packet as IPv6: a.b.c.d becomes fd00::a.b.c.d,
// so distinct hosts stay distinct. TCP checksums are not recomputed:
// wsdiag does not check them (captures on lo carry offloaded ones anyway).
func ipv4To6(p []byte) []byte {
	ihl := int(p[0]&0x0f) * 4
	payload := p[ihl:]
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = p[9] // next header: TCP
	h[7] = 64
	h[8], h[24] = 0xfd, 0xfd
	copy(h[20:24], p[12:16])
	copy(h[36:40], p[16:20])
	return append(h, payload...)
}

func writePcap(t *testing.T, lt layers.LinkType, pkts [][]byte, cis []gopacket.CaptureInfo, wrap func([]byte) []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(262144, lt); err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		d := wrap(p)
		ci := cis[i]
		ci.CaptureLength, ci.Length = len(d), len(d)
		if err := w.WritePacket(ci, d); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func ipVersionProto(p []byte) uint16 {
	if p[0]>>4 == 6 {
		return 0x86dd
	}
	return 0x0800
}

// TestLinkTypes: the same real packets under every link type wsdiag reads
// give the same verdicts as the original Ethernet capture.
func TestLinkTypes(t *testing.T) {
	const name = "nginx-defaults.pcap"
	want, _, _, _ := readJSON(t, filepath.Join(capturesDir, name))
	if len(want) != 3 {
		t.Fatalf("baseline: %d verdicts", len(want))
	}
	pkts, cis := realIPPackets(t, name)
	v6 := make([][]byte, len(pkts))
	for i, p := range pkts {
		v6[i] = ipv4To6(p)
	}
	null := func(order binary.ByteOrder) func([]byte) []byte {
		return func(p []byte) []byte {
			h := make([]byte, 4, 4+len(p))
			fam := uint32(2)
			if p[0]>>4 == 6 {
				fam = 24
			}
			order.PutUint32(h, fam)
			return append(h, p...)
		}
	}
	eth := func(vlan bool) func([]byte) []byte {
		return func(p []byte) []byte {
			h := make([]byte, 12, 18+len(p))
			if vlan {
				h = append(h, 0x81, 0x00, 0x00, 0x2a)
			}
			h = binary.BigEndian.AppendUint16(h, ipVersionProto(p))
			return append(h, p...)
		}
	}
	sll := func(p []byte) []byte {
		h := make([]byte, 16, 16+len(p))
		binary.BigEndian.PutUint16(h[0:], 0)   // to us
		binary.BigEndian.PutUint16(h[2:], 772) // ARPHRD_LOOPBACK
		binary.BigEndian.PutUint16(h[4:], 6)
		binary.BigEndian.PutUint16(h[14:], ipVersionProto(p))
		return append(h, p...)
	}
	raw := func(p []byte) []byte { return p }
	cases := []struct {
		name string
		lt   layers.LinkType
		v6   bool
		wrap func([]byte) []byte
	}{
		{"raw101", layers.LinkTypeRaw, false, raw},
		{"ipv4-228", layers.LinkTypeIPv4, false, raw},
		{"ipv6-229", layers.LinkTypeIPv6, true, raw},
		{"raw101-ipv6", layers.LinkTypeRaw, true, raw},
		{"null-le", layers.LinkTypeNull, false, null(binary.LittleEndian)},
		{"null-be", layers.LinkTypeNull, false, null(binary.BigEndian)},
		{"loop-ipv6", layers.LinkTypeLoop, true, null(binary.BigEndian)},
		{"ethernet-vlan", layers.LinkTypeEthernet, false, eth(true)},
		{"ethernet-ipv6", layers.LinkTypeEthernet, true, eth(false)},
		{"sll", layers.LinkTypeLinuxSLL, false, sll},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := pkts
			if c.v6 {
				src = v6
			}
			data := writePcap(t, c.lt, src, cis, c.wrap)
			path := filepath.Join(t.TempDir(), c.name+".pcap")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, _, code, stderr := readJSON(t, path)
			if code != exitNotOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if len(got) != len(want) {
				t.Fatalf("%d verdicts, want %d", len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.Code != w.Code || g.Hop != w.Hop || !reflect.DeepEqual(g.Findings, w.Findings) ||
					deref(g.StatusBackend) != deref(w.StatusBackend) || g.PairConfidence != w.PairConfidence {
					t.Errorf("verdict %d: got %s/%s %v, want %s/%s %v", i, g.Code, g.Hop, g.Findings, w.Code, w.Hop, w.Findings)
				}
				if c.v6 && (g.Client == nil || (*g.Client)[0] != '[') {
					t.Errorf("verdict %d: client %v is not an IPv6 address", i, g.Client)
				}
			}
		})
	}
}

// TestGzipAndStdin: a gzip-compressed capture and standard input give the
// same verdicts as the plain file.
func TestGzipAndStdin(t *testing.T) {
	path := filepath.Join(capturesDir, "concurrent-20.pcap")
	want, _, _, _ := readJSON(t, path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzPath := filepath.Join(t.TempDir(), "c.pcap.gz")
	os.WriteFile(gzPath, gz.Bytes(), 0o600)
	got, _, code, _ := readJSON(t, gzPath)
	if code != exitNotOK || len(got) != len(want) || len(got) != 20 {
		t.Fatalf("gzip: exit %d, %d verdicts, want %d", code, len(got), len(want))
	}
	for i := range got {
		if got[i].Code != want[i].Code || *got[i].Client != *want[i].Client {
			t.Errorf("gzip verdict %d differs: %s vs %s", i, got[i].Code, want[i].Code)
		}
	}
	// stdin: swap os.Stdin for the gzip file
	f, _ := os.Open(gzPath)
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	got, _, code, _ = readJSON(t, "-")
	if code != exitNotOK || len(got) != 20 {
		t.Fatalf("stdin: exit %d, %d verdicts", code, len(got))
	}
}
