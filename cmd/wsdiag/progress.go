package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wsdiag/wsdiag/capture"
)

// progress draws one status line on a terminal's stderr, at most once a
// second; it is only updated every 64 Ki packets, so reading the clock
// costs nothing per packet.
type progress struct {
	w     io.Writer
	total int64 // bytes of all files, 0 when unknown (stdin)
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, files []string) *progress {
	p := &progress{w: w, start: time.Now()}
	for _, f := range files {
		st, err := os.Stat(f)
		if f == "-" || err != nil || !st.Mode().IsRegular() {
			p.total = 0
			break
		}
		p.total += st.Size()
	}
	return p
}

func (p *progress) update(readers []*capture.Reader, attempts uint64) {
	now := time.Now()
	if now.Sub(p.last) < time.Second {
		return
	}
	p.last = now
	var pk, by uint64
	for _, r := range readers {
		pk += r.Packets
		by += r.Bytes
	}
	pct := ""
	if p.total > 0 {
		pct = fmt.Sprintf(" (~%d%%)", min(99, by*100/uint64(p.total)))
	}
	rate := float64(pk) / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "\r\x1b[Kwsdiag: %d packets%s, %.0f packets/s, %d attempts", pk, pct, rate, attempts)
	p.drawn = true
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
