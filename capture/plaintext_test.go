package capture

import (
	"bytes"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture/internal/frames"
)

// writePlainFile writes packets and plaintext records interleaved, as live
// -w does, and returns the file and what was written in order ("p" a
// packet, the plaintext otherwise).
func writePlainFile(t *testing.T) (string, []Plaintext) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain.pcapng")
	w, err := CreateWriter(path, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1700000000, 5)
	cli, srv := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:443")
	cli6, srv6 := netip.MustParseAddrPort("[2001:db8::1]:40001"), netip.MustParseAddrPort("[2001:db8::2]:8443")
	pts := []Plaintext{
		{Time: base.Add(1), Src: cli, Dst: srv, Off: 0, Start: true, Data: []byte("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")},
		{Time: base.Add(2), Src: srv, Dst: cli, Off: 0, Start: true, Data: []byte("HTTP/1.1 403 Forbidden\r\n\r\n")},
		{Time: base.Add(3), Src: cli6, Dst: srv6, Off: 0xfffffff0, Data: []byte("\x81\x05hello")},
		{Time: base.Add(4), Src: srv, Dst: cli, Off: 27, Start: true, End: true},
	}
	for i := range pts {
		data := frames.TCP4(t, "10.0.0.1", "10.0.0.2", 40000, 443, "\x17\x03\x03\x00\x01x")
		ci := gopacket.CaptureInfo{Timestamp: pts[i].Time, CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePlaintext(&pts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path, pts
}

func TestPlaintextRoundTrip(t *testing.T) {
	path, want := writePlainFile(t)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var order []string
	var got []Plaintext
	r.SetPlaintext(func(p *Plaintext) {
		order = append(order, "t")
		c := *p
		c.Data = bytes.Clone(p.Data)
		got = append(got, c)
	})
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, "p")
	}
	if s := strings.Join(order, ""); s != "ptptptpt" {
		t.Errorf("order %s, want packets and plaintext interleaved as written", s)
	}
	if len(got) != len(want) || r.Plaintexts != uint64(len(want)) || r.Skipped != 0 {
		t.Fatalf("%d plaintext records (counted %d, %d skipped), want %d", len(got), r.Plaintexts, r.Skipped, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Src != w.Src || g.Dst != w.Dst || g.Off != w.Off || g.Start != w.Start || g.End != w.End || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}

	// Without a sink the records are skipped as an unknown link type.
	r2, _ := Open(path)
	defer r2.Close()
	for {
		if _, err := r2.Next(); err != nil {
			break
		}
	}
	if r2.Skipped != 4 || r2.TCP != 4 {
		t.Errorf("without a sink: %d skipped, %d TCP", r2.Skipped, r2.TCP)
	}
}

// TestPlaintextWireshark: tshark reads the file, and shows the plaintext
// as HTTP between the connection's addresses.
func TestPlaintextWireshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark is not installed")
	}
	path, _ := writePlainFile(t)
	out, err := exec.Command(tshark, "-r", path, "-Y", "exported_pdu", "-T", "fields", "-e", "exported_pdu.ipv4_src", "-e", "exported_pdu.src_port",
		"-e", "exported_pdu.dst_port", "-e", "http.request.method", "-e", "http.response.code").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var ls []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "Running as user") {
			ls = append(ls, l)
		}
	}
	if len(ls) != 4 || ls[0] != "10.0.0.1\t40000\t443\tGET\t" || ls[1] != "10.0.0.2\t443\t40000\t\t403" {
		t.Errorf("tshark shows:\n%s", out)
	}
}

func FuzzExportedPDU(f *testing.F) {
	for _, p := range []Plaintext{
		{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:443"), Start: true, Data: []byte("GET / HTTP/1.1\r\n\r\n")},
		{Src: netip.MustParseAddrPort("[::1]:1"), Dst: netip.MustParseAddrPort("[::1]:2"), Off: 7, End: true},
	} {
		f.Add(appendExportedPDU(nil, &p))
	}
	f.Add([]byte{0, 12, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Plaintext
		if decodeExportedPDU(b, &p) != nil {
			return
		}
		// What decodes encodes to a record that decodes the same.
		var q Plaintext
		if err := decodeExportedPDU(appendExportedPDU(nil, &p), &q); err != nil {
			t.Fatalf("re-encoded %+v: %v", p, err)
		}
		if q.Src != p.Src || q.Dst != p.Dst || q.Off != p.Off || q.Start != p.Start || q.End != p.End || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("round trip:\n%+v\n%+v", p, q)
		}
	})
}
