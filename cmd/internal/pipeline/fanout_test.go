package pipeline

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/proto/tlsrec"
	"github.com/wsdiag/wsdiag/reassembly"
)

// fileFeed stands in for one socket of a fanout group: it reads a whole
// capture and keeps the connections shardOf deals to it.
type fileFeed struct {
	r        *capture.Reader
	shard, n int
	stopped  chan struct{}
	once     sync.Once
}

func (f *fileFeed) Next(asm *reassembly.Assembler) (time.Time, error) {
	for {
		select {
		case <-f.stopped:
			return time.Time{}, io.EOF
		default:
		}
		p, err := f.r.Next()
		if err != nil {
			return time.Time{}, err
		}
		if shardOf(p, f.n) == f.shard {
			asm.Packet(p.Net, p.TCP, p.CI, p.Cut)
			return p.CI.Timestamp, nil
		}
	}
}

func (f *fileFeed) Stop() { f.once.Do(func() { close(f.stopped) }) }

// responses counts the 101s an Observer is shown.
type responses struct{ upgraded, ends int }

func (o *responses) Response(r *reassembly.Response) {
	if r.Status == 101 {
		o.upgraded++
	}
}
func (o *responses) ConnEnd(*reassembly.ConnEnd) { o.ends++ }

// fanoutJudge runs a capture through a Fanout of n feeds.
func fanoutJudge(t *testing.T, n int, name string, keys *tlsrec.KeyLog) (map[analyze.Code]int, *responses, reassembly.Stats) {
	t.Helper()
	var feeds []Feed
	for i := 0; i < n; i++ {
		r, err := capture.Open(filepath.Join(captures, name))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		feeds = append(feeds, &fileFeed{r: r, shard: i, n: n, stopped: make(chan struct{})})
	}
	got := map[analyze.Code]int{}
	opt := analyze.DefaultOptions
	opt.WaitSession = true
	an := analyze.New(opt, func(v *analyze.Verdict) {
		if v.StatusClient == 101 || v.Code != analyze.OK {
			got[v.Code]++
		}
	})
	ropt := reassembly.DefaultOptions
	ropt.KeyLog = keys
	obs := &responses{}
	fan := NewFanout(feeds, ropt, Config{})
	if err := fan.Run(an, Hooks{Observer: obs}); err != nil {
		t.Fatal(err)
	}
	an.Finish()
	return got, obs, fan.Stats()
}

// TestFanoutVerdicts: connections dealt over feeds, each with its own
// Assembler, still pair across feeds, and the observer sees every event.
func TestFanoutVerdicts(t *testing.T) {
	for _, n := range []int{1, 3} {
		got, obs, st := fanoutJudge(t, n, "concurrent-20.pcap", nil)
		if fmt.Sprint(got) != "map[ok:10 upgrade_header_dropped:10]" {
			t.Errorf("%d feeds: %v", n, got)
		}
		if obs.upgraded != 20 || obs.ends == 0 || st.Connections == 0 || st.Open != 0 {
			t.Errorf("%d feeds: observer saw %d 101s and %d ends; %d connections, %d open at the end", n, obs.upgraded, obs.ends, st.Connections, st.Open)
		}
	}
}

// TestFanoutTLS: with an observer (live's metrics) the TLS events still
// reach the analyzer: the decrypted client leg gets its own 101.
func TestFanoutTLS(t *testing.T) {
	f, err := os.Open(filepath.Join(captures, "tls-13-aesgcm.keylog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys, err := tlsrec.ParseKeyLog(f)
	if err != nil {
		t.Fatal(err)
	}
	got, obs, _ := fanoutJudge(t, 2, "tls-13-aesgcm.pcap", keys)
	if fmt.Sprint(got) != "map[ok:1]" || obs.upgraded != 2 {
		t.Errorf("verdicts %v (counting ok only with a 101 to the client), observer saw %d 101s", got, obs.upgraded)
	}
}

// TestFanoutStop: a hook that stops ends every feed before its input ends.
func TestFanoutStop(t *testing.T) {
	r, err := capture.Open(filepath.Join(captures, "concurrent-20.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	feed := &fileFeed{r: r, n: 1, stopped: make(chan struct{})}
	an := analyze.New(analyze.DefaultOptions, func(*analyze.Verdict) {})
	ticks := 0
	err = NewFanout([]Feed{feed}, reassembly.DefaultOptions, Config{}).Run(an, Hooks{Tick: func(time.Time) bool { ticks++; return true }})
	read := r.Packets
	for _, err := r.Next(); err == nil; _, err = r.Next() {
	}
	if err != nil || ticks == 0 || read == 0 || read == r.Packets {
		t.Errorf("error %v, %d ticks, %d of %d packets read", err, ticks, read, r.Packets)
	}
}
