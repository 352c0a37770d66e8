package analyze

import "testing"

// TestPrimary: the primary finding is the earliest on the handshake's
// path (stage, then row), never a note; with nothing else, cannot_tell
// or unpaired leads a failed attempt and nothing leads a good one.
func TestPrimary(t *testing.T) {
	ws, ok := wsReq(key1, "example.org"), accept(key1)
	upgraded := func() []*exchange { return []*exchange{clientLeg(ws, 101, ok)} }
	failed := func() []*exchange { return []*exchange{clientLeg(ws, 400, nil)} }
	f := func(c Code) finding { return finding{code: c} }
	note := func(c Code) finding { return finding{code: c, note: true} }
	cases := []struct {
		name     string
		chain    func() []*exchange
		findings []finding
		want     Code // "": none
	}{
		{"nothing", failed, nil, ""},
		{"earlier stage wins over earlier finding", failed, []finding{f(BackendRejected), f(UpgradeHeaderDropped)}, UpgradeHeaderDropped},
		{"same stage: earlier row", failed, []finding{f(UpstreamHTTP10), f(ConnectionNotUpgrade)}, ConnectionNotUpgrade},
		{"session stages by cause", upgraded, []finding{f(AbnormalClose), f(FrameProtocolError), f(IdleTimeout)}, FrameProtocolError},
		{"a note code never", failed, []finding{f(HostRewritten), f(Redirected)}, Redirected},
		{"a finding made a note never", failed, []finding{note(BackendRejected), f(ClosedByClient)}, ClosedByClient},
		{"failed, only notes: unpaired", failed, []finding{f(HostRewritten), f(Unpaired)}, Unpaired},
		{"failed, only notes: cannot_tell before unpaired", failed, []finding{f(Unpaired), f(CannotTell)}, CannotTell},
		{"upgraded, only notes: none", upgraded, []finding{f(Unpaired), note(CannotTell)}, ""},
		{"upgraded, a proven finding", upgraded, []finding{f(Unpaired), f(WSHeaderAltered)}, WSHeaderAltered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAttempt(c.chain(), nil, fromClient)
			a.findings = c.findings
			var got Code
			if p := a.primary(); p != nil {
				got = p.code
			}
			if got != c.want {
				t.Errorf("primary %q, want %q", got, c.want)
			}
		})
	}
}
