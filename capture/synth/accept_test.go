package synth

import "testing"

// The example of RFC 6455 §1.3.
func TestAccept(t *testing.T) {
	if got := accept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept = %q", got)
	}
}
