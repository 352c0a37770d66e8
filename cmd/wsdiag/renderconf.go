package main

import (
	"strings"

	"github.com/wsdiag/wsdiag/analyze"
)

// errorLog shows the lines of the proxy's error log (--error-log) that
// are about the attempt, or else the line nginx writes for what the
// verdict found, labelled as such: it was not read from any log.
func (t *textRenderer) errorLog(v *analyze.Verdict, ind string) {
	if len(v.ErrorLogLines) == 0 {
		if l := wouldLog(v); l != "" {
			t.line(quoted(ind+"nginx would log: ", l))
		}
		return
	}
	t.text(ind + "error log:")
	for _, l := range v.ErrorLogLines {
		t.line(quoted(ind+"  ", l))
	}
}

// wouldLog is the line nginx writes for the verdict's code (nginx's own
// wording), unless the proxy is known to be another product.
func wouldLog(v *analyze.Verdict) string {
	if p := strings.ToLower(v.ProxyProduct); p != "" && !strings.HasPrefix(p, "nginx") {
		return ""
	}
	return v.ErrorLog
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
