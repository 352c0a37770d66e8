// Package analyze pairs the HTTP exchanges of each hop of a reverse proxy
// (client→proxy, proxy→backend, …) into WebSocket attempts and judges each
// attempt: where the upgrade broke, why, the evidence from each leg, and the
// fix. It is fed reassembly's events and knows nothing about packets or
// output formats.
//
// How an attempt becomes a verdict:
//
//  1. Pairing. analyzer.go takes the events; pending.go and pair.go pair
//     each client request with the upstream requests its proxies made, hop
//     by hop, into a chain of legs (the client's first). tlspair.go pairs an
//     opaque TLS client leg with the upstream legs it caused; midstream.go
//     pairs the legs of sessions whose handshake came before the capture by
//     their frames.
//  2. Facts. observe (facts.go) computes the attempt's facts once, one type
//     per leg and phase, each beside the rules that read it: the proxy the
//     client talks to, the client's request, each proxy hop's request and
//     answer against the next leg's, every 101's Accept, a client's leg
//     alone and the proxy's upstream connects, the backend's answer, the
//     session after the 101, what the snap length cut.
//  3. Rules. The table in rules.go runs every rule for the attempt's kind
//     (client's leg seen, upstream legs only, mid-session) in the order the
//     handshake travels, then the session's by cause. A rule is a function
//     of the facts and of the findings of the rules above it; it returns
//     findings with their evidence, one per code (the first stands). Facts
//     that need more are observed when their rules' turn comes: the block
//     of the proxy's configuration (config.go) for the hop the findings so
//     far blame, and what other connections show (crossrules.go; the state
//     in crossconn.go). An attempt those rules must wait for is held, and
//     its cross-connection rules run again when it is released.
//  4. Verdict. primary.go chooses the finding that gives the code: the
//     earliest stage of the handshake's path (codes.go's table orders them).
//     assemble.go builds the Verdict: every finding's evidence, what each
//     leg showed, the session, and the advice of the primary code's row
//     (advice.go and beside the rules), with the configuration's file and
//     line.
//
// A TLS connection whose handshake failed is a verdict of its own (tls.go).
// names.go and evidence.go say how evidence names legs and quotes lines.
package analyze
