package main

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/reassembly"
)

// --max-memory: one byte budget for all the state wsdiag holds. Fixed
// buffers (gopacket's page limit, the batches between workers, the
// --write-failing arena, live's kernel ring) are carved out of it first;
// connections and waiting exchanges share the rest and are evicted, the
// idlest and quiet ones first, when it is reached.

const defaultMaxMemory = "256M"

// memHeadroom is what the Go runtime may use above the budget: its memory
// limit is the budget plus this, so that the collector keeps the heap
// (the state, a quarter more for what the estimates do not see, garbage)
// near the budget.
const memHeadroom = 0

// parseSize reads a size: bytes, or a number with K, M or G (powers of
// 1024; a trailing B or iB is allowed).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mul := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mul = 1 << 10
		case 'M':
			mul = 1 << 20
		case 'G':
			mul = 1 << 30
		}
		if mul > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mul) > 1<<50 {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with K, M or G)", s)
	}
	return int64(v * float64(mul)), nil
}

// memBudget is the budget and the fixed parts taken out of it.
type memBudget struct {
	b        *reassembly.Budget
	ringSize int // --write-failing arena, bytes
}

// pageSize is what gopacket's out-of-order page costs (1900 bytes of data
// and its links).
const pageSize = 2048

// budget parses --max-memory, sets the Go runtime's memory limit from it
// and applies it to the options: workers reassembly goroutines a reader
// deals segments to, ring for --write-failing.
func (c *common) budget(ropt *reassembly.Options, opt *analyze.Options, workers int, ring bool) (*memBudget, error) {
	n, err := parseSize(c.maxMemory)
	if err != nil {
		return nil, fmt.Errorf("--max-memory: %v", err)
	}
	if n < 32<<20 {
		return nil, fmt.Errorf("--max-memory: %s is below 32M", c.maxMemory)
	}
	m := &memBudget{b: reassembly.NewBudget(n)}
	// Out-of-order pages: a sixteenth, at most the default.
	pages := min(int(n/16/pageSize), reassembly.DefaultOptions.MaxPagesTotal)
	ropt.MaxPagesTotal = pages
	ropt.MaxPagesPerConn = min(ropt.MaxPagesPerConn, max(16, pages/16))
	m.b.Add(reassembly.MemPages, int64(pages)*pageSize)
	// The batches between the reader and the workers (shard.go: 8 per
	// worker, 256 KiB of segments each, and their events).
	if workers > 1 {
		m.b.Add(reassembly.MemFixed, int64(workers)*8*320<<10)
	}
	if ring {
		m.ringSize = int(min(64<<20, n/4))
		m.b.Add(reassembly.MemFixed, int64(m.ringSize)+int64(m.ringSize/335)*int64(ringEntrySize))
	}
	ropt.Budget = m.b
	opt.Memory = m.b.Account(reassembly.MemPending)
	debug.SetMemoryLimit(n + memHeadroom)
	return m, nil
}

// warnings adds the summary's warning when state was evicted for the
// budget.
func (m *memBudget) warnings(s *session, conns, exchanges uint64) {
	if m == nil || conns+exchanges == 0 {
		return
	}
	var parts []string
	for k := reassembly.Mem(0); k < reassembly.NumMem; k++ {
		if e := m.b.EvictedBy(k); e > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, e))
		}
	}
	s.warn("--max-memory=%s reached: %d connections and %d waiting exchanges or TLS legs given up early, the idlest first (%.1f MB: %s)",
		s.c.maxMemory, conns, exchanges, float64(m.b.EvictedBytes())/1e6, strings.Join(parts, ", "))
}

// summary fills the summary's memory fields.
func (m *memBudget) summary(sum *SummaryLine) {
	if m == nil || m.b.EvictedBytes() == 0 {
		return
	}
	sum.EvictedBytes = uint64(m.b.EvictedBytes())
	sum.MemEvicted = map[string]uint64{}
	for k := reassembly.Mem(0); k < reassembly.NumMem; k++ {
		if e := m.b.EvictedBy(k); e > 0 {
			sum.MemEvicted[k.String()] = e
		}
	}
}
