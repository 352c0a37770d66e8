package main

import (
	"fmt"
	"io"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/visible"
)

func cmdCodes(out io.Writer) int {
	w := visible.NewWriter(out) // the one rule of every text output
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
