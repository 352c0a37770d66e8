package tlsplain

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Finding the proxies: by process name (what ps shows), and by the
// listening sockets on the client-facing ports, whatever the program is
// called; then the file each one takes SSL_read from: the libssl it maps,
// seen through /proc/PID/root so that a proxy in a container (another
// mount namespace) is found at its own path, or its executable when
// OpenSSL is linked in.

// DefaultNames are the proxies found by name: nginx, HAProxy, and Apache
// httpd under Debian's name and upstream's.
var DefaultNames = []string{"nginx", "haproxy", "apache2", "httpd"}

// Proc is a process to trace.
type Proc struct {
	PID  uint32
	Name string // its comm
	// Lib is the file holding its SSL functions, as a path that opens it
	// from here (under /proc/PID/root).
	Lib string
}

// procRoot is /proc; tests point it at a fake tree.
var procRoot = "/proc"

// findProcs lists the processes called one of names, or holding a socket
// that listens on one of ports (in this network namespace), with the file
// their SSL functions are in. Processes that map no libssl and export no
// SSL_read are left out: they do not terminate TLS with OpenSSL.
func findProcs(names []string, ports []uint16, self uint32) []Proc {
	listening := listeningInodes(ports)
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var out []Proc
	for _, e := range ents {
		pid64, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || uint32(pid64) == self {
			continue
		}
		pid := uint32(pid64)
		dir := filepath.Join(procRoot, e.Name())
		name := comm(dir)
		if !slices.Contains(names, name) && !holdsSocket(dir, listening) {
			continue
		}
		if lib := sslFile(dir); lib != "" {
			out = append(out, Proc{PID: pid, Name: name, Lib: lib})
		}
	}
	return out
}

// sslFile is the file the process in dir takes its SSL functions from:
// the libssl it maps, else its own executable when that defines SSL_read.
func sslFile(dir string) string {
	f, err := os.Open(filepath.Join(dir, "maps"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := string(line[i:])
		if base := filepath.Base(path); strings.HasPrefix(base, "libssl.so") && !strings.HasSuffix(path, " (deleted)") {
			return filepath.Join(dir, "root", path)
		}
	}
	exe := filepath.Join(dir, "exe")
	if definesSSLRead(exe) {
		return exe
	}
	return ""
}

// listeningInodes are the inodes of the TCP sockets listening on ports.
func listeningInodes(ports []uint16) map[string]bool {
	if len(ports) == 0 {
		return nil
	}
	inodes := map[string]bool{}
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		b, err := os.ReadFile(filepath.Join(procRoot, name))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ... inode (field 9)
			if len(f) < 10 || f[3] != "0A" {
				continue
			}
			_, port, ok := strings.Cut(f[1], ":")
			if !ok {
				continue
			}
			p, err := hex.DecodeString(port)
			if err != nil || len(p) != 2 {
				continue
			}
			if slices.Contains(ports, uint16(p[0])<<8|uint16(p[1])) {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	return inodes
}

// holdsSocket reports whether the process in dir has one of the sockets.
func holdsSocket(dir string, sockets map[string]bool) bool {
	if len(sockets) == 0 {
		return false
	}
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && sockets[l] {
			return true
		}
	}
	return false
}

// definesSSLRead reports whether the executable defines SSL_read itself
// (OpenSSL or BoringSSL linked in, symbols kept).
func definesSSLRead(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, syms := range []func() ([]elf.Symbol, error){f.DynamicSymbols, f.Symbols} {
		ss, _ := syms()
		for _, s := range ss {
			if s.Name == "SSL_read" && s.Value != 0 && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				return true
			}
		}
	}
	return false
}

// comm is the name of the process in dir ("" when it has gone).
func comm(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "comm"))
	return strings.TrimSpace(string(b))
}

// withChildren returns pids and every process descended from them.
func withChildren(pids []uint32) []uint32 {
	parent := map[uint32]uint32{}
	ents, _ := os.ReadDir(procRoot)
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.ParseUint(f[1], 10, 32); err == nil {
			parent[uint32(pid)] = uint32(pp)
		}
	}
	in := map[uint32]bool{}
	for _, p := range pids {
		in[p] = true
	}
	out := append([]uint32(nil), pids...)
	for changed := true; changed; {
		changed = false
		for c, pp := range parent {
			if in[pp] && !in[c] {
				in[c] = true
				out = append(out, c)
				changed = true
			}
		}
	}
	return out
}
