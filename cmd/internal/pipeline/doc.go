// Package pipeline carries packets through TCP reassembly to the
// analyzer. It knows no flags and no output: wsdiag's sources drive it,
// and its tests drive it the same way. It has two forms:
//
//   - Pipeline, fed by a reader (Add; Pump merges capture files by time):
//     reassembly inline on the caller's goroutine, or sharded (shard.go):
//     each connection dealt by its ports to one of N workers with an
//     Assembler each, its segments in batches.
//   - Fanout, whose workers each read a Feed of their own (a socket of a
//     PACKET_FANOUT group, or any input that hands its Assembler what it
//     reads, such as the plaintext of a TLS leg).
//
// In both, a worker's events travel in order (events.go) to the one
// goroutine that owns the Analyzer, which decides only up to the slowest
// running worker's capture time (clock.go), so that no leg's events come
// after its attempt was judged. An Observer (live's metrics) sees the
// events after the analyzer.
package pipeline
