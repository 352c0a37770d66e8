// Command wsdiag tells why WebSocket clients fail behind a reverse proxy.
//
//	wsdiag read FILE...     judge every WebSocket attempt in captures
//	wsdiag live [EXPR]      the same, live on the proxy host
//	wsdiag probe URL        make a handshake and judge it (both legs as root)
//	wsdiag codes            list the verdict codes
//
// Exit status, like grep: 0 every attempt ok, 1 at least one attempt not
// ok, 2 wsdiag could not run.
//
// # How a packet becomes a verdict
//
// read, live and probe are one runner (runner.go) over three sources
// (source.go); only where the packets come from differs:
//
//   - read (readSource) opens the files; pipeline.Pump merges them by
//     time, the filter expression drops what it does not match, and a
//     pipeline.Pipeline reassembles inline or deals each connection to one
//     of --workers goroutines, each with its own reassembly.Assembler.
//   - live (liveSource) opens one AF_PACKET socket per worker in a
//     PACKET_FANOUT group; each socket is a pipeline.Feed (socketFeed),
//     read by a pipeline.Fanout worker with its own Assembler, which also
//     hands the raw packet to -w. With --tls-plaintext (plaintext.go) the
//     proxies' TLS plaintext, read by capture/tlsplain's eBPF probes, goes
//     to the one worker's Assembler too, each piece before the first
//     packet captured after its call returned, and to -w beside the
//     packets; read takes those records back (pipeline.PlainSink).
//   - probe (probeSource) makes its own attempts while it captures the
//     interface, then runs the capture through read's pipeline with the
//     keys of its own TLS connections; an attempt the capture did not show
//     is judged from what the client saw.
//
// An Assembler turns TCP segments into events (requests, responses, TLS
// records, the end of each connection) through the proto parsers. The
// events reach the session's one analyze.Analyzer on one goroutine, which
// pairs the legs of each attempt and decides it once capture time (the
// slowest worker's) has passed its grace. Each verdict goes to the
// session's consumers in order: the proxy's own files (its config block,
// its error-log lines), the text or JSON renderer, the HTML report, the
// Prometheus metrics, live's --write-failing. When the input has ended the
// runner gives the warnings (the source's, then those of the reassembly,
// the analyzer and the memory budget) and the summary (SummaryLine, the
// one value every view shows), and returns the exit status.
package main
