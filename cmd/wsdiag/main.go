// Command wsdiag tells why WebSocket clients fail behind a reverse proxy.
//
//	wsdiag read FILE...     judge every WebSocket attempt in captures
//	wsdiag live [EXPR]      the same, live on the proxy host
//	wsdiag codes            list the verdict codes
//
// Exit status, like grep: 0 every attempt ok, 1 at least one attempt not
// ok, 2 wsdiag could not run.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	exitOK      = 0
	exitNotOK   = 1
	exitTrouble = 2
)

var version = "dev"

const usage = `wsdiag — why do WebSocket clients fail behind this reverse proxy?

Usage:
  wsdiag read [flags] FILE...     judge every WebSocket attempt in pcap/pcapng files ("-" for stdin)
  wsdiag -r FILE [flags]          the same, tcpdump style
  sudo wsdiag live [flags] [EXPR] capture on the proxy host, verdicts as they happen (-i IFACE, -w FILE)
  wsdiag codes                    list the verdict codes
  wsdiag version

Run "wsdiag read --help" for the flags.
Exit status: 0 every attempt ok, 1 at least one not ok, 2 wsdiag could not run.
`

func main() {
	defer exitOnPanic()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitOnPanic turns a bug into one line and exit status 2 rather than a
// stack trace: wsdiag parses hostile input, and a trace is no answer. It
// guards main and the pipeline's goroutines; run itself does not recover,
// so tests and fuzzers see the panic.
func exitOnPanic() {
	if r := recover(); r != nil {
		fmt.Fprintf(os.Stderr, "wsdiag: internal error: %v (please report it, with the capture if you can)\n", r)
		os.Exit(exitTrouble)
	}
}

// errUsage marks a mistake on the command line (already explained).
var errUsage = errors.New("usage")

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitTrouble
	}
	switch cmd := args[0]; {
	case cmd == "read":
		return cmdRead(args[1:], stdin, stdout, stderr)
	case cmd == "-r" || strings.HasPrefix(cmd, "-r") && !strings.HasPrefix(cmd, "--"):
		return cmdRead(args, stdin, stdout, stderr)
	case cmd == "live":
		return cmdLive(args[1:], stdout, stderr)
	case cmd == "-i" || cmd == "-D" || strings.HasPrefix(cmd, "-i") && !strings.HasPrefix(cmd, "--"):
		return cmdLive(args, stdout, stderr)
	case cmd == "codes":
		return cmdCodes(stdout)
	case cmd == "version" || cmd == "--version":
		fmt.Fprintln(stdout, "wsdiag", version)
		return exitOK
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "wsdiag: unknown command %q\n\n%s", cmd, usage)
		return exitTrouble
	}
}
