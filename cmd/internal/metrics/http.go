package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// stallAfter is how long the capture loop may stay silent before /healthz
// fails: it reports every 100 ms, with or without traffic.
const stallAfter = 10 * time.Second

// Handler serves /metrics and /healthz, and nothing else.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if last := m.lastTick.Load(); last != 0 {
			if d := time.Since(time.Unix(0, last)); d > stallAfter {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "capture loop silent for %s\n", d.Round(time.Second))
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Server serves Handler on a listener until Close.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr (host:port; port 0 picks one) at once, so a wrong
// address is an error before capture starts, and serves in the background.
func (m *Metrics) Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	m.lastTick.Store(time.Now().UnixNano())
	s := &Server{ln: ln, srv: &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}}
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the address served.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops serving, letting a scrape in progress finish (1 s at most).
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
