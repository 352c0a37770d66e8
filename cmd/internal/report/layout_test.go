package report

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestScriptUsesLayout holds report.js to the layouts Go writes, without a
// browser: every field the script names (R.evidence, LT.clientEnd, …) is
// a field of the array it reads, and every key it reads of the index (X,
// index) or of the details' first line (head) is one the page carries.
func TestScriptUsesLayout(t *testing.T) {
	tables := map[string][]string{"R": theLayout.Record, "LG": theLayout.Leg, "LT": theLayout.LegTimes,
		"SS": theLayout.Session, "CN": theLayout.Connect, "CF": theLayout.Code}
	used := map[string]int{}
	for _, m := range regexp.MustCompile(`\b(R|LG|LT|SS|CN|CF)\.([A-Za-z0-9]+)\b`).FindAllStringSubmatch(script, -1) {
		used[m[1]]++
		if !contains(tables[m[1]], m[2]) {
			t.Errorf("report.js reads %s.%s: no such field in %v", m[1], m[2], tables[m[1]])
		}
	}
	for table := range tables {
		if used[table] == 0 {
			t.Errorf("report.js never reads %s: the test no longer sees how the script indexes it", table)
		}
	}
	// the index's keys, from a page
	r := New(Options{})
	for _, v := range synthVerdicts(3) {
		r.Add(v)
	}
	var page bytes.Buffer
	if err := r.Write(&page); err != nil {
		t.Fatal(err)
	}
	const open = `<script type="application/json" id="wsdiag-index">`
	i := strings.Index(page.String(), open)
	j := strings.Index(page.String()[i:], "</script>")
	var index map[string]json.RawMessage
	if err := json.Unmarshal([]byte(page.String()[i+len(open):i+j]), &index); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\b(?:X|index)\.([A-Za-z0-9]+)\b`).FindAllStringSubmatch(script, -1) {
		if _, ok := index[m[1]]; !ok {
			t.Errorf("report.js reads %s of the index: it has no such key", m[1])
		}
	}
	var got layout
	if err := json.Unmarshal(index["layout"], &got); err != nil || len(got.Record) != len(recordFields) || len(got.LegDeltas) == 0 {
		t.Errorf("the index's layout %s (%v)", index["layout"], err)
	}
	d, _ := detailsOf(t, page.String())
	for _, m := range regexp.MustCompile(`\bhead\.([A-Za-z0-9]+)\b`).FindAllStringSubmatch(script, -1) {
		if _, ok := d[m[1]]; !ok {
			t.Errorf("report.js reads %s of the details' first line: it has no such key", m[1])
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
