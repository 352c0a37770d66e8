package main

import (
	"fmt"
	"io"

	"github.com/wsdiag/wsdiag/analyze"
)

func cmdCodes(w io.Writer) int {
	for _, c := range analyze.Codes {
		hop, sev := analyze.Describe(c)
		fmt.Fprintf(w, "%-24s %-8s %-6s %s\n", c, hop, sev, analyze.Summary(c))
	}
	return exitOK
}
