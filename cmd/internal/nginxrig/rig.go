// Package nginxrig writes the nginx configuration of wsdiag's test and
// benchmark rig: nginx in front of a WebSocket backend, /ws/ok with the
// upgrade directives and /ws/broken with proxy_pass alone (upstream
// HTTP/1.0, no Upgrade). The end-to-end tests write it directly, the
// shell benchmarks through `wsbench nginxconf`.
package nginxrig

import (
	"fmt"
	"strings"
)

// Options place the rig's nginx. The zero values of the numbers and the
// level are nginx's own defaults for a test: one worker, 64 connections,
// warn.
type Options struct {
	Dir     string // pid, error log and temp files
	Listen  string // the listen directive's address and parameters
	Backend string // HOST:PORT of the WebSocket backend
	Level   string // error log level
	Workers int    // worker_processes
	Conns   int    // worker_connections
	NoFile  int    // worker_rlimit_nofile (0: not set)
	// HTTP holds directives for the http block before the rig's own.
	HTTP string
}

// Main returns a main nginx configuration whose http block holds blocks.
func Main(o Options, blocks string) string {
	o.defaults()
	var b strings.Builder
	fmt.Fprintf(&b, "worker_processes %d;\n", o.Workers)
	if o.NoFile > 0 {
		fmt.Fprintf(&b, "worker_rlimit_nofile %d;\n", o.NoFile)
	}
	fmt.Fprintf(&b, "pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log %[2]s;\nevents { worker_connections %[3]d; }\nhttp {\n    access_log off;\n", o.Dir, o.Level, o.Conns)
	fmt.Fprintf(&b, "    client_body_temp_path %[1]s/t1; proxy_temp_path %[1]s/t2; fastcgi_temp_path %[1]s/t3; uwsgi_temp_path %[1]s/t4; scgi_temp_path %[1]s/t5;\n", o.Dir)
	if o.HTTP != "" {
		b.WriteString("    " + o.HTTP + "\n")
	}
	b.WriteString(blocks + "}\n")
	return b.String()
}

// Conf returns the rig's configuration.
func Conf(o Options) string {
	return Main(o, fmt.Sprintf(`    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen %[1]s;
    location /ws/ok {
      proxy_pass http://%[2]s;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
    location /ws/broken { proxy_pass http://%[2]s; }
  }
`, o.Listen, o.Backend))
}

func (o *Options) defaults() {
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.Conns == 0 {
		o.Conns = 64
	}
	if o.Level == "" {
		o.Level = "warn"
	}
}
