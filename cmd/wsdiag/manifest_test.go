package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The MANIFEST*.tsv files beside the captures are what the generators
// (testdata/gen) say each capture holds: expected_code and expected_hop.
// The golden tests say it again, in Go, and wsdiag says it a third time;
// the tests below fail when any two disagree.

// manifestRow is one capture as its MANIFEST row describes it.
type manifestRow struct {
	manifest, name string
	// codes maps each code to its attempts (0: "code" alone, every
	// attempt has it and the row does not say how many); none: the row
	// says "none", no attempt at all.
	codes map[string]int
	hops  map[string]string
	none  bool
}

func (m manifestRow) String() string { return filepath.Base(m.manifest) + ": " + m.name }

// readManifests parses every MANIFEST*.tsv. expected_code is "none", a
// code, or code=N;code=N…; expected_hop gives one hop per code, in order.
func readManifests(t *testing.T) []manifestRow {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(capturesDir, "MANIFEST*.tsv"))
	if len(files) == 0 {
		t.Fatal("no MANIFEST*.tsv")
	}
	var rows []manifestRow
	for _, m := range files {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(line, "\t")
			if i == 0 {
				if len(f) < 3 || f[1] != "expected_code" || f[2] != "expected_hop" {
					t.Fatalf("%s: header %q", m, line)
				}
				continue
			}
			row, err := parseManifestRow(m, f)
			if err != nil {
				t.Errorf("%s line %d: %v", filepath.Base(m), i+1, err)
				continue
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func parseManifestRow(manifest string, f []string) (manifestRow, error) {
	if len(f) < 3 {
		return manifestRow{}, fmt.Errorf("%d fields, want name, expected_code, expected_hop", len(f))
	}
	row := manifestRow{manifest: manifest, name: f[0], codes: map[string]int{}, hops: map[string]string{}}
	if f[1] == "none" {
		row.none = true
		return row, nil
	}
	codes, hops := strings.Split(f[1], ";"), strings.Split(f[2], ";")
	if len(codes) != len(hops) {
		return row, fmt.Errorf("%s: %d codes and %d hops (one hop per code)", row.name, len(codes), len(hops))
	}
	for i, c := range codes {
		code, count, counted := strings.Cut(c, "=")
		n := 0
		if counted {
			var err error
			if n, err = strconv.Atoi(count); err != nil || n < 1 {
				return row, fmt.Errorf("%s: %q is not code=N", row.name, c)
			}
		} else if len(codes) > 1 {
			return row, fmt.Errorf("%s: %q without a count among several codes", row.name, c)
		}
		row.codes[code], row.hops[code] = n, hops[i]
	}
	return row, nil
}

// agrees says how verdicts (code and hop of each attempt) differ from the
// row; "" when they do not.
func (m manifestRow) agrees(codes map[string]int, hops map[string]map[string]bool) string {
	var diffs []string
	for code, n := range codes {
		want, ok := m.codes[code]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%d %s not in the row", n, code))
		case want != 0 && want != n:
			diffs = append(diffs, fmt.Sprintf("%d %s, the row says %d", n, code, want))
		}
		for hop := range hops[code] {
			if ok && hop != m.hops[code] {
				diffs = append(diffs, fmt.Sprintf("%s at hop %s, the row says %s", code, hop, m.hops[code]))
			}
		}
	}
	for code := range m.codes {
		if codes[code] == 0 {
			diffs = append(diffs, fmt.Sprintf("no %s, which the row names", code))
		}
	}
	if m.none && len(codes) > 0 {
		diffs = append(diffs, "attempts where the row says none")
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// captureOf finds a row's capture and the flags it is read with (its key
// log, when the client wrote one).
func captureOf(t *testing.T, name string) (string, []string) {
	t.Helper()
	var args []string
	if st, err := os.Stat(filepath.Join(capturesDir, name+".keylog")); err == nil && st.Size() > 0 {
		args = append(args, "--keylog", filepath.Join(capturesDir, name+".keylog"))
	}
	for _, ext := range []string{".pcap", ".pcapng", ".pcap.gz"} {
		if _, err := os.Stat(filepath.Join(capturesDir, name+ext)); err == nil {
			return name + ext, append(args, filepath.Join(capturesDir, name+ext))
		}
	}
	t.Fatalf("capture %s: no %s.pcap, .pcapng or .pcap.gz", name, name)
	return "", nil
}

// TestManifestAgreesWithWsdiag: on every capture a MANIFEST lists, wsdiag
// gives the codes, counts and hops its row says.
func TestManifestAgreesWithWsdiag(t *testing.T) {
	for _, m := range readManifests(t) {
		_, args := captureOf(t, m.name)
		vs, _, code, stderr := readJSON(t, append([]string{"--workers", "1"}, args...)...)
		if code == exitTrouble {
			t.Errorf("%s: exit %d: %s", m, code, stderr)
			continue
		}
		codes, hops := map[string]int{}, map[string]map[string]bool{}
		for _, v := range vs {
			codes[v.Code]++
			if hops[v.Code] == nil {
				hops[v.Code] = map[string]bool{}
			}
			hops[v.Code][v.Hop] = true
		}
		if d := m.agrees(codes, hops); d != "" {
			t.Errorf("%s: wsdiag and the MANIFEST row disagree: %s", m, d)
		}
	}
}

// TestManifestAgreesWithGolden: every capture a MANIFEST lists has
// expectations in the golden tests, and they name the codes, counts and
// hops of its row.
func TestManifestAgreesWithGolden(t *testing.T) {
	for _, m := range readManifests(t) {
		file, _ := captureOf(t, m.name)
		var wants []want
		switch {
		case goldenCases[file] != nil:
			wants = goldenCases[file]
		case h2Cases[m.name].keys != nil:
			wants = h2Cases[m.name].keys
		case plaintextWants[m.name] != nil:
			wants = plaintextWants[m.name]
		case tlsCases[m.name].code != "":
			wants = []want{{code: tlsCases[m.name].code, hop: tlsCases[m.name].hop}}
		case strings.HasPrefix(m.name, "tls-conc30-"):
			wants = []want{{code: "ok", hop: "-", n: 20}, {code: "upgrade_header_dropped", hop: "proxy", n: 10}} // TestTLSConcurrentPairing
		case sessionCases[m.name] || m.name == "tls-13-keys-injected":
			continue // held by their own tests, and by TestManifestAgreesWithWsdiag
		default:
			t.Errorf("%s has no expectations in the golden tests", m)
			continue
		}
		codes, hops := map[string]int{}, map[string]map[string]bool{}
		for _, w := range wants {
			n := w.n
			if n == 0 {
				n = m.codes[w.code] // a want without a count: one attempt each
			}
			codes[w.code] += max(n, 1)
			hops[w.code] = map[string]bool{w.hop: true}
		}
		if d := m.agrees(codes, hops); d != "" {
			t.Errorf("%s: the golden expectations and the MANIFEST row disagree: %s", m, d)
		}
	}
}
