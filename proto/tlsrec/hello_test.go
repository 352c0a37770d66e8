package tlsrec

import (
	"fmt"
	"strings"
	"testing"
)

// extensions yields each well-formed extension in order and stops at the
// end of the list, at a malformed one, or when the loop breaks.
func TestExtensions(t *testing.T) {
	ext := func(typ uint16, data string) string {
		return string([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}) + data
	}
	list := ext(extServerName, "a") + ext(extALPN, "bc") + ext(extSupportedVersions, "") + "\x00\x2b\x00\x05xy"
	var got []string
	for typ, data := range extensions([]byte(list)) {
		got = append(got, fmt.Sprintf("%d=%q", typ, data))
	}
	if s := strings.Join(got, " "); s != `0="a" 16="bc" 43=""` {
		t.Errorf("extensions: %s", s)
	}
	n := 0
	for range extensions([]byte(list)) {
		n++
		break
	}
	for _, l := range []string{"", "\x00\x00\x00"} {
		for range extensions([]byte(l)) {
			n += 10
		}
	}
	if n != 1 {
		t.Errorf("%d extensions after a break and in lists too short for one", n)
	}
}
