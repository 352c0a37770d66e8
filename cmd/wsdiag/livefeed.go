package main

import (
	"errors"
	"sync"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/capture"
	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
	"github.com/wsdiag/wsdiag/reassembly"
)

// socketFeed is one capture socket of live's fanout group as a
// pipeline.Feed: each TCP segment goes to the worker's Assembler, and the
// raw packet to -w. With --tls-plaintext (plain), the proxies' plaintext
// goes to the Assembler too, each piece before the first packet captured
// after its call returned (plaintext.go).
type socketFeed struct {
	l     *capture.Live
	tap   *liveTap
	plain *plainInput
	cuts  pipeline.Cuts // read once the worker has ended
}

func (f *socketFeed) Next(asm *reassembly.Assembler) (time.Time, error) {
	p, err := f.l.Next()
	switch {
	case err == nil:
		f.plain.due(p.CI.Timestamp, asm, f.tap)
		f.cuts.Count(p)
		f.tap.packet(p, f.l.Raw())
		asm.PacketVia(p.Net, p.TCP, p.CI, p.Cut, &p.Tunnel)
		return p.CI.Timestamp, nil
	case errors.Is(err, capture.ErrTimeout):
		now := time.Now()
		f.plain.due(now.Add(-plainSettle), asm, f.tap)
		asm.Flush(now)
		return now, nil
	}
	f.plain.due(time.Now(), asm, f.tap)
	return time.Time{}, err // io.EOF once closed
}

// Stop closes the socket: Next returns io.EOF within its timeout.
func (f *socketFeed) Stop() { f.l.Close() }

// liveTap is -w and --write-failing, shared by the workers.
type liveTap struct {
	mu   sync.Mutex
	pw   *pcapOut
	ring *packetRing
}

func (t *liveTap) packet(p *capture.Packet, raw []byte) {
	if t.pw == nil {
		return
	}
	t.mu.Lock()
	if t.ring != nil {
		t.ring.add(p, raw)
	} else {
		t.pw.write(p.CI, raw)
	}
	t.mu.Unlock()
}

// plaintext writes a piece of TLS plaintext beside the packets.
func (t *liveTap) plaintext(pt *capture.Plaintext) {
	if t.pw == nil {
		return
	}
	t.mu.Lock()
	if t.ring != nil {
		t.ring.addPlain(pt)
	} else {
		t.pw.writePlain(pt)
	}
	t.mu.Unlock()
}

// verdict is --write-failing's consumer: the packets of an attempt that
// failed are written once its verdict is known.
func (t *liveTap) verdict(v *analyze.Verdict) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring.take(v, !v.OK(), func(ci gopacket.CaptureInfo, b []byte) { t.pw.write(ci, b) }, t.pw.writePlain)
}

func (t *liveTap) failed() bool {
	if t.pw == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pw.err != nil
}

func (t *liveTap) flush() {
	if t.pw != nil {
		t.mu.Lock()
		t.pw.flush()
		t.mu.Unlock()
	}
}

// sockFigures are what live's sockets read, summed over them.
type sockFigures struct {
	// packets the kernel filter accepted, of them dropped for lack of
	// ring space; read from the ring, of them TCP segments
	accepted, kernelDrops, received, tcp uint64
}

// sockStats sums the sockets' counters; safe while the workers run.
func sockStats(socks []*capture.Live) sockFigures {
	var f sockFigures
	for _, l := range socks {
		x := l.Stats()
		f.accepted += x.Packets
		f.received += x.Received
		f.tcp += x.TCP
		f.kernelDrops += x.KernelDrops
	}
	return f
}
