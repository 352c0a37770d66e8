package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The tests read --format json through the types the renderer encodes
// (jsonline.go), so a field renamed there fails here.

// jsonVerdict is the stable JSON shape scripts rely on.
type jsonVerdict = VerdictLine

// jsonOutput is one run's JSON lines, decoded.
type jsonOutput struct {
	verdicts  []VerdictLine // "verdict" lines, in order
	exchanges []VerdictLine // "exchange" lines (--all), in order
	events    []EventLine
	summary   SummaryLine
	types     []string // every line's type, in order
}

// decodeOutput decodes JSON lines; a line that is not one fails the test.
func decodeOutput(t testing.TB, out []byte) jsonOutput {
	t.Helper()
	var o jsonOutput
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var typ struct{ Type string }
		if err := json.Unmarshal(sc.Bytes(), &typ); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		o.types = append(o.types, typ.Type)
		var err error
		switch typ.Type {
		case "verdict":
			var v VerdictLine
			err = json.Unmarshal(sc.Bytes(), &v)
			o.verdicts = append(o.verdicts, v)
		case "exchange":
			var v VerdictLine
			err = json.Unmarshal(sc.Bytes(), &v)
			o.exchanges = append(o.exchanges, v)
		case "event":
			var e EventLine
			err = json.Unmarshal(sc.Bytes(), &e)
			o.events = append(o.events, e)
		case "summary":
			err = json.Unmarshal(sc.Bytes(), &o.summary)
		}
		if err != nil {
			t.Fatalf("bad %s line %q: %v", typ.Type, sc.Text(), err)
		}
	}
	return o
}

// decodeVerdictLine decodes a verdict line; ok is false for other lines.
func decodeVerdictLine(t *testing.T, line string) (v VerdictLine, ok bool) {
	t.Helper()
	if !strings.Contains(line, `"type":"verdict"`) {
		return v, false
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("bad JSON line %q: %v", line, err)
	}
	return v, v.Type == "verdict"
}

// decodeSummaryLine decodes the summary line; ok is false for other lines.
func decodeSummaryLine(t *testing.T, line string) (s SummaryLine, ok bool) {
	t.Helper()
	if !strings.Contains(line, `"type":"summary"`) {
		return s, false
	}
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("bad JSON line %q: %v", line, err)
	}
	return s, s.Type == "summary"
}

// readJSON runs read --format json with args.
func readJSON(t *testing.T, args ...string) ([]VerdictLine, SummaryLine, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"read", "--format", "json"}, args...), nil, &out, &errb)
	o := decodeOutput(t, out.Bytes())
	return o.verdicts, o.summary, code, errb.String()
}

// TestSummaryNotes: a count tagged with a note is a sentence of the text
// summary and the report when not zero; every note tag is on a count and
// has its noun.
func TestSummaryNotes(t *testing.T) {
	s := newSummaryLine()
	if n := s.notes(); len(n) != 0 {
		t.Errorf("notes of an empty summary: %q", n)
	}
	s.NoHandshake = 1
	if n := s.notes(); len(n) != 1 || n[0] != "1 session began before the capture (handshake_not_captured), judged from their frames" {
		t.Errorf("notes %q", n)
	}
	typ := reflect.TypeFor[SummaryLine]()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if tag, ok := f.Tag.Lookup("note"); ok && (f.Type.Kind() != reflect.Uint64 || !strings.Contains(tag, "|")) {
			t.Errorf("%s: a note tag %q on a %s (want noun|sentence on a uint64)", f.Name, tag, f.Type)
		}
	}
}
