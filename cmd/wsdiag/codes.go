package main

import (
	"fmt"
	"io"

	"github.com/wsdiag/wsdiag/analyze"
)

func cmdCodes(w io.Writer) int {
	width := 0
	for _, c := range analyze.Codes {
		width = max(width, len(c))
	}
	for _, c := range analyze.Codes {
		hop, sev := analyze.Describe(c)
		fmt.Fprintf(w, "%-*s %-8s %-6s %s\n", width, c, hop, sev, analyze.Summary(c))
	}
	return exitOK
}
