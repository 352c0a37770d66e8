// Package browser drives a headless Chromium over the DevTools protocol on
// a pipe (--remote-debugging-pipe: no port, no network), for the HTML
// report's tests and its load benchmark: open a page, wait for it, read
// values from it, collect its console errors, take a screenshot.
package browser

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Find returns the path of a Chromium, or an error when none is installed.
func Find() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium in PATH (apt-get install chromium)")
}

// Browser is one headless Chromium.
type Browser struct {
	cmd     *exec.Cmd
	w       *os.File
	dir     string
	mu      sync.Mutex
	next    int
	pending map[int]chan message
	pages   map[string]*Page
	dead    chan struct{}
	err     error
	// Timeout bounds each command (default 60 s).
	Timeout time.Duration
}

type message struct {
	ID        int                       `json:"id,omitempty"`
	Method    string                    `json:"method,omitempty"`
	Params    json.RawMessage           `json:"params,omitempty"`
	Result    json.RawMessage           `json:"result,omitempty"`
	Error     *struct{ Message string } `json:"error,omitempty"`
	SessionID string                    `json:"sessionId,omitempty"`
}

// Start launches Chromium headless with a fresh profile in a temporary
// directory.
func Start(path string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "wsdiag-chromium-")
	if err != nil {
		return nil, err
	}
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-sync", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe", "--user-data-dir="+dir, "about:blank")
	cmd.ExtraFiles = []*os.File{toR, fromW} // its fd 3 reads commands, fd 4 writes answers
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %v", path, err)
	}
	toR.Close()
	fromW.Close()
	b := &Browser{cmd: cmd, w: toW, dir: dir, pending: map[int]chan message{}, pages: map[string]*Page{},
		dead: make(chan struct{}), Timeout: 60 * time.Second}
	go b.read(fromR)
	return b, nil
}

func (b *Browser) read(f *os.File) {
	r := bufio.NewReaderSize(f, 1<<20)
	defer f.Close()
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.err = fmt.Errorf("chromium closed the pipe: %v", err)
			b.mu.Unlock()
			close(b.dead)
			return
		}
		var m message
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.pending[m.ID]; ch != nil {
				delete(b.pending, m.ID)
				ch <- m
			}
		} else if p := b.pages[m.SessionID]; p != nil {
			p.event(m)
		}
		b.mu.Unlock()
	}
}

// call sends a command (to a page's session when session is set) and
// waits for its result.
func (b *Browser) call(session, method string, params any, result any) error {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan message, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if _, err := b.w.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("%s: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.dead:
		return fmt.Errorf("%s: %v", method, b.err)
	case <-time.After(b.Timeout):
		return fmt.Errorf("%s: no answer in %s", method, b.Timeout)
	}
}

// Close ends Chromium and removes its profile.
func (b *Browser) Close() error {
	b.call("", "Browser.close", nil, nil)
	b.w.Close()
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-done
	}
	return os.RemoveAll(b.dir)
}

// Page is one tab.
type Page struct {
	b       *Browser
	session string
	mu      sync.Mutex
	errs    []string
	loaded  chan struct{}
	height  int // the viewport's
}

// NewPage opens a tab with a viewport of width×height CSS pixels.
func (b *Browser) NewPage(width, height int) (*Page, error) {
	var t struct{ TargetID string }
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &t); err != nil {
		return nil, err
	}
	var s struct{ SessionID string }
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": t.TargetID, "flatten": true}, &s); err != nil {
		return nil, err
	}
	p := &Page{b: b, session: s.SessionID, height: height}
	b.mu.Lock()
	b.pages[s.SessionID] = p
	b.mu.Unlock()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := b.call(p.session, m, nil, nil); err != nil {
			return nil, err
		}
	}
	err := b.call(p.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height,
		"deviceScaleFactor": 1, "mobile": false}, nil)
	return p, err
}

// event handles a page's event; called with b.mu held.
func (p *Page) event(m message) {
	switch m.Method {
	case "Page.loadEventFired":
		p.mu.Lock()
		if p.loaded != nil {
			close(p.loaded)
			p.loaded = nil
		}
		p.mu.Unlock()
	case "Runtime.exceptionThrown":
		var e struct {
			ExceptionDetails struct {
				Text      string
				Exception struct{ Description string }
			}
		}
		json.Unmarshal(m.Params, &e)
		p.addErr("exception: " + e.ExceptionDetails.Text + " " + e.ExceptionDetails.Exception.Description)
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string
			Args []struct {
				Value       any
				Description string
			}
		}
		json.Unmarshal(m.Params, &e)
		if e.Type == "error" || e.Type == "assert" {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, fmt.Sprint(a.Value)+a.Description)
			}
			p.addErr("console." + e.Type + ": " + strings.Join(parts, " "))
		}
	case "Log.entryAdded":
		var e struct {
			Entry struct{ Level, Source, Text, URL string }
		}
		json.Unmarshal(m.Params, &e)
		if e.Entry.Level == "error" {
			p.addErr("log (" + e.Entry.Source + "): " + e.Entry.Text + " " + e.Entry.URL)
		}
	}
}

func (p *Page) addErr(s string) {
	p.mu.Lock()
	p.errs = append(p.errs, s)
	p.mu.Unlock()
}

// Errors returns the console errors, uncaught exceptions and error log
// entries (a blocked request, a CSP violation) seen since the last
// Navigate.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// Navigate loads url and waits for its load event.
func (p *Page) Navigate(url string) error {
	ch := make(chan struct{})
	p.mu.Lock()
	p.loaded = ch
	p.errs = nil
	p.mu.Unlock()
	var r struct{ ErrorText string }
	if err := p.b.call(p.session, "Page.navigate", map[string]any{"url": url}, &r); err != nil {
		return err
	}
	if r.ErrorText != "" {
		return fmt.Errorf("navigating to %s: %s", url, r.ErrorText)
	}
	select {
	case <-ch:
		return nil
	case <-p.b.dead:
		return p.b.err
	case <-time.After(p.b.Timeout):
		return fmt.Errorf("%s: no load event in %s", url, p.b.Timeout)
	}
}

// Eval evaluates a JavaScript expression, awaiting it when it is a
// promise, and decodes its JSON value into out.
func (p *Page) Eval(expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage
		}
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	err := p.b.call(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if err != nil {
		return err
	}
	if e := r.ExceptionDetails; e != nil {
		return fmt.Errorf("evaluating %.60q: %s %s", expr, e.Text, e.Exception.Description)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Result.Value, out)
}

// Screenshot writes a PNG of the page to file: the whole page, up to
// maxHeight CSS pixels.
func (p *Page) Screenshot(file string, maxHeight int) error {
	return p.ScreenshotPart(file, 0, maxHeight)
}

// ScreenshotPart writes a PNG of the page from y down, up to maxHeight
// CSS pixels.
func (p *Page) ScreenshotPart(file string, y, maxHeight int) error {
	if y == 0 && maxHeight <= p.height {
		// the viewport as it is: cheaper than a clip beyond it
		return p.capture(file, map[string]any{"format": "png"})
	}
	var m struct {
		CSSContentSize struct{ Width, Height float64 }
	}
	if err := p.b.call(p.session, "Page.getLayoutMetrics", nil, &m); err != nil {
		return err
	}
	h := min(m.CSSContentSize.Height-float64(y), float64(maxHeight))
	return p.capture(file, map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": y, "width": m.CSSContentSize.Width, "height": h, "scale": 1}})
}

func (p *Page) capture(file string, params map[string]any) error {
	var r struct{ Data string }
	if err := p.b.call(p.session, "Page.captureScreenshot", params, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(file, png, 0o644)
}

// TB is the part of testing.TB that Need uses.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// Need returns a Chromium for a browser test: without one the test is
// skipped, or fails when WSDIAG_REQUIRE_BROWSER is set (CI), and -short
// skips it too.
func Need(tb TB, short bool) string {
	tb.Helper()
	if short {
		tb.Skip("-short: no browser")
	}
	path, err := Find()
	if err != nil && os.Getenv("WSDIAG_REQUIRE_BROWSER") == "" {
		tb.Skip(err)
	} else if err != nil {
		tb.Fatal(err)
	}
	return path
}
