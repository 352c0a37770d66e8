package main

import (
	"fmt"

	"github.com/wsdiag/wsdiag/capture"
)

// cutCount tallies packets a capture's snap length cut (tcpdump -s 96 or
// -s 200, old defaults copied from tutorials), for one warning that names
// the snap length and the fix.
type cutCount struct {
	packets uint64
	snaplen int // the longest captured length of a cut packet: the snap length
}

func (c *cutCount) add(p *capture.Packet) {
	c.packets++
	if n := p.CI.CaptureLength; n > c.snaplen {
		c.snaplen = n
	}
}

func (c *cutCount) warning(blocks uint64) string {
	return fmt.Sprintf("the capture kept only the first %d bytes of each packet (snap length %d): %d packets were cut, %d HTTP header blocks with them; "+
		"verdicts use what is left and say cannot_tell where the cut took what decides. Capture whole packets: tcpdump -s 0",
		c.snaplen, c.snaplen, c.packets, blocks)
}
