package pipeline

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/reassembly"
)

// The two-host captures of testdata/gen/node.sh: the app host's file as
// recorded, and shifted by editcap 7.5 s ahead and 4 s behind (sharing
// the balancer→app connections with the balancer's file), and a second
// shape sharing no connection, only the keys relayed over three hops.
func TestEstimateOffsets(t *testing.T) {
	for _, c := range []struct {
		ref, file string
		want      time.Duration
		applied   bool
		basis     string
	}{
		{"skew-lb.pcap", "skew-app.pcap", 0, false, "connection(s) in both files"},
		{"skew-lb.pcap", "skew-app-ahead.pcap", 7500 * time.Millisecond, true, "6 connection(s) in both files"},
		{"skew-lb.pcap", "skew-app-behind.pcap", -4 * time.Second, true, "6 connection(s) in both files"},
		{"skew2-lb.pcapng", "skew2-app-behind.pcapng", -4 * time.Second, true, "4 handshake key(s) relayed"},
		{"skew-lb.pcap", "vxlan-nginx.pcapng", 0, false, ""}, // nothing shared, one after the other
	} {
		files := []string{filepath.Join(captures, c.ref), filepath.Join(captures, c.file)}
		offs, err := EstimateOffsets(files, nil, capture.Open, reassembly.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		o := offs[1]
		// the same packet seen on two hosts' veths: microseconds apart; a
		// key relayed a hop further: the proxy's latency, halved
		if (o.By-c.want).Abs() > 300*time.Microsecond || o.Applied() != c.applied || !strings.Contains(o.Basis, c.basis) {
			t.Errorf("%s: %v (%s), applied %v; want %v", c.file, o.By, o.Basis, o.Applied(), c.want)
		}
		d := o.Describe(files[1], files[0])
		switch {
		case c.basis == "" && d != "",
			c.applied && !strings.Contains(d, "; shifted"),
			c.basis != "" && !c.applied && d != "":
			t.Errorf("%s: %q", c.file, d)
		}
	}
}

func TestParseClockOffsets(t *testing.T) {
	files := []string{"lb.pcap", "app.pcap", "x=y.pcap"}
	got, err := ParseClockOffsets([]string{"app.pcap=7.5", "x=y.pcap=-4"}, files)
	if err != nil || got[1] != 7500*time.Millisecond || got[2] != -4*time.Second || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"app.pcap", "app.pcap=", "app.pcap=x", "other.pcap=1", "lb.pcap=1", "app.pcap=NaN", "app.pcap=1e12"} {
		if _, err := ParseClockOffsets([]string{bad}, files); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Pump takes each reader's offset off its timestamps before merging.
func TestPumpOffsets(t *testing.T) {
	open := func(n string) *capture.Reader {
		r, err := capture.Open(filepath.Join(captures, n))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var first, last time.Time
	sink := sinkFunc(func(p *capture.Packet) {
		if first.IsZero() {
			first = p.CI.Timestamp
		}
		if p.CI.Timestamp.Before(last) {
			t.Fatalf("out of order: %v after %v", p.CI.Timestamp, last)
		}
		last = p.CI.Timestamp
	})
	Pump([]*capture.Reader{open("skew-lb.pcap"), open("skew-app-ahead.pcap")}, sink, PumpOptions{Offsets: []time.Duration{0, 7500 * time.Millisecond}})
	if last.Sub(first) > 2*time.Second {
		t.Errorf("the merged files span %v: the offset was not taken off", last.Sub(first))
	}
}

type sinkFunc func(*capture.Packet)

func (f sinkFunc) Add(p *capture.Packet) { f(p) }

// Two captures of one time that share nothing say so; one after the other
// (a host's rotated files) say nothing.
func TestOffsetNothingShared(t *testing.T) {
	o := Offset{overlap: true}
	if d := o.Describe("a/app.pcap", "lb.pcap"); !strings.Contains(d, "app.pcap and lb.pcap share no handshake") || !strings.Contains(d, "--clock-offset app.pcap=SECONDS") {
		t.Errorf("%q", d)
	}
	if d := (Offset{}).Describe("app.pcap", "lb.pcap"); d != "" {
		t.Errorf("%q", d)
	}
}
