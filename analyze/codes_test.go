package analyze

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// stableCodes are the code strings in table order. Scripts match on them:
// a code is never renamed, removed or moved; new codes are appended here
// and to table.
var stableCodes = []string{
	"ok", "client_not_websocket", "upgrade_header_dropped", "connection_not_upgrade", "upstream_http10",
	"ws_header_altered", "host_rewritten", "path_rewritten", "upstream_connect_failed", "upstream_timeout",
	"upstream_closed_early", "backend_rejected", "backend_not_websocket", "bad_accept", "proxy_rejected",
	"redirected", "response_altered", "idle_timeout", "message_too_big", "closed_by_backend",
	"closed_by_client", "abnormal_close", "frame_protocol_error", "frames_not_relayed",
	"tls_handshake_failed", "encrypted_leg", "unpaired", "plain_http",
	"handshake_not_captured", "front_idle_timeout", "lifetime_limit", "mass_close",
	"sticky_session_missing", "proxy_at_capacity", "headers_too_large", "origin_mismatch",
	"untrusted_proxy", "h2_websocket_refused", "client_http2", "upstream_tls_failed",
	"upstream_scheme_mismatch",
	"cannot_tell",
	"config_read_timeout_short", "config_headers_not_inherited",
	"upgrade_not_relayed", "extensions_stripped", "proxy_protocol_mismatch",
}

func TestCodesNeverRenamed(t *testing.T) {
	if len(table) < len(stableCodes) {
		t.Fatalf("table has %d rows, the stable list %d: codes are never removed", len(table), len(stableCodes))
	}
	for i, want := range stableCodes {
		if got := string(table[i].code); got != want {
			t.Errorf("row %d is %q, want %q: codes are appended, never renamed or moved", i, got, want)
		}
	}
	if len(table) > len(stableCodes) {
		t.Errorf("new codes %v: append them to stableCodes too", Codes[len(stableCodes):])
	}
}

// codeConsts returns the constants of type Code declared in the package's
// non-test files, by parsing them: a constant without a row is caught.
func codeConsts(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for k, n := range vs.Names {
					lit, ok := vs.Values[k].(*ast.BasicLit)
					if !ok {
						t.Fatalf("%s: constant %s is not a string literal", name, n.Name)
					}
					out[n.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
	}
	return out
}

func TestCodeTable(t *testing.T) {
	consts := codeConsts(t)
	if len(consts) < len(stableCodes) {
		t.Fatalf("found %d Code constants, want at least %d", len(consts), len(stableCodes))
	}
	rows := map[Code]int{}
	for _, r := range table {
		rows[r.code]++
	}
	for name, s := range consts {
		if n := rows[Code(s)]; n != 1 {
			t.Errorf("constant %s (%q) has %d rows in table, want 1", name, s, n)
		}
	}
	if len(table) != len(consts) {
		t.Errorf("table has %d rows, %d Code constants", len(table), len(consts))
	}
	valid := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	hops := map[Hop]bool{HopNone: true, HopClient: true, HopFront: true, HopProxy: true, HopConnect: true, HopBackend: true, HopSession: true}
	sevs := map[Severity]bool{SevOK: true, SevInfo: true, SevWarn: true, SevError: true}
	for i, r := range table {
		switch {
		case !valid.MatchString(string(r.code)):
			t.Errorf("row %d: code %q is not snake_case", i, r.code)
		case !hops[r.hop]:
			t.Errorf("%s: hop %q", r.code, r.hop)
		case !sevs[r.sev]:
			t.Errorf("%s: severity %q", r.code, r.sev)
		case r.stage < stageClient || r.stage > stageExplains:
			t.Errorf("%s: stage %d", r.code, r.stage)
		case strings.TrimSpace(r.summary) == "" || strings.Contains(r.summary, "\n"):
			t.Errorf("%s: summary must be one line", r.code)
		case r.advice == nil:
			t.Errorf("%s: no advice func (noAdvice when it never needs one)", r.code)
		case r.sev == SevOK && r.code != OK:
			t.Errorf("%s: only ok has severity ok", r.code)
		}
		if codeIndex(r.code) != i || rowOf(r.code) != &table[i] {
			t.Errorf("%s: index does not point at row %d", r.code, i)
		}
		if h, s := Describe(r.code); h != r.hop || s != r.sev || Summary(r.code) == "" {
			t.Errorf("%s: Describe/Summary disagree with the row", r.code)
		}
	}
}

// TestReadmeListsCodes: every code a rule emits is in README's verdict
// tables, with the table's hop.
func TestReadmeListsCodes(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skip("no README:", err)
	}
	// | `code` | hop | …   and   | `a` / `b` | hop | …
	row := regexp.MustCompile("(?m)^\\| (`[a-z0-9_]+`(?: / `[a-z0-9_]+`)*) \\| ([^|]+) \\|")
	hopOf := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		for _, c := range strings.Split(m[1], " / ") {
			hopOf[strings.Trim(c, "`")] = strings.TrimSpace(m[2])
		}
	}
	for _, r := range table {
		h, ok := hopOf[string(r.code)]
		switch {
		case !ok:
			t.Errorf("README's verdict tables lack %s", r.code)
		case h == "–" && r.hop == HopNone:
		case strings.HasPrefix(h, string(r.hop)+" / "): // the row's hop first, then the others it may name
		case h != string(r.hop):
			t.Errorf("README gives %s hop %q, the table %q", r.code, h, r.hop)
		}
	}
}
