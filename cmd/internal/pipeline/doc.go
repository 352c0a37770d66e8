// Package pipeline carries packets from capture readers through TCP
// reassembly to the analyzer: merged by time from several files, filtered,
// and reassembled inline or sharded over worker goroutines. It knows no
// flags and no output, so wsdiag and wsbench drive it the same way.
//
// The sharded form (shard.go) deals each connection, by its ports, to one
// of N workers with an Assembler each; one goroutine owns the Analyzer and
// decides only up to the slowest worker's capture time.
package pipeline
