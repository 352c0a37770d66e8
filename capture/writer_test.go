package capture

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wsdiag/wsdiag/capture/internal/frames"
)

func TestWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.pcapng")
	w, err := CreateWriter(path, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1700000000, 123456789)
	type sent struct {
		sp, dp  uint16
		payload string
		ts      time.Time
	}
	var want []sent
	for i := 0; i < 5; i++ {
		s := sent{uint16(40000 + i), 80, "GET /ws HTTP/1.1\r\n"[:5+i], base.Add(time.Duration(i) * time.Millisecond)}
		data := frames.TCP4(t, "10.0.0.1", "10.0.0.2", s.sp, s.dp, s.payload)
		// InterfaceIndex as "any" reports it (a kernel index): not kept
		ci := gopacket.CaptureInfo{Timestamp: s.ts, CaptureLength: len(data), Length: len(data), InterfaceIndex: 7}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	// a truncated capture: Length > CaptureLength is kept
	full := frames.TCP6(t, "2001:db8::1", "2001:db8::2", 1234, 443, "0123456789")
	ci := gopacket.CaptureInfo{Timestamp: base.Add(time.Second), CaptureLength: len(full) - 4, Length: len(full)}
	if err := w.WritePacket(ci, full[:len(full)-4]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.WritePacket(ci, full); err == nil {
		t.Errorf("WritePacket after Close: no error")
	}

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}

	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, s := range want {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if uint16(p.TCP.SrcPort) != s.sp || uint16(p.TCP.DstPort) != s.dp || string(p.TCP.Payload) != s.payload {
			t.Errorf("packet %d: %v %d->%d %q", i, p.Net, p.TCP.SrcPort, p.TCP.DstPort, p.TCP.Payload)
		}
		if !p.CI.Timestamp.Equal(s.ts) {
			t.Errorf("packet %d: time %v, want %v", i, p.CI.Timestamp, s.ts)
		}
		if p.CI.InterfaceIndex != 0 {
			t.Errorf("packet %d: interface %d", i, p.CI.InterfaceIndex)
		}
	}
	p, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p.CI.Length != len(full) || p.CI.CaptureLength != len(full)-4 || p.Net.Src().String() != "2001:db8::1" {
		t.Errorf("truncated packet: %+v %v", p.CI, p.Net)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the packets: %v, want EOF", err)
	}
}

func TestWriterModeOfExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.pcapng")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := CreateWriter(path, layers.LinkTypeRaw)
	if err != nil {
		t.Fatal(err)
	}
	data := frames.TCP4(t, "10.0.0.1", "10.0.0.2", 1, 2, "x")[14:]
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(data), Length: len(data)}, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p.TCP.SrcPort != 1 || string(p.TCP.Payload) != "x" {
		t.Errorf("raw IP packet read back as %v %v", p.Net, p.TCP.SrcPort)
	}
}

func TestWriterErrors(t *testing.T) {
	if _, err := CreateWriter(filepath.Join(t.TempDir(), "no", "such", "dir.pcapng"), layers.LinkTypeEthernet); err == nil {
		t.Errorf("CreateWriter in a missing directory: no error")
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	data := frames.TCP4(t, "10.0.0.1", "10.0.0.2", 1, 2, "")
	// Length smaller than the data is taken as the data's length
	if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0)}, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader("buf", &buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p.CI.Length != len(data) {
		t.Errorf("Length %d, want %d", p.CI.Length, len(data))
	}
}
