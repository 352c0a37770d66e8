package tlsplain

import (
	"sync"
	"time"

	"github.com/wsdiag/wsdiag/capture"
)

// Source reads a Probe on a goroutine of its own and hands its plaintext
// to a capture loop in time order with the packets: the loop calls Due
// with the time of the packet it is about to feed (or, when no packet
// comes, the time before which every packet has arrived), and gets the
// plaintext of every call that returned before it. A proxy's SSL_read
// returns after the packets it read arrived, its SSL_write before the
// connection's FIN: fed this way, a connection's plaintext comes after its
// opening and before its end, as decrypted bytes would.
//
// Due waits (a few milliseconds at most) until the reader has read every
// call that returned before the packet: the programs wake the reader only
// when the ring fills, and it otherwise looks every poll.
//
// The queue between the two is bounded (slots of at most MaxChunk bytes,
// their buffers reused): when the capture loop falls behind, the reader
// waits and the probes' ring fills, whose losses show as gaps.
type Source struct {
	p *Probe

	mu      sync.Mutex
	notFull sync.Cond
	slots   []slot
	head, n int
	// caught: every call that returned before it is in the queue (or
	// was delivered); newest is the time of the last piece queued.
	caught, newest time.Time
	closed         bool
	readErr        error
	// more is signalled when the reader has queued a piece or caught up.
	more chan struct{}
	done chan struct{}
}

type slot struct {
	pt  capture.Plaintext
	buf []byte
}

// DefaultQueue is the number of pieces a Source holds (at most 16 MiB).
const DefaultQueue = 1024

// maxWait bounds how long Due waits for the reader.
const maxWait = 4 * poll

// NewSource starts reading p; queue bounds the pieces waiting (0:
// DefaultQueue).
func NewSource(p *Probe, queue int) *Source {
	if queue <= 0 {
		queue = DefaultQueue
	}
	s := &Source{p: p, slots: make([]slot, queue), more: make(chan struct{}, 1), done: make(chan struct{})}
	s.notFull.L = &s.mu
	go s.read()
	return s
}

func (s *Source) signal() {
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *Source) read() {
	defer close(s.done)
	defer s.signal()
	var r Record
	for {
		err := s.p.Read(&r)
		s.mu.Lock()
		switch {
		case err == ErrEmpty:
			// A record is stamped microseconds before it is in the
			// ring: a millisecond's margin.
			if c := s.p.Caught().Add(-time.Millisecond); c.After(s.caught) {
				s.caught = c
			}
			s.mu.Unlock()
			s.signal()
			continue
		case err != nil:
			if err != ErrClosed {
				s.readErr = err
			}
			s.closed = true
			s.notFull.Broadcast()
			s.mu.Unlock()
			return
		}
		for s.n == len(s.slots) && !s.closed {
			s.notFull.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		sl := &s.slots[(s.head+s.n)%len(s.slots)]
		sl.buf = append(sl.buf[:0], r.Data...)
		sl.pt = capture.Plaintext{Time: s.p.Time(&r), Src: r.Src(), Dst: r.Dst(), Off: uint32(r.Off), Start: r.Start,
			End: r.Kind == KindEnd, Data: sl.buf}
		if sl.pt.Time.After(s.newest) {
			s.newest = sl.pt.Time
		}
		s.n++
		s.mu.Unlock()
		s.signal()
	}
}

// Due calls fn with every piece whose call returned at or before upTo, in
// order, once the reader has read that far. The piece is valid during the
// call.
func (s *Source) Due(upTo time.Time, fn func(*capture.Plaintext)) {
	var timer *time.Timer
	s.mu.Lock()
	for {
		for s.n > 0 {
			sl := &s.slots[s.head]
			if sl.pt.Time.After(upTo) {
				break
			}
			// fn runs with the lock held: the reader only appends, and
			// waits for room when the queue is full.
			fn(&sl.pt)
			sl.pt = capture.Plaintext{}
			s.head = (s.head + 1) % len(s.slots)
			s.n--
			s.notFull.Signal()
		}
		if s.closed || !s.caught.Before(upTo) || s.newest.After(upTo) {
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(maxWait)
			defer timer.Stop()
		}
		select {
		case <-s.more:
		case <-timer.C:
			return // the reader is behind: go on without it
		}
		s.mu.Lock()
	}
}

// Err is the error that ended the reading, if any.
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readErr
}

// Close stops the reading (the Probe stays open: close it after).
func (s *Source) Close() {
	s.mu.Lock()
	s.closed = true
	s.notFull.Broadcast()
	s.mu.Unlock()
}
