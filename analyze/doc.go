// Package analyze pairs the HTTP exchanges of each hop of a reverse proxy
// (client→proxy, proxy→backend, …) into WebSocket attempts and judges each
// attempt: where the upgrade broke, why, the evidence from each leg, and the
// fix. It is fed reassembly's events and knows nothing about packets or
// output formats.
//
// Files: analyzer.go takes the events, pending.go and pair.go pair the legs,
// rules.go judges the handshake, session.go what followed the 101, tls.go
// opaque and failed TLS legs, codes.go the verdict codes (one row each) and
// advice.go their fixes.
package analyze
