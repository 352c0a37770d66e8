package pipeline

import (
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/reassembly"
)

// Captures from two hosts (a load balancer's and an app host's) have
// clocks that disagree, often by seconds: merged as they are, a leg seems
// to start before the request that caused it and nothing pairs. What the
// files share tells the offset: the same connection seen on both hosts
// (one packet, two clocks), or else the same Sec-WebSocket-Key relayed
// from hop to hop (a proxy's latency apart). Each file's offset is
// estimated against the first file's clock and taken off its timestamps
// (Pump, PumpOptions.Offsets).

// keyedRequest is a handshake request of one file: its key, its
// connection and when it started.
type keyedRequest struct {
	key            string
	client, server netip.AddrPort
	at             time.Time
	answered       time.Time // its response's start (zero: none seen)
}

// keySink collects a file's keyed requests (at most maxKeyed) and when
// they were answered.
type keySink struct {
	reqs []keyedRequest
	idx  map[*reassembly.Request]int
}

const maxKeyed = 2000

func (k *keySink) Request(r *reassembly.Request) {
	if v, ok := r.Headers.Get("Sec-WebSocket-Key"); ok && len(k.reqs) < maxKeyed {
		if k.idx == nil {
			k.idx = map[*reassembly.Request]int{}
		}
		k.idx[r] = len(k.reqs)
		k.reqs = append(k.reqs, keyedRequest{key: v, client: r.Client, server: r.Server, at: r.Start})
	}
}

func (k *keySink) Response(r *reassembly.Response) {
	if i, ok := k.idx[r.Request]; ok && k.reqs[i].answered.IsZero() {
		k.reqs[i].answered = r.Start
	}
}
func (*keySink) ConnEnd(*reassembly.ConnEnd) {}

// span is the first and last packet time of what was read of a file.
type span struct{ first, last time.Time }

func (a span) overlaps(b span) bool { return !a.first.After(b.last) && !b.first.After(a.last) }

// keyedRequests reads a capture for its keyed requests.
func keyedRequests(r *capture.Reader, opt reassembly.Options) ([]keyedRequest, span, error) {
	sink := &keySink{}
	asm := reassembly.New(sink, opt)
	var sp span
	for len(sink.reqs) < maxKeyed {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sink.reqs, sp, err
		}
		if t := p.CI.Timestamp; sp.first.IsZero() || t.Before(sp.first) {
			sp.first = t
		}
		if t := p.CI.Timestamp; t.After(sp.last) {
			sp.last = t
		}
		asm.PacketVia(p.Net, p.TCP, p.CI, p.Cut, &p.Tunnel)
	}
	asm.Close()
	return sink.reqs, sp, nil
}

// Offset is one file's clock against the first file's.
type Offset struct {
	// By is how far the file's clock is ahead (negative: behind).
	By time.Duration
	// Known: given by hand or estimated; Basis says from what.
	Known bool
	Basis string
	// overlap: the files' times overlap (two hosts' captures of one
	// run, not one host's rotated files).
	overlap bool
}

// minOffset is below what an estimate is not applied: two hosts' clocks
// within a millisecond are as good as one for pairing.
const minOffset = time.Millisecond

// EstimateOffsets reads files[1:] and files[0] for the handshakes they
// share and returns each file's offset (files[0]'s is zero). given holds
// offsets set by hand, by index; those files are not estimated. open
// opens a file afresh (the readers of the run are not touched).
func EstimateOffsets(files []string, given map[int]time.Duration, open func(string) (*capture.Reader, error), opt reassembly.Options) ([]Offset, error) {
	out := make([]Offset, len(files))
	for i, d := range given {
		out[i] = Offset{By: d, Known: true, Basis: "--clock-offset"}
	}
	if len(files) < 2 {
		return out, nil
	}
	read := func(name string) ([]keyedRequest, span, error) {
		r, err := open(name)
		if err != nil {
			return nil, span{}, err
		}
		defer r.Close()
		return keyedRequests(r, opt)
	}
	ref, refSpan, err := read(files[0])
	if err != nil {
		return out, err
	}
	for i := 1; i < len(files); i++ {
		if out[i].Known {
			continue
		}
		reqs, sp, err := read(files[i])
		if err != nil {
			return out, err
		}
		out[i] = estimate(ref, reqs)
		out[i].overlap = sp.overlaps(refSpan)
	}
	return out, nil
}

// estimate is the median difference between the two files' times of what
// they share: the same connections when they share any. Otherwise the
// same key on two hops a proxy apart: its request reaches the later hop
// a little after the earlier one, and the answer comes back a little
// before, so the middle of the two differences is the offset; of the
// key's legs in each file the two closest hops are taken (the smallest
// spread between the two differences).
func estimate(ref, reqs []keyedRequest) Offset {
	var same, keyed []time.Duration
	byKey := map[string][]keyedRequest{}
	for _, r := range ref {
		byKey[r.key] = append(byKey[r.key], r)
	}
	conns := map[[2]netip.AddrPort]bool{}
	best := map[string][2]time.Duration{} // key: spread, middle
	for _, r := range reqs {
		for _, q := range byKey[r.key] {
			d := r.at.Sub(q.at)
			if q.client == r.client && q.server == r.server {
				same = append(same, d)
				conns[[2]netip.AddrPort{r.client, r.server}] = true
				continue
			}
			mid, spread := d, time.Duration(1<<62)
			if !r.answered.IsZero() && !q.answered.IsZero() {
				a := r.answered.Sub(q.answered)
				mid, spread = (d+a)/2, (d - a).Abs()
			}
			if b, ok := best[r.key]; !ok || spread < b[0] {
				best[r.key] = [2]time.Duration{spread, mid}
			}
		}
	}
	for _, b := range best {
		keyed = append(keyed, b[1])
	}
	switch {
	case len(same) > 0:
		return Offset{By: median(same), Known: true, Basis: strconv.Itoa(len(conns)) + " connection(s) in both files"}
	case len(keyed) > 0:
		return Offset{By: median(keyed), Known: true, Basis: strconv.Itoa(len(keyed)) + " handshake key(s) relayed between them"}
	}
	return Offset{}
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// Applied reports whether the offset shifts the file's timestamps.
func (o Offset) Applied() bool {
	return o.Known && (o.Basis == "--clock-offset" || o.By >= minOffset || o.By <= -minOffset)
}

// Describe says what was found of file's clock against ref's, "" when
// there is nothing to say (the clocks agree).
func (o Offset) Describe(file, ref string) string {
	file, ref = filepath.Base(file), filepath.Base(ref)
	if !o.Known && !o.overlap {
		return "" // one after the other: rotated files of one host
	}
	if !o.Known {
		return fmt.Sprintf("%s and %s share no handshake: their clocks cannot be compared, so timing across them may mislead (give --clock-offset %s=SECONDS if the hosts' clocks differ)", file, ref, file)
	}
	if !o.Applied() {
		return ""
	}
	how := "ahead of"
	by := o.By
	if by < 0 {
		how, by = "behind", -by
	}
	s := strconv.FormatFloat(by.Seconds(), 'f', 2, 64)
	return fmt.Sprintf("%s's clock is %s s %s %s's (%s); shifted", file, s, how, ref, o.Basis)
}

// ParseClockOffsets parses --clock-offset values FILE=SECONDS against the
// files read: the index of each file named, and how far its clock is
// ahead of the first file's.
func ParseClockOffsets(vals, files []string) (map[int]time.Duration, error) {
	out := map[int]time.Duration{}
	for _, v := range vals {
		name, secs, ok := strings.Cut(v, "=")
		if i := strings.LastIndexByte(v, '='); i >= 0 {
			name, secs, ok = v[:i], v[i+1:], true
		}
		f, err := strconv.ParseFloat(secs, 64)
		if !ok || err != nil || f != f || f > 1e9 || f < -1e9 {
			return nil, fmt.Errorf("--clock-offset %q: want FILE=SECONDS (how far FILE's clock is ahead of the first file's, e.g. app.pcap=7.5 or app.pcap=-4)", v)
		}
		i := slices.Index(files, name)
		if i < 0 {
			return nil, fmt.Errorf("--clock-offset %q: %s is not one of the files read", v, name)
		}
		if i == 0 {
			return nil, fmt.Errorf("--clock-offset %q: %s is the first file, whose clock the others are measured against", v, name)
		}
		out[i] = time.Duration(f * float64(time.Second))
	}
	return out, nil
}
