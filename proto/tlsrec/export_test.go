package tlsrec

import (
	"bytes"
	"crypto/tls"
	"testing"

	"github.com/wsdiag/wsdiag/proto/flow"
)

// PipelineChunk is a wireChunk for the pipeline benchmark, an external test.
type PipelineChunk struct {
	Dir flow.Dir
	B   []byte
}

// PipelineSession runs an in-process TLS 1.3 session that carries cExtra
// and sExtra after the upgrade. It returns the session's writes, its
// plaintext in the order it must travel (request, 101 and frames, frames),
// the key log, and the plaintext length.
func PipelineSession(tb testing.TB, cExtra, sExtra []byte) (wire, plain []PipelineChunk, keys *KeyLog, n int) {
	s := runTLSSession(tb, tls.VersionTLS13, tls.VersionTLS13, nil, cExtra, sExtra)
	keys = mustKeyLog(tb, s.keylog)
	p := feedTLS(keys, s.wire.chunks, nil).plain
	for _, c := range s.wire.chunks {
		wire = append(wire, PipelineChunk{c.dir, c.b})
	}
	hdrEnd := bytes.Index(p[0], []byte("\r\n\r\n")) + 4
	plain = []PipelineChunk{{flow.Fwd, p[0][:hdrEnd]}, {flow.Rev, p[1]}, {flow.Fwd, p[0][hdrEnd:]}}
	return wire, plain, keys, len(p[0]) + len(p[1])
}
