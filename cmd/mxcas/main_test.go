package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
	"github.com/mxcas/mxcas/testkit"
)

// testServer is the server name of every media the tests store.
const testServer = "example.org"

var (
	binDir   string // holds the mxcas binary built for process-level tests
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxcas-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// Build before any test starts, so that the build's time (long on a
	// loaded machine) never counts against a test's own deadline.
	buildBinary()
	code := m.Run()
	testkit.StopSharedPG() // the cluster of the multi-node tests, if any started it
	os.RemoveAll(dir)
	os.Exit(code)
}

// mxcasBinary builds the command once per test binary and returns its path.
func mxcasBinary(t *testing.T) string {
	t.Helper()
	buildBinary()
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// buildBinary builds the command once per test binary.
func buildBinary() {
	binOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			binError = err
			return
		}
		p := filepath.Join(binDir, "mxcas")
		out, err := exec.Command(gobin, "build", "-o", p, ".").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binPath = p
	})
}

// runMain runs the command in process and returns its exit status and
// output.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// runBinary runs the built command as a separate process.
func runBinary(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	code, stdout, stderr, err := execBinary(ctx, mxcasBinary(t), args...)
	if err != nil {
		t.Fatalf("mxcas %s: %v", strings.Join(args, " "), err)
	}
	return code, stdout, stderr
}

// execBinary runs bin with args and returns its exit status and output;
// err is set only when it could not run. Safe from any goroutine.
func execBinary(ctx context.Context, bin string, args ...string) (code int, stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String(), nil
	}
	return 0, o.String(), e.String(), err
}

// writeConfig writes a configuration file whose store is dataDir, plus any
// extra lines of the [server] table, and returns its path.
func writeConfig(t *testing.T, dataDir string, extra ...string) string {
	t.Helper()
	text := fmt.Sprintf("[server]\ndata_dir = %q\nlisten = \"127.0.0.1:0\"\n", dataDir)
	for _, l := range extra {
		text += l + "\n"
	}
	path := filepath.Join(t.TempDir(), "mxcas.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustMXC is matrix.NewMXC for an ID the test knows is valid.
func mustMXC(t testing.TB, server, id string) matrix.MXC {
	t.Helper()
	m, err := matrix.NewMXC(server, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// content returns n deterministic pseudo-random bytes.
func content(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// uploadMedia stores every id -> body of bodies in the store in dir, which
// no other process may hold.
func uploadMedia(t *testing.T, dir string, bodies map[string][]byte) {
	t.Helper()
	st, err := media.Open(media.Options{Create: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	for id, b := range bodies {
		info := media.UploadInfo{MXC: mustMXC(t, testServer, id), Size: int64(len(b))}
		if _, err := st.Upload(context.Background(), info, bytes.NewReader(b)); err != nil {
			t.Fatalf("upload %s: %v", id, err)
		}
	}
}

// checkStore opens the store in dir and checks that it is healthy and holds
// bodies (media ID -> content on testServer), byte for byte, and no other
// media.
func checkStore(t *testing.T, dir string, bodies map[string][]byte) {
	t.Helper()
	st, rep := mediatest.OpenHealthy(t, dir)
	defer st.Close()
	if rep.Media != len(bodies) {
		t.Errorf("%s: fsck counted %d media, want %d", dir, rep.Media, len(bodies))
	}
	for id, want := range bodies {
		mediatest.WantContent(t, st, mustMXC(t, testServer, id), want)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runMain(t, "version")
	if code != 0 || !strings.HasPrefix(out, "mxcas ") {
		t.Errorf("version: exit %d, output %q; want 0 and \"mxcas ...\"", code, out)
	}
	code, out, _ = runBinary(t, context.Background(), "version")
	if code != 0 || !strings.HasPrefix(out, "mxcas ") || len(strings.TrimSpace(out)) == len("mxcas") {
		t.Errorf("built binary: version: exit %d, output %q; want 0 and \"mxcas <version>\"", code, out)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string // in stderr
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"help"}, 0, ""},
		{[]string{"fsck", "-nosuchflag"}, 2, "nosuchflag"},
		{[]string{"backup", "-config", "/nonexistent/mxcas.toml"}, 2, "nonexistent"},
	}
	for _, tt := range tests {
		code, _, stderr := runMain(t, tt.args...)
		if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
			t.Errorf("mxcas %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, tt.wantCode, tt.wantErr)
		}
	}
}

func TestBackupNeedsOneDest(t *testing.T) {
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"))
	for _, args := range [][]string{{"backup", "-config", cfg}, {"backup", "-config", cfg, "a", "b"}} {
		if code, _, stderr := runMain(t, args...); code != 2 || !strings.Contains(stderr, "usage") {
			t.Errorf("mxcas %q: exit %d, stderr %q; want 2 and usage", args, code, stderr)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string // added to [server], after data_dir (line 2) and listen (line 3)
		want  []string // in stderr
	}{
		{"unknown key", []string{"bogus = 1"}, []string{"bogus", ":4:", "unknown key"}},
		{"negative max_upload_bytes", []string{"max_upload_bytes = -1"}, []string{"max_upload_bytes", ":4:", "must be positive"}},
		{"public admin_listen", []string{`admin_listen = "0.0.0.0:0"`}, []string{"admin_listen", ":4:", "loopback"}},
		{"short gc_grace", []string{"", "[storage]", `gc_grace = "10s"`}, []string{"gc_grace", ":6:"}},
		// The message names the line and the value but not the key (config.Parse
		// drops toml.ParseError.LastKey); the line is enough to find it.
		{"bad duration", []string{"[storage]", `gc_grace = "soon"`}, []string{":5:", `"soon"`}},
		{"syntax", []string{"max_upload_bytes = "}, []string{":4:"}},
		{"wrong type", []string{`max_upload_bytes = "lots"`}, []string{"max_upload_bytes"}},
		{"bad thumbnail method", []string{"[thumbnails]", `sizes = [{width = 32, height = 32, method = "zoom"}]`}, []string{"thumbnails.sizes", ":5:", `"zoom"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			cfg := writeConfig(t, data, tt.lines...)
			for _, cmd := range [][]string{{"fsck"}, {"gc"}, {"backup", "-config", cfg, t.TempDir()}, {"serve"}} {
				args := cmd
				if len(cmd) == 1 {
					args = []string{cmd[0], "-config", cfg}
				}
				code, _, stderr := runMain(t, args...)
				if code != 2 {
					t.Errorf("mxcas %s: exit %d, want 2; stderr %q", cmd[0], code, stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("mxcas %s: stderr %q does not contain %q", cmd[0], stderr, w)
					}
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("a bad configuration created the data directory (stat: %v)", err)
			}
		})
	}
}

// The example in the brief: the unknown key on line 3 of a file with no
// listen line.
func TestConfigUnknownKeyLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mxcas.toml")
	text := fmt.Sprintf("[server]\ndata_dir = %q\nbogus = 1\n", filepath.Join(t.TempDir(), "data"))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runMain(t, "fsck", "-config", path)
	if code != 2 || !strings.Contains(stderr, "bogus") || !strings.Contains(stderr, ":3:") {
		t.Errorf("exit %d, stderr %q; want 2 naming bogus at :3:", code, stderr)
	}
}
