package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// recordEnds returns the file offset at which each packet record of a
// pcap or pcapng file ends (pcapng: every block from the first packet
// on), and whether each holds an HTTP status line; start is where the
// first record begins.
func recordEnds(t *testing.T, b []byte) (start int, ends []int, status []bool) {
	t.Helper()
	statusLine := regexp.MustCompile(`HTTP/1\.[01] [1-5][0-9][0-9] `)
	var bo binary.ByteOrder
	switch m := binary.LittleEndian.Uint32(b); m {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	case 0x0a0d0d0a: // pcapng
		if binary.LittleEndian.Uint32(b[8:]) == 0x1a2b3c4d {
			bo = binary.LittleEndian
		} else {
			bo = binary.BigEndian
		}
		start = -1
		for off := 0; off+12 <= len(b); {
			n := int(bo.Uint32(b[off+4:]))
			if n < 12 || off+n > len(b) {
				t.Fatalf("pcapng block at %d: length %d", off, n)
			}
			if typ := bo.Uint32(b[off:]); start < 0 && (typ == 6 || typ == 3) {
				start = off // the first packet: the headers before it are not cut
			}
			if start >= 0 {
				ends = append(ends, off+n)
				status = append(status, statusLine.Match(b[off:off+n]))
			}
			off += n
		}
		return start, ends, status
	default:
		t.Fatalf("not a capture: magic %#x", m)
	}
	for off := 24; off+16 <= len(b); {
		n := 16 + int(bo.Uint32(b[off+8:]))
		if off+n > len(b) {
			t.Fatalf("record at %d: length %d", off, n)
		}
		ends = append(ends, off+n)
		status = append(status, statusLine.Match(b[off:off+n]))
		off += n
	}
	return 24, ends, status
}

// TestCutCaptures: a capture cut anywhere through its handshakes (what
// Ctrl-C, tcpdump -c, --duration or head -c leave) never has more
// attempts than the whole file, never one whose client is another
// attempt's upstream leg (the proxy's outgoing port), never one attempt
// twice; each attempt it has is judged as in the whole file, or as
// cannot_tell where the cut took what decides it (or ok, for a session
// code whose end was cut).
func TestCutCaptures(t *testing.T) {
	for _, name := range []string{"correct.pcap", "nginx-defaults.pcap", "backend-down.pcap", "http10-with-headers.pcap",
		"errorlog-same-path.pcap", "hostile-bytes.pcap", "redirect.pcap", "subprotocol-stripped.pcap", "any-sll2.pcap", "pcapng-mixed.pcapng"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(capturesDir, name)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			whole, _, _, _ := readJSON(t, path)
			type attempt struct{ code, hop string }
			full := map[string]attempt{}
			for _, v := range whole {
				full[deref2(v.Client)] = attempt{v.Code, v.Hop}
			}
			prev, ends, status := recordEnds(t, b)
			last := 0
			for i, s := range status {
				if s {
					last = i
				}
			}
			// Every record end up to one past the last answer, and the
			// middle of every such record.
			var offsets []int
			for i := 0; i <= min(last+1, len(ends)-1); i++ {
				offsets = append(offsets, (prev+ends[i])/2, ends[i])
				prev = ends[i]
			}
			dir := t.TempDir()
			for _, off := range offsets {
				cut := filepath.Join(dir, "cut.pcap")
				if err := os.WriteFile(cut, b[:off], 0o644); err != nil {
					t.Fatal(err)
				}
				vs, _, code, stderr := readJSON(t, cut)
				if code == exitTrouble {
					t.Errorf("cut at %d: exit 2: %s", off, stderr)
					continue
				}
				if len(vs) > len(whole) {
					t.Errorf("cut at %d: %d attempts, the whole file has %d", off, len(vs), len(whole))
				}
				seen := map[string]bool{}
				for _, v := range vs {
					c := deref2(v.Client)
					w, ok := full[c]
					switch {
					case !ok:
						t.Errorf("cut at %d: an attempt from %s (%s), which is no client in the whole file", off, c, v.Code)
					case seen[c]:
						t.Errorf("cut at %d: %s judged twice", off, c)
					case v.Code != w.code && v.Code != "cannot_tell" && !(v.Code == "ok" && w.hop == "session"):
						t.Errorf("cut at %d: %s %s (%s), the whole file %s", off, c, v.Code, bytes.Join(func() [][]byte {
							var e [][]byte
							for _, s := range v.Evidence {
								e = append(e, []byte(s))
							}
							return e
						}(), []byte("; ")), w.code)
					}
					seen[c] = true
				}
			}
		})
	}
}
