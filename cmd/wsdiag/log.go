package main

import (
	"encoding/json"
	"io"

	"github.com/rs/zerolog"
)

// newLogger writes wsdiag's own warnings and errors to w: as JSON lines
// (--log-format json) or as "wsdiag: warning: …" lines.
func newLogger(format string, w io.Writer) zerolog.Logger {
	if format == "json" {
		return zerolog.New(w).With().Timestamp().Logger()
	}
	return zerolog.New(textLog{w})
}

// textLog turns zerolog's JSON events into one plain line each.
type textLog struct{ w io.Writer }

func (t textLog) Write(p []byte) (int, error) {
	var e struct{ Level, Message string }
	if err := json.Unmarshal(p, &e); err != nil {
		return 0, err
	}
	prefix := "wsdiag: "
	if e.Level == zerolog.LevelWarnValue {
		prefix += "warning: "
	}
	if _, err := io.WriteString(t.w, prefix+e.Message+"\n"); err != nil {
		return 0, err
	}
	return len(p), nil
}
