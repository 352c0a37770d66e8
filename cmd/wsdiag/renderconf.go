package main

import (
	"fmt"

	"github.com/wsdiag/wsdiag/analyze"
)

// errorLog shows the proxy's own error-log lines of the attempt, or else
// the line the verdict expects it to log.
func (t *textRenderer) errorLog(v *analyze.Verdict, ind string) {
	if len(v.ErrorLogLines) == 0 {
		if v.ErrorLog != "" {
			fmt.Fprintln(t.w, ind+"error log: "+v.ErrorLog)
		}
		return
	}
	fmt.Fprintln(t.w, ind+"error log:")
	for _, l := range v.ErrorLogLines {
		fmt.Fprintln(t.w, ind+"  "+l)
	}
}

// ConfigLine is where in the proxy's configuration an attempt was served.
type ConfigLine struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Block    string   `json:"block"`
	Server   string   `json:"server,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

func configLine(b *analyze.ConfigBlock) *ConfigLine {
	if b == nil {
		return nil
	}
	return &ConfigLine{File: b.File, Line: b.Line, Block: b.Block, Server: b.Server, Problems: b.Problems}
}
