package analyze

import (
	"strings"
	"testing"
)

// sameName answers as strings.EqualFold does, also for names that fold
// to ASCII from other runes.
func TestSameName(t *testing.T) {
	for _, have := range []string{"Upgrade", "upgrade", "UPGRADE", "Upgrad", "Upgrades", "X-Upgrade", "", "Sec-WebSocket-\u212aey", "Sec-WebSocket-key", "Sec-WebSocket-Ke", "\u017fec-WebSocket-Key", "Sec-WebSocket-Key\u212a"} {
		for _, want := range []string{"Upgrade", "Sec-WebSocket-Key", "X-Real-IP", ""} {
			if got, ref := sameName(have, want), strings.EqualFold(have, want); got != ref {
				t.Errorf("sameName(%q, %q) = %v, EqualFold %v", have, want, got, ref)
			}
		}
	}
}
