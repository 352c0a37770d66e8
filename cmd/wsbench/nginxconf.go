package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/wsdiag/wsdiag/cmd/internal/nginxrig"
)

// nginxConf prints the rig's nginx configuration (nginxrig.Conf), the one
// the end-to-end tests run, for the shell benchmarks.
func nginxConf(args []string) int {
	var o nginxrig.Options
	fs := flag.NewFlagSet("nginxconf", flag.ExitOnError)
	fs.StringVar(&o.Dir, "dir", "", "directory of the pid, error log and temp files")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:18080", "listen address and parameters")
	fs.StringVar(&o.Backend, "backend", "127.0.0.1:19001", "the WebSocket backend")
	fs.StringVar(&o.Level, "level", "warn", "error log level")
	fs.IntVar(&o.Workers, "workers", 1, "worker_processes")
	fs.IntVar(&o.Conns, "conns", 1024, "worker_connections")
	fs.IntVar(&o.NoFile, "nofile", 0, "worker_rlimit_nofile (0: not set)")
	fs.StringVar(&o.HTTP, "http", "", "more directives for the http block")
	fs.Parse(args)
	if o.Dir == "" {
		fmt.Fprintln(os.Stderr, "wsbench nginxconf: -dir is required")
		return 2
	}
	fmt.Print(nginxrig.Conf(o))
	return 0
}
