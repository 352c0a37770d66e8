package nginxrig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfValid: nginx -t accepts the rig's configuration, with the
// options the benchmarks set.
func TestConfValid(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if nginx = "/usr/sbin/nginx"; !exists(nginx) {
			t.Skip("nginx is not installed")
		}
	}
	for _, o := range []Options{
		{Listen: "127.0.0.1:18080", Backend: "127.0.0.1:19001"},
		{Listen: "127.0.0.1:8980 reuseport backlog=4096", Backend: "127.0.0.1:9980", Level: "crit", Workers: 3, Conns: 1000, NoFile: 2048, HTTP: "client_header_timeout 120s;"},
	} {
		o.Dir = t.TempDir()
		conf := filepath.Join(o.Dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(Conf(o)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(nginx, "-t", "-c", conf, "-p", o.Dir, "-e", filepath.Join(o.Dir, "error.log")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "test is successful") {
			t.Errorf("nginx -t: %v\n%s\n%s", err, out, Conf(o))
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
