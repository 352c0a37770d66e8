package analyze

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestAssemblersKeepOrder: with verdicts assembled on other goroutines,
// the same verdicts come out, whole and in the order they were decided,
// and all of them by the time Finish returns.
func TestAssemblersKeepOrder(t *testing.T) {
	run := func(assemblers int) []*Verdict {
		opt := DefaultOptions
		opt.Assemblers = assemblers
		f := newFeeder(opt)
		for i := 0; i < 300; i++ {
			at := time.Duration(i) * 10 * time.Millisecond
			key := fmt.Sprintf("AAAAAAAAAAAAAAAAAAAA%04d", i)
			status, resp := 101, accept(key)
			if i%3 == 0 {
				status, resp = 400, nil
			}
			_, a := f.exchange(fmt.Sprintf("10.0.0.1:%d", 20000+i), "192.0.2.1:80", at, 5*time.Millisecond, wsReq(key, "example.org"), "GET /ws HTTP/1.1", status, resp)
			_, b := f.exchange(fmt.Sprintf("127.0.0.1:%d", 30000+i), "127.0.0.1:9001", at+time.Millisecond, 2*time.Millisecond, wsReq(key, "backend"), "GET /ws HTTP/1.1", status, resp)
			b()
			a()
			if i%50 == 49 {
				f.a.Decide(t0.Add(at))
			}
		}
		f.a.Finish()
		return f.vs
	}
	want := run(0)
	if len(want) != 300 {
		t.Fatalf("%d verdicts inline, want 300", len(want))
	}
	for _, n := range []int{1, 3} {
		got := run(n)
		if len(got) != len(want) {
			t.Fatalf("%d assemblers: %d verdicts, want %d", n, len(got), len(want))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%d assemblers: verdict %d is %v %s, inline %v %s", n, i, got[i].Client, got[i].Code, want[i].Client, want[i].Code)
			}
		}
	}
}
