package main

import (
	"github.com/wsdiag/wsdiag/analyze"
)

// errorLog shows the lines of the proxy's error log (--error-log) that
// are about the attempt, or else the line nginx writes for what the
// verdict found, labelled as such: it was not read from any log.
func (t *textRenderer) errorLog(v *analyze.Verdict, ind string) {
	if len(v.ErrorLogLines) == 0 {
		if l := v.NginxWouldLog(); l != "" {
			t.line(quoted(ind+"nginx would log: ", l))
		}
		return
	}
	t.text(ind + "error log:")
	for _, l := range v.ErrorLogLines {
		t.line(quoted(ind+"  ", l))
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
