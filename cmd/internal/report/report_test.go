package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsdiag/wsdiag/analyze"
	"github.com/wsdiag/wsdiag/cmd/internal/browser"
	"github.com/wsdiag/wsdiag/reassembly"
)

// detailsOf returns the page's embedded details: the header line
// decoded, and the lines of attempts.
func detailsOf(t *testing.T, page string) (map[string]any, []string) {
	t.Helper()
	const open = `<script type="application/json" id="wsdiag-details">`
	i := strings.Index(page, open)
	j := strings.Index(page[i:], "</script>")
	if i < 0 || j < 0 {
		t.Fatal("no details element in the page")
	}
	lines := strings.Split(page[i+len(open):i+j], "\n")
	var d map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &d); err != nil {
		t.Fatalf("details header is not JSON: %v", err)
	}
	for _, l := range lines[1:] {
		var x []any
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("a line of attempts is not JSON: %v", err)
		}
	}
	return d, lines[1:]
}

func TestSecretsRedactedAndEscaped(t *testing.T) {
	v := synthVerdicts(1)[0]
	v.Legs[0].RequestHeaders = append(v.Legs[0].RequestHeaders, reassembly.Header{Name: "Authorization", Value: "Bearer hunter2"},
		reassembly.Header{Name: "X-Evil", Value: "</script><script>alert(1)</script>\u2028\x00\xff"})
	v.Path = "/ws?<b>&amp;"
	for _, show := range []bool{false, true} {
		r := New(Options{ShowSecrets: show, Title: "<t>"})
		r.Add(v)
		var b bytes.Buffer
		if err := r.Write(&b); err != nil {
			t.Fatal(err)
		}
		page := b.String()
		if got := strings.Contains(page, "hunter2"); got != show {
			t.Errorf("show %v: Authorization value in the page: %v", show, got)
		}
		if strings.Contains(page, "session=") != show || strings.Contains(page, "Cookie: [redacted]") == show {
			t.Errorf("show %v: Cookie redaction wrong", show)
		}
		if strings.Contains(page, "alert(1)</script>") || strings.Contains(page, "<b>&amp;") || strings.Contains(page, "<t>") {
			t.Errorf("show %v: markup from the capture reached the page unescaped", show)
		}
		d, _ := detailsOf(t, page)
		found := false
		for _, s := range d["strings"].([]any) {
			// markup decodes back as it was; a NUL and a byte that is not
			// UTF-8 show as visible escapes (as in the text output)
			if s == `X-Evil: </script><script>alert(1)</script>`+"\u2028"+`\x00\xff` {
				found = true
			}
		}
		if !found {
			t.Errorf("show %v: the escaped header does not decode back to itself", show)
		}
	}
}

func TestLargeDataCompressed(t *testing.T) {
	r := New(Options{})
	for _, v := range synthVerdicts(3000) {
		r.Add(v)
	}
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "id=\"wsdiag-details\">gz\n") {
		t.Fatalf("3000 attempts (%d bytes) not compressed", b.Len())
	}
	r = New(Options{})
	for _, v := range synthVerdicts(1200) {
		r.Add(v)
	}
	b.Reset()
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	d, lines := detailsOf(t, b.String())
	if d["chunk"] != float64(detailChunk) || len(lines) != (1200+detailChunk-1)/detailChunk {
		t.Errorf("details: chunk %v, %d lines", d["chunk"], len(lines))
	}
}

func TestMaxAttemptsKeepsLatest(t *testing.T) {
	r := New(Options{MaxAttempts: 10})
	vs := synthVerdicts(25)
	for _, v := range vs {
		r.Add(v)
	}
	s := r.snapshot()
	if len(s.recs) != 10 || s.dropped != 15 {
		t.Fatalf("%d kept, %d dropped; want 10, 15", len(s.recs), s.dropped)
	}
	kept := map[time.Time]bool{}
	for _, x := range s.recs {
		kept[x.start] = true
	}
	for _, v := range vs[15:] {
		if !kept[v.Time] {
			t.Errorf("attempt at %s (one of the latest 10) not kept", v.Time)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "r.html")
	r := New(Options{Live: true})
	stop := r.Autosave(name, 20*time.Millisecond)
	for _, v := range synthVerdicts(50) {
		r.Add(v)
		time.Sleep(time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(b)), "</html>") || !strings.Contains(string(b), `id="n-attempts">50<`) {
		t.Error("the final page is incomplete or lacks the last attempts")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	if err := New(Options{}).WriteFile(filepath.Join(dir, "no", "such", "dir.html")); err == nil || !strings.HasPrefix(err.Error(), "--html ") {
		t.Errorf("writing into a missing directory: %v", err)
	}
	var nilReport *Report
	nilReport.Add(&analyze.Verdict{})
	if err := nilReport.WriteFile(name); err != nil {
		t.Error(err)
	}
}

// TestLargeReportInBrowser loads a report of 3000 attempts (compressed
// data, 30 pages) and uses it: the first page, the pager, the code
// filter, an attempt opened by a click.
func TestLargeReportInBrowser(t *testing.T) {
	path := browser.Need(t, testing.Short())
	r := New(Options{Title: "synthetic"})
	for _, v := range synthVerdicts(3000) {
		r.Add(v)
	}
	name := filepath.Join(t.TempDir(), "large.html")
	if err := r.WriteFile(name); err != nil {
		t.Fatal(err)
	}
	b, err := browser.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := b.NewPage(1280, 900)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Navigate("file://" + name); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows, Coded, Pages, Dropped, AfterFilter, Arrows int
		Codes                                            []string
		Errors                                           string
	}
	err = p.Eval(`Promise.all([window.wsdiag.ready, window.wsdiag.details]).then(async () => {
		const q = s => document.querySelectorAll(s);
		const r = {Rows: q('#list .att').length, Coded: q('#list .att[data-code][data-hop]').length,
			Pages: +document.querySelector('#pager input').max};
		const sel = document.getElementById('f-code');
		sel.value = 'upgrade_header_dropped'; sel.dispatchEvent(new Event('change'));
		r.Codes = [...new Set([...q('#list .att')].map(a => a.dataset.code))];
		r.AfterFilter = q('#list .att').length;
		q('#list .att .row')[0].click();
		await window.wsdiag.settled();
		r.Arrows = q('#list .att.open .ladder g.ev').length;
		r.Dropped = q('#list .att.open .hdrdiff .ln.drop').length;
		r.Errors = document.getElementById('js-errors').textContent;
		return r;
	})`, &got)
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.Errors(); len(errs) > 0 || got.Errors != "" {
		t.Errorf("JavaScript errors: %q %q", errs, got.Errors)
	}
	if got.Rows != 100 || got.Coded != 100 || got.Pages != 30 {
		t.Errorf("first page: %d rows, %d with data-code and data-hop, %d pages; want 100, 100, 30", got.Rows, got.Coded, got.Pages)
	}
	if len(got.Codes) != 1 || got.Codes[0] != "upgrade_header_dropped" || got.AfterFilter == 0 {
		t.Errorf("after filtering on upgrade_header_dropped: %d rows, codes %v", got.AfterFilter, got.Codes)
	}
	if got.Arrows < 8 || got.Dropped == 0 {
		t.Errorf("opened attempt: %d ladder arrows, %d dropped header lines", got.Arrows, got.Dropped)
	}
}

// BenchmarkReportLoad100k writes a report of 100 000 synthetic attempts
// and loads it in headless Chromium: ms/load is the page's own time from
// navigation to its first page of attempts drawn (timeline included),
// MB the file's size. Run alone on a quiet machine:
//
//	go test ./cmd/internal/report -run '^$' -bench ReportLoad100k -benchtime 5x
func BenchmarkReportLoad100k(b *testing.B) {
	path, err := browser.Find()
	if err != nil {
		b.Skip(err)
	}
	r := New(Options{Title: "100 000 synthetic attempts"})
	for _, v := range synthVerdicts(100000) {
		r.Add(v)
	}
	name := filepath.Join(b.TempDir(), "100k.html")
	start := time.Now()
	if err := r.WriteFile(name); err != nil {
		b.Fatal(err)
	}
	write := time.Since(start)
	fi, _ := os.Stat(name)
	br, err := browser.Start(path)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	p, err := br.NewPage(1280, 900)
	if err != nil {
		b.Fatal(err)
	}
	var total, details float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Navigate("file://" + name + "?" + time.Now().String()); err != nil {
			b.Fatal(err)
		}
		var res struct {
			LoadMs, DetailsMs float64
			Attempts          int
			Phases            map[string]float64
		}
		if err := p.Eval(`window.wsdiag.ready.then(r => window.wsdiag.details.then(d => Object.assign(r, d)))`, &res); err != nil {
			b.Fatal(err)
		}
		if res.Attempts != 100000 {
			b.Fatalf("%d attempts loaded", res.Attempts)
		}
		if errs := p.Errors(); len(errs) > 0 {
			b.Fatal(errs)
		}
		total += res.LoadMs
		details += res.DetailsMs
		b.Logf("first page at %v ms, details at %v ms; phases (ms) %v", res.LoadMs, res.DetailsMs, res.Phases)
	}
	if dir := os.Getenv("WSDIAG_SCREENSHOTS"); dir != "" {
		if err := p.Screenshot(filepath.Join(dir, "100k.png"), 1400); err != nil {
			b.Error(err)
		}
	}
	b.ReportMetric(total/float64(b.N), "ms/load")
	b.ReportMetric(details/float64(b.N), "ms/details")
	b.ReportMetric(float64(fi.Size())/1e6, "MB")
	b.ReportMetric(float64(write.Milliseconds()), "ms-write")
}

// BenchmarkWrite100k times writing the page of 100 000 attempts.
func BenchmarkWrite100k(b *testing.B) {
	r := New(Options{})
	for _, v := range synthVerdicts(100000) {
		r.Add(v)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var w bytes.Buffer
		if err := r.Write(&w); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(w.Len())/1e6, "MB")
	}
}

// FuzzAppendJSON: any string, valid UTF-8 or not, becomes a JSON string
// that decodes to it (invalid bytes as U+FFFD) and cannot end the
// <script> element it sits in.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "</script><!--", "\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "é漢🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSON(nil, s)
		if bytes.ContainsAny(b, "<>&\n\r") || bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u2029")) {
			t.Fatalf("%q: unsafe bytes in %q", s, b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %q is not JSON: %v", s, b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("%q decodes to %q", s, got)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("%q decodes to invalid UTF-8 %q", s, got)
		}
	})
}

// TestNoNetworkReferences: the page loads nothing: no src, href, url()
// or @import in its template, style or script, and a CSP forbidding any
// fetch.
func TestNoNetworkReferences(t *testing.T) {
	for name, text := range map[string]string{"template": pageText, "css": css, "js": script} {
		for _, bad := range []string{"src=", "href=", "url(", "@import", "fetch(", "XMLHttpRequest", "http://", "https://"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
	if !strings.Contains(pageText, `content="default-src 'none';`) {
		t.Error("no Content-Security-Policy forbidding fetches")
	}
}

// The proxy's config block and its error-log lines, when wsdiag read
// them, are among the attempt's evidence in the report.
func TestConfigAndErrorLogShown(t *testing.T) {
	r := New(Options{})
	v := synthVerdicts(1)[0]
	v.Config = &analyze.ConfigBlock{File: "/etc/nginx/sites-enabled/app", Line: 12, Block: "location /ws"}
	v.ErrorLogLines = []string{"2026/12/04 10:00:00 [error] 1#1: *1 connect() failed (111: Connection refused)"}
	r.Add(v)
	s := r.snapshot()
	ev := strings.Join(s.recs[0].evidence, "\n")
	for _, want := range []string{"config: /etc/nginx/sites-enabled/app:12 (location /ws)", "error log: 2026/12/04 10:00:00 [error]"} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence lacks %q:\n%s", want, ev)
		}
	}
}
