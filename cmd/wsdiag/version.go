package main

import "runtime/debug"

// version and revision may be set at build time:
//
//	go build -ldflags "-X main.version=1.2.0 -X main.revision=abc1234" ./cmd/wsdiag
//
// Otherwise they come from the build information Go embeds: the module
// version (go install …@v1.2.0) and the VCS revision (a build in a git
// checkout, unless -buildvcs=false).
var version, revision string

func buildVersion() (ver, rev string) {
	ver, rev = version, revision
	bi, ok := debug.ReadBuildInfo()
	if ver == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	if rev == "" && ok {
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	if ver == "" {
		ver = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}
