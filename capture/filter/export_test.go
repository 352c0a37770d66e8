package filter

import "golang.org/x/net/bpf"

// FanoutProgramAt is FanoutProgram for packets that start at their IP
// header, for the VM (which knows no SKF_NET_OFF).
func FanoutProgramAt(n int) ([]bpf.RawInstruction, error) { return fanoutProgram(n, 0) }
