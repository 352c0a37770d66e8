package main

import (
	"encoding/json"
	"io"

	"github.com/rs/zerolog"

	"github.com/wsdiag/wsdiag/cmd/internal/visible"
)

// newLogger writes wsdiag's own warnings and errors to w: as JSON lines
// (--log-format json) or as "wsdiag: warning: …" lines. Either way what
// others wrote (a file name, a host, a path quoted in a warning) is shown
// with its control and bidi characters escaped (visible).
func newLogger(format string, w io.Writer) zerolog.Logger {
	if format == "json" {
		return zerolog.New(&jsonLog{w: w}).With().Timestamp().Logger()
	}
	return zerolog.New(textLog{w})
}

// jsonLog writes zerolog's JSON lines with the DEL, C1 and bidi controls
// that JSON lets through raw escaped.
type jsonLog struct {
	w    io.Writer
	safe []byte
}

func (j *jsonLog) Write(p []byte) (int, error) {
	j.safe = visible.JSON(j.safe[:0], p)
	if _, err := j.w.Write(j.safe); err != nil {
		return 0, err
	}
	return len(p), nil
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
	if _, err := io.WriteString(t.w, prefix+visible.String(e.Message)+"\n"); err != nil {
		return 0, err
	}
	return len(p), nil
}
