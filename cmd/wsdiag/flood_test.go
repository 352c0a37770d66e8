package main

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestMillionJunkFlows drives a million one-packet flows (SYNs and bare
// data segments of no protocol, generated into a pipe, read from stdin)
// through read with --max-flows 20000, and holds the peak heap far below
// what a million tracked flows would take (~1 GiB). None carries HTTP or
// TLS: the quiet budget (a tenth of the cap per worker) ends them.
func TestMillionJunkFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("a million packets")
	}
	const n = 1000000
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		w := pcapgo.NewWriter(bw)
		w.WriteFileHeader(65535, layers.LinkTypeEthernet)
		buf := gopacket.NewSerializeBuffer()
		eth := layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, DstIP: net.IPv4(127, 0, 0, 1)}
		t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
		junk := gopacket.Payload("\x00\x01junk that is neither HTTP nor TLS")
		for i := 0; i < n; i++ {
			ip.SrcIP = net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))
			tcp := layers.TCP{SrcPort: layers.TCPPort(1024 + i%60000), DstPort: layers.TCPPort(80 + i%3), Seq: uint32(i), SYN: i%2 == 0, ACK: i%2 == 1}
			tcp.SetNetworkLayerForChecksum(&ip)
			layers := []gopacket.SerializableLayer{&eth, &ip, &tcp}
			if i%2 == 1 {
				layers = append(layers, junk)
			}
			gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, layers...)
			d := buf.Bytes()
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(d), Length: len(d)}, d); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		bw.Flush()
		pw.Close()
	}()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	var stdout, stderr strings.Builder
	code := run([]string{"read", "--format", "json", "--progress", "never", "--max-flows", "20000", "-"}, pr, &stdout, &stderr)
	close(done)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "connections that carried no HTTP or TLS ended early: more than 2000 such open at once") {
		t.Errorf("the cap was not reported: %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), `"packets":1000000`) {
		t.Errorf("summary: %s", stdout.String())
	}
	const limit = 128 << 20
	if p := peak.Load(); p > limit {
		t.Errorf("peak heap %d MiB, want under %d MiB", p>>20, limit>>20)
	} else {
		t.Logf("peak heap %d MiB for %d one-packet flows", p>>20, n)
	}
}
