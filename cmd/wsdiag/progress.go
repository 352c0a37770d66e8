package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/wsdiag/wsdiag/capture"
)

// statusLine is the one line of progress drawn on a terminal's stderr
// (read's progress, live's figures). Verdicts go to stdout, usually the
// same terminal: whatever is printed while the line is drawn would follow
// it on the same row, so it is cleared first (clear), and drawn again at
// the next update.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

// draw replaces the line with text.
func (l *statusLine) draw(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprint(l.w, "\r\x1b[K"+text)
	l.drawn = true
}

// clear takes the line away, if it is drawn.
func (l *statusLine) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.drawn = false
	}
}

// progress draws read's status line, at most once a second; it is only
// updated every 64 Ki packets, so reading the clock costs nothing per
// packet.
type progress struct {
	line  *statusLine
	total int64 // bytes of all files, 0 when unknown (stdin)
	start time.Time
	last  time.Time
}

func newProgress(line *statusLine, files []string) *progress {
	p := &progress{line: line, start: time.Now()}
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
	p.line.draw(fmt.Sprintf("wsdiag: %d packets%s, %.0f packets/s, %d attempts", pk, pct, rate, attempts))
}

func (p *progress) done() { p.line.clear() }
