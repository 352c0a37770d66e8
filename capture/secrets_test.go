package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// keyTexts is a KeyLogSink that keeps what it is given.
type keyTexts []string

func (k *keyTexts) AddKeyLog(b []byte) error {
	*k = append(*k, string(b))
	return nil
}

// pcapngBlock builds one little-endian pcapng block.
func pcapngBlock(typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, n)
}

func dsbBlock(typ uint32, text string) []byte {
	var body []byte
	body = binary.LittleEndian.AppendUint32(body, typ)
	body = binary.LittleEndian.AppendUint32(body, uint32(len(text)))
	body = append(body, text...)
	return pcapngBlock(pcapngDSB, body)
}

// drain reads r to its end and returns the packets.
func drain(t *testing.T, r *Reader) int {
	n := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

// DSBs before and after the first IDB, and one of another secrets type,
// read from a stream cut into single bytes and from gzip.
func TestReaderKeyLogs(t *testing.T) {
	shb := pcapngBlock(pcapngSHB, []byte{0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	idb := pcapngBlock(1, []byte{1, 0, 0, 0, 0, 0, 4, 0})
	var f bytes.Buffer
	f.Write(shb)
	f.Write(dsbBlock(dsbTLSKeyLog, "CLIENT_RANDOM one\n"))
	f.Write(idb)
	f.Write(dsbBlock(0x57474b4c, "a WireGuard key log")) // not TLS: ignored
	f.Write(dsbBlock(dsbTLSKeyLog, "CLIENT_HANDSHAKE_TRAFFIC_SECRET two"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(f.Bytes())
	zw.Close()
	for name, in := range map[string]io.Reader{
		"plain":       bytes.NewReader(f.Bytes()),
		"single-byte": iotest.OneByteReader(bytes.NewReader(f.Bytes())),
		"gzip":        bytes.NewReader(gz.Bytes()),
	} {
		r, err := NewReader(name, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got keyTexts
		r.SetKeyLog(&got)
		drain(t, r)
		if want := "CLIENT_RANDOM one\n|CLIENT_HANDSHAKE_TRAFFIC_SECRET two"; strings.Join(got, "|") != want {
			t.Errorf("%s: key logs %q, want %q", name, got, want)
		}
	}
}

// The real capture with editcap's injected key log gives it from stdin
// gzipped as from the file (secrets read by opening the file a second
// time, outside the reader, were lost in both cases).
func TestReaderKeyLogsInjected(t *testing.T) {
	raw, err := os.ReadFile("../testdata/captures/tls-13-keys-injected.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	r, err := OpenStdin("-", &gz)
	if err != nil {
		t.Fatal(err)
	}
	var got keyTexts
	r.SetKeyLog(&got)
	if n := drain(t, r); n == 0 {
		t.Fatal("no packets")
	}
	if len(got) != 1 || !strings.Contains(got[0], "CLIENT_HANDSHAKE_TRAFFIC_SECRET ") {
		t.Errorf("key logs %q", got)
	}
}
