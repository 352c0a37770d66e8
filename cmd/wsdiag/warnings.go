package main

import (
	"fmt"

	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
)

// The warnings every run gives once its input has ended, from what the
// reassembly, the analyzer and the memory budget counted.

// inputWarnings says what was lost or could not be read, and why.
func (s *session) inputWarnings(end ending) {
	as, st := end.asm, s.an.Stats()
	if as.Evicted > 0 {
		s.warn("%d connections evicted early: more than --max-flows=%d open at once", as.Evicted, s.c.maxFlows)
	}
	if as.QuietEvicted > 0 {
		s.warn("%d connections that carried no HTTP or TLS ended early: more than %d such open at once (a tenth of --max-flows)", as.QuietEvicted, max(100, s.c.maxFlows/10))
	}
	s.mem.warnings(s, as.MemEvicted, st.MemEvicted)
	if st.TLSErrors > 0 {
		why := "wrong or missing keys"
		if end.cuts.Packets > 0 {
			why = "the snap length cut their records, which no key decrypts; or wrong or missing keys"
		}
		s.warn("%d TLS connections could not be decrypted (%s), e.g. %s", st.TLSErrors, why, st.TLSErrorSamples[0])
	}
	if end.cuts.Packets > 0 && (st.CutBlocks > 0 || as.HeaderCuts > 0) { // payloads cut behind whole headers change no verdict
		s.warn("%s", cutWarning(end.cuts, st.CutBlocks))
	}
	if st.Evicted > 0 {
		s.warn("%d exchanges decided before their partner could arrive: more than --max-pending=%d waiting", st.Evicted, s.c.maxPending)
	}
}

// cutWarning names the snap length that cut the capture's packets and the
// fix.
func cutWarning(c pipeline.Cuts, blocks uint64) string {
	return fmt.Sprintf("the capture kept only the first %d bytes of each packet (snap length %d): %d packets were cut, %d HTTP header blocks with them; "+
		"verdicts use what is left and say cannot_tell where the cut took what decides. Capture whole packets: tcpdump -s 0",
		c.Snaplen, c.Snaplen, c.Packets, blocks)
}
