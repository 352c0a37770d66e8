package main

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/wsdiag/wsdiag/analyze"
)

// encodingJSON is the reference: what writeLine (encoding/json, then
// visible.JSON) writes.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := writeLine(&buf, &lineBuf{}, v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// viewedVerdicts reads a capture as `wsdiag read ARGS` does and returns the
// verdicts as the views get them (with what the proxy's files add).
func viewedVerdicts(t *testing.T, args []string) []*analyze.Verdict {
	t.Helper()
	e := &env{stdout: io.Discard, stderr: io.Discard, log: newLogger("text", io.Discard)}
	src := &readSource{}
	s, err := assemble(e, append([]string{"--progress", "never"}, args...), src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.release()
	if err := s.start(src); err != nil {
		t.Fatal(err)
	}
	var vs []*analyze.Verdict
	s.consumers = append(s.consumers, func(v *analyze.Verdict) { vs = append(vs, v) })
	if err := src.run(s); err != nil {
		t.Fatal(err)
	}
	s.an.Finish()
	s.end(src)
	return vs
}

// TestVerdictLineJSON: on every capture in testdata/captures, the verdict
// line's encoder writes what encoding/json writes, byte for byte, with
// and without -vv's headers, secrets shown or not.
func TestVerdictLineJSON(t *testing.T) {
	n := 0
	for name, args := range captureFlags(t) {
		for _, v := range viewedVerdicts(t, args) {
			for _, headers := range []bool{false, true} {
				for _, secrets := range []bool{false, true} {
					l := verdictLine(v, headers, secrets)
					want := encodingJSON(t, l)
					if got := l.appendJSON(nil); !bytes.Equal(got, want) {
						t.Fatalf("%s (headers %v, secrets %v):\n got %s\nwant %s", name, headers, secrets, got, want)
					}
					n++
				}
			}
		}
	}
	if n < 4*300 {
		t.Errorf("only %d lines compared", n/4)
	}
}

// TestVerdictLineJSONRandom: random lines, every field set or not, strings
// of every kind of byte (controls, quotes, invalid UTF-8, U+2028, C1 and
// bidi controls), floats from tiny to huge.
func TestVerdictLineJSONRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		l := randomLine(rnd)
		want := encodingJSON(t, l)
		if got := l.appendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("line %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestRandomLineCoversEveryField: the random lines set every field of
// the schema, so a field added to VerdictLine and not to its encoder
// fails TestVerdictLineJSONRandom.
func TestRandomLineCoversEveryField(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	set := map[string]bool{}
	var mark func(prefix string, v reflect.Value)
	mark = func(prefix string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			name := prefix + v.Type().Field(i).Name
			if !f.IsZero() {
				set[name] = true
			}
			switch {
			case f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.Struct:
				mark(name+".", f.Elem())
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
				for k := 0; k < f.Len(); k++ {
					mark(name+".", f.Index(k))
				}
			}
		}
	}
	for i := 0; i < 200; i++ {
		mark("", reflect.ValueOf(randomLine(rnd)).Elem())
	}
	var all func(prefix string, t reflect.Type)
	var missing []string
	all = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !set[prefix+f.Name] {
				missing = append(missing, prefix+f.Name)
			}
			switch {
			case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
				all(prefix+f.Name+".", f.Type.Elem())
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				all(prefix+f.Name+".", f.Type.Elem())
			}
		}
	}
	all("", reflect.TypeFor[VerdictLine]())
	if len(missing) > 0 {
		t.Errorf("randomLine never sets %s", strings.Join(missing, ", "))
	}
}

// FuzzJSONString: any string is escaped as writeLine escapes it.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "</script>&", "\x00\x1f\x7f\b\f\n\r\t", "\xff\xfe", "\u2028\u2029", "é漢🙂", "\u0085\u202e\u2066", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := encodingJSON(t, s)
		if got := append(appendJSONString(nil, s), '\n'); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

// randomString mixes the bytes and characters JSON escaping treats apart.
func randomString(rnd *rand.Rand) string {
	pieces := []string{"a", "Z", " ", "<", ">", "&", "\"", "\\", "/", "\x00", "\x01", "\x1f", "\x7f", "\b", "\f", "\n", "\r", "\t",
		"\x80", "\xff", "\xc3", "\xe2\x80", "é", "漢", "🙂", "\u2028", "\u2029", "\u0085", "\u009b", "\u202e", "\u2066", "\ufffd", "\xed\xa0\x80",
		"GET /ws HTTP/1.1", "Upgrade: websocket"}
	var b strings.Builder
	for n := rnd.IntN(12); n > 0; n-- {
		b.WriteString(pieces[rnd.IntN(len(pieces))])
	}
	return b.String()
}

func randomStrings(rnd *rand.Rand) []string {
	switch rnd.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+rnd.IntN(4))
	for i := range out {
		out[i] = randomString(rnd)
	}
	return out
}

func randomFloat(rnd *rand.Rand) float64 {
	switch rnd.IntN(6) {
	case 0:
		return 0
	case 1:
		return round3(rnd.Float64() * 1000)
	case 2:
		return rnd.Float64() * 1e-7
	case 3:
		return rnd.Float64() * 1e25
	case 4:
		return -rnd.Float64() * math.Pow(10, float64(rnd.IntN(40)-20))
	}
	return float64(rnd.IntN(100000))
}

func randomLine(rnd *rand.Rand) *VerdictLine {
	str := func() string {
		if rnd.IntN(3) == 0 {
			return ""
		}
		return randomString(rnd)
	}
	strp := func() *string {
		if rnd.IntN(3) == 0 {
			return nil
		}
		s := randomString(rnd)
		return &s
	}
	intp := func() *int {
		if rnd.IntN(3) == 0 {
			return nil
		}
		n := rnd.IntN(1000) - 100
		return &n
	}
	l := &VerdictLine{Type: str(), TS: str(), Code: str(), Severity: str(), Hop: str(), Findings: randomStrings(rnd),
		Client: strp(), Proxy: strp(), Backend: strp(), Path: str(), StatusBackend: intp(), StatusClient: intp(),
		PairConfidence: str(), Evidence: randomStrings(rnd), Fix: str(), ErrorLogExpected: str(), ErrorLog: randomStrings(rnd),
		ProxyProduct: str()}
	if rnd.IntN(2) == 0 {
		l.Config = &ConfigLine{File: str(), Line: rnd.IntN(5000) - 10, Block: str(), Server: str(), Problems: randomStrings(rnd)}
	}
	if rnd.IntN(4) > 0 {
		l.Legs = make([]LegLine, rnd.IntN(4))
		for i := range l.Legs {
			l.Legs[i] = LegLine{Client: str(), Server: str(), Request: str(), Response: str(),
				RequestHeaders: randomStrings(rnd), ResponseHeaders: randomStrings(rnd), Proto: str()}
		}
	}
	if rnd.IntN(2) == 0 {
		s := &SessionLine{DurationS: randomFloat(rnd), FramesC2S: rnd.Uint64(), FramesS2C: rnd.Uint64() >> rnd.IntN(64),
			BytesC2S: rnd.Uint64() >> rnd.IntN(64), BytesS2C: rnd.Uint64(), LongestSilenceS: randomFloat(rnd),
			Pings: rnd.Uint32(), Open: rnd.IntN(2) == 0, ClosedBy: strp(), CloseReason: str()}
		if rnd.IntN(2) == 0 {
			c := uint16(rnd.Uint32())
			s.CloseCode = &c
		}
		l.Session = s
	}
	return l
}
