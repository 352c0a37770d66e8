package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

const (
	exitOK      = 0
	exitNotOK   = 1
	exitTrouble = 2
)

const usage = `wsdiag — why do WebSocket clients fail behind this reverse proxy?

Usage:
  wsdiag read [flags] FILE...     judge every WebSocket attempt in pcap/pcapng files ("-" for stdin)
  wsdiag [flags] -r FILE [EXPR]   the same, tcpdump style
  sudo wsdiag live [flags] [EXPR] capture on the proxy host, verdicts as they happen (-i IFACE, -w FILE)
  wsdiag probe [flags] URL        make a WebSocket handshake to ws:// or wss:// URL and judge it
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

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitTrouble
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, log: newLogger("text", stderr)}
	var cmd func(*env, []string) (int, error)
	switch name, rest := command(args); name {
	case "read":
		cmd, args = cmdRead, rest
	case "live":
		cmd, args = cmdLive, rest
	case "codes":
		return cmdCodes(stdout)
	case "probe":
		cmd, args = cmdProbe, rest
	case "version":
		ver, rev := buildVersion()
		fmt.Fprintf(stdout, "wsdiag %s (revision %s)\n", ver, rev)
		return exitOK
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "wsdiag: unknown command %q\n\n%s", args[0], usage)
		return exitTrouble
	}
	code, err := cmd(e, args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		return exitOK
	case err != nil:
		e.log.Error().Msg(oneLine(err))
		return exitTrouble
	}
	return code
}

// command picks the subcommand and its arguments. Without one, tcpdump's
// flags choose: -r FILE reads, -i IFACE (or -D) captures, wherever they
// stand among the other flags (wsdiag -v -r FILE).
func command(args []string) (string, []string) {
	switch a := args[0]; a {
	case "read", "live", "probe", "codes", "version":
		return a, args[1:]
	case "--version":
		return "version", nil
	case "help", "-h", "--help":
		return "help", nil
	}
	for _, a := range args {
		switch {
		case a == "--":
			return "", nil
		case a == "--read" || strings.HasPrefix(a, "--read=") || shortFlag(a, 'r'):
			return "read", args
		case a == "--interface" || strings.HasPrefix(a, "--interface=") || a == "--list-interfaces" || shortFlag(a, 'i') || shortFlag(a, 'D'):
			return "live", args
		}
	}
	return "", nil
}

// shortFlag: a is -X, or a cluster of -v's ending in X (-vvr FILE), or -X
// with its value attached (-rFILE).
func shortFlag(a string, x byte) bool {
	if len(a) < 2 || a[0] != '-' || a[1] == '-' {
		return false
	}
	for i := 1; i < len(a); i++ {
		switch a[i] {
		case x:
			return true
		case 'v':
		default:
			return false
		}
	}
	return false
}
