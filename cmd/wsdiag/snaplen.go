package main

import (
	"fmt"

	"github.com/wsdiag/wsdiag/cmd/internal/pipeline"
)

// cutWarning names the snap length that cut the capture's packets and the
// fix.
func cutWarning(c pipeline.Cuts, blocks uint64) string {
	return fmt.Sprintf("the capture kept only the first %d bytes of each packet (snap length %d): %d packets were cut, %d HTTP header blocks with them; "+
		"verdicts use what is left and say cannot_tell where the cut took what decides. Capture whole packets: tcpdump -s 0",
		c.Snaplen, c.Snaplen, c.Packets, blocks)
}
