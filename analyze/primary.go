package analyze

// primary is the finding that gives the verdict its code, or nil (ok):
// the one at the earliest stage of the handshake's path, of a stage the
// earlier row in the code table; a note never. When nothing else holds
// and the attempt failed (or its one leg is an upstream leg), cannot_tell
// or unpaired says what hid the cause. The configuration lookup asks it
// too, for the hop to name.
func (a *attempt) primary() *finding {
	var p *finding
	for i := range a.findings {
		f := &a.findings[i]
		r := rowOf(f.code)
		if r.stage == stageExplains || f.note {
			continue
		}
		if p == nil || r.stage < rowOf(p.code).stage || r.stage == rowOf(p.code).stage && codeIndex(f.code) < codeIndex(p.code) {
			p = f
		}
	}
	if p != nil || a.chain[0].switched() && !a.lone {
		return p
	}
	for i := range a.findings {
		if c := a.findings[i].code; c == Unpaired && p == nil || c == CannotTell {
			p = &a.findings[i]
		}
	}
	return p
}
