// Command mkdeb builds wsdiag's Debian package with nfpm, from the
// repository it runs in and nothing else than Go and git:
//
//	cd packaging/mkdeb && go run . -o /tmp/out        # writes /tmp/out/wsdiag_<version>_amd64.deb
//
// The package holds the static binary (CGO_ENABLED=0), the systemd unit,
// /etc/default/wsdiag, the example alerting rules, the man page (made from
// the binary's own help texts) and the license. The version comes from
// `git describe` (a tag vX.Y.Z), else 0.0.0~git<commit date>.<hash>; -version
// overrides it. Both it and the revision are stamped into the binary.
//
// mkdeb is a module of its own so that nfpm's dependencies (git, signing,
// rpm and apk writers) stay out of wsdiag's go.mod.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	out := flag.String("o", ".", "directory to write the .deb into")
	version := flag.String("version", "", "package version (default: from git describe)")
	arch := flag.String("arch", runtime.GOARCH, "target architecture (GOARCH)")
	flag.Parse()
	if err := run(*out, *version, *arch); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(out, version, arch string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	rev, when := revision(root)
	if version == "" {
		version = describe(root, rev, when)
	}
	tmp, err := os.MkdirTemp("", "mkdeb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "wsdiag")
	if err := build(root, bin, arch, version, rev); err != nil {
		return err
	}
	helpBin := bin
	if arch != runtime.GOARCH {
		helpBin = filepath.Join(tmp, "wsdiag-host")
		if err := build(root, helpBin, runtime.GOARCH, version, rev); err != nil {
			return err
		}
	}
	man, err := manPage(helpBin, version, when)
	if err != nil {
		return err
	}
	manPath := filepath.Join(tmp, "wsdiag.1.gz")
	if err := os.WriteFile(manPath, man, 0o644); err != nil {
		return err
	}
	scripts, err := writeScripts(tmp)
	if err != nil {
		return err
	}

	pkg := filepath.Join(root, "packaging")
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode, Owner: "root", Group: "root"}}
	}
	conf := file(filepath.Join(pkg, "wsdiag.default"), "/etc/default/wsdiag", 0o644)
	conf.Type = files.TypeConfigNoReplace
	info := &nfpm.Info{
		Name: "wsdiag", Arch: arch, Platform: "linux", Version: version, VersionSchema: "none",
		Section: "net", Priority: "optional", Maintainer: "wsdiag developers <wsdiag@users.noreply.github.com>",
		Homepage: "https://github.com/wsdiag/wsdiag", License: "MIT", MTime: when,
		Description: "why WebSocket upgrades fail behind a reverse proxy\n" +
			"wsdiag reads the traffic on both sides of a reverse proxy (a pcap/pcapng file,\n" +
			"or live on the proxy host), pairs each client's Upgrade request with the\n" +
			"request the proxy sent upstream, and prints one verdict per attempt with the\n" +
			"evidence from each leg and the fix. As a service it exports Prometheus metrics.",
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				file(bin, "/usr/bin/wsdiag", 0o755),
				file(filepath.Join(pkg, "wsdiag.service"), "/lib/systemd/system/wsdiag.service", 0o644),
				conf,
				file(filepath.Join(pkg, "alerts.yml"), "/usr/share/doc/wsdiag/examples/alerts.yml", 0o644),
				file(filepath.Join(pkg, "alerts_test.yml"), "/usr/share/doc/wsdiag/examples/alerts_test.yml", 0o644),
				file(filepath.Join(root, "README.md"), "/usr/share/doc/wsdiag/README.md", 0o644),
				file(filepath.Join(root, "LICENSE"), "/usr/share/doc/wsdiag/copyright", 0o644),
				file(manPath, "/usr/share/man/man1/wsdiag.1.gz", 0o644),
			},
			Scripts: scripts,
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return err
	}
	deb, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	name := filepath.Join(out, deb.ConventionalFileName(info))
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := deb.Package(info, f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(name)
	return nil
}

// repoRoot is the nearest directory up from here holding wsdiag's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/wsdiag/wsdiag\n")) {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("not inside the wsdiag repository (no go.mod of github.com/wsdiag/wsdiag above here)")
		}
		dir = up
	}
}

func git(root string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// revision returns the commit (12 hex digits, "-dirty" when tracked files
// changed) and its commit time, which also dates every file in the package
// so that one commit always gives the same bytes.
func revision(root string) (string, time.Time) {
	rev := git(root, "rev-parse", "--short=12", "HEAD")
	when := time.Unix(0, 0).UTC()
	if s, err := strconv.ParseInt(git(root, "log", "-1", "--format=%ct"), 10, 64); err == nil {
		when = time.Unix(s, 0).UTC()
	}
	if rev == "" {
		return "unknown", when
	}
	if git(root, "status", "--porcelain", "--untracked-files=no") != "" {
		rev += "-dirty"
	}
	return rev, when
}

// describe makes a Debian version: the tag vX.Y.Z as X.Y.Z (commits past it
// as X.Y.Z+git<N>.<hash>, which sorts after X.Y.Z), or 0.0.0~git<date>.<hash>
// without a tag.
func describe(root, rev string, when time.Time) string {
	hash := strings.TrimSuffix(rev, "-dirty")
	if len(hash) > 7 {
		hash = hash[:7]
	}
	if d := git(root, "describe", "--tags", "--long", "--match", "v[0-9]*"); d != "" {
		// v1.2.3-4-gabcdef0
		parts := strings.Split(strings.TrimPrefix(d, "v"), "-")
		if n := len(parts); n >= 3 {
			tag := strings.Join(parts[:n-2], "~")
			if parts[n-2] == "0" {
				return tag
			}
			return fmt.Sprintf("%s+git%s.%s", tag, parts[n-2], hash)
		}
	}
	return fmt.Sprintf("0.0.0~git%s.%s", when.Format("20060102"), hash)
}

// build compiles the static binary, stamped with version and revision.
func build(root, out, arch, version, rev string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", out,
		"-ldflags", fmt.Sprintf("-s -w -X main.version=%s -X main.revision=%s", version, rev), "./cmd/wsdiag")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/wsdiag: %w", err)
	}
	return nil
}

// writeScripts writes the maintainer scripts: systemd rereads its units;
// the service is neither enabled nor started (capturing is the admin's
// decision), and is stopped before removal.
func writeScripts(dir string) (nfpm.Scripts, error) {
	const reload = "if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi\n"
	scripts := map[string]string{
		"postinst": "#!/bin/sh\nset -e\n" + reload,
		"prerm": "#!/bin/sh\nset -e\n" +
			"if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then systemctl stop wsdiag.service >/dev/null 2>&1 || true; fi\n",
		"postrm": "#!/bin/sh\nset -e\n" + reload,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			return nfpm.Scripts{}, err
		}
	}
	return nfpm.Scripts{PostInstall: filepath.Join(dir, "postinst"), PreRemove: filepath.Join(dir, "prerm"),
		PostRemove: filepath.Join(dir, "postrm")}, nil
}
