package report

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/wsdiag/wsdiag/analyze"
)

var (
	//go:embed assets/report.tmpl
	pageText string
	//go:embed assets/report.css
	css string
	//go:embed assets/report.js
	script string

	page = template.Must(template.New("report").Parse(pageText))
)

// count is one row of a summary table.
type count struct {
	Name, Note, Color string
	Sev               string
	N                 int
	Pct               string
}

type pageData struct {
	Title     string
	Generated string
	Live      bool
	Secrets   bool
	Attempts  int
	NotOK     int
	Dropped   uint64
	Plain     uint64
	Span      string
	Sum       Summary
	ByCode    []count
	ByHop     []count
	Proxies   []count
	Backends  []count
	CSS       template.CSS
	JS        template.JS
	Index     template.JS
	Details   template.JS
}

func (s *snapshot) write(w io.Writer) error {
	d := pageData{Title: s.opt.Title, Generated: s.at.UTC().Format("2006-01-02 15:04:05 UTC"), Live: s.opt.Live,
		Secrets: s.opt.ShowSecrets, Attempts: len(s.recs), Dropped: s.dropped, Plain: s.plain, Sum: s.sum,
		CSS: template.CSS(css), JS: template.JS(script)}
	if len(s.recs) > 0 {
		first, last := s.recs[0].start, s.recs[0].end
		for _, r := range s.recs {
			if r.end.After(last) {
				last = r.end
			}
		}
		d.Span = fmt.Sprintf("%s – %s (%s)", first.UTC().Format("2006-01-02 15:04:05.000"), last.UTC().Format("15:04:05.000"),
			last.Sub(first).Round(time.Millisecond))
	}
	byCode := map[string]int{}
	byHop := map[string]int{}
	proxies := map[string]int{}
	product := map[string]string{}
	backends := map[string]int{}
	for _, r := range s.recs {
		byCode[string(r.code)]++
		if r.code != analyze.OK {
			d.NotOK++
			byHop[string(r.hop)]++
		}
		if r.proxy != "" {
			proxies[r.proxy]++
			if r.product != "" {
				product[r.proxy] = r.product
			}
		}
		if r.backend != "" {
			backends[r.backend]++
		}
	}
	n := len(s.recs)
	d.ByCode = counts(byCode, n, func(c *count) {
		code := analyze.Code(c.Name)
		_, sev := analyze.Describe(code)
		c.Note, c.Color, c.Sev = analyze.Summary(code), colorOf(code), string(sev)
	})
	d.ByHop = counts(byHop, d.NotOK, func(c *count) {})
	d.Proxies = counts(proxies, n, func(c *count) { c.Note = product[c.Name] })
	d.Backends = counts(backends, n, func(c *count) {})
	t0 := s.t0()
	d.Index, d.Details = template.JS(pack(s.index(t0))), template.JS(packLines(s.details(t0)))
	bw := bufio.NewWriterSize(w, 1<<16)
	if err := page.Execute(bw, d); err != nil {
		return err
	}
	return bw.Flush()
}

// counts turns a tally into rows, most frequent first.
func counts(m map[string]int, total int, fill func(*count)) []count {
	out := make([]count, 0, len(m))
	for k, n := range m {
		c := count{Name: k, N: n}
		if total > 0 {
			c.Pct = fmt.Sprintf("%.1f", 100*float64(n)/float64(total))
			c.Pct = strings.TrimSuffix(c.Pct, ".0")
		}
		fill(&c)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > 50 {
		out = out[:50]
	}
	return out
}
