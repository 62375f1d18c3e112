// The tests of synapse-import run the built tool as a user would: against a
// Synapse database (SQLite, or a private PostgreSQL cluster) and a generated
// media_store, then look at the mxcas store it fills with the media package
// and through a running mxcas.
package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/bench/serverproc"
	"github.com/mxcas/mxcas/media"
)

// binDir holds the binaries built for this test binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "synapse-import-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	stopPG()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	rootOnce sync.Once
	root     string
	rootErr  error

	toolOnce sync.Once
	toolBin  string
	toolErr  error

	mxcasOnce sync.Once
	mxcasBin  string
	mxcasErr  error
)

// moduleRoot returns the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			rootErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			rootErr = errors.New("not inside the mxcas module")
			return
		}
		root = filepath.Dir(gomod)
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return root
}

// tool returns the path of synapse-import, built once per test binary.
func tool(t *testing.T) string {
	t.Helper()
	dir := moduleRoot(t)
	toolOnce.Do(func() {
		toolBin = filepath.Join(binDir, "synapse-import")
		cmd := exec.Command("go", "build", "-o", toolBin, "./tools/synapse-import")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("go build ./tools/synapse-import: %w\n%s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolBin
}

// mxcas returns the path of the mxcas binary, built once per test binary.
func mxcas(t *testing.T) string {
	t.Helper()
	moduleRoot(t) // serverproc.Build runs go env GOMOD in our directory too
	mxcasOnce.Do(func() { mxcasBin, mxcasErr = serverproc.Build(binDir) })
	if mxcasErr != nil {
		t.Fatal(mxcasErr)
	}
	return mxcasBin
}

// result is what one run of the tool did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runTool runs synapse-import with args and, when env is not nil, these
// extra environment variables.
func runTool(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("synapse-import %s: did not finish within 3 minutes\n%s", strings.Join(args, " "), r)
	case errors.As(err, &exit) && exit.Exited():
		r.code = exit.ExitCode()
	default:
		t.Fatalf("synapse-import %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// importArgs returns the flags of an import of f from db into the store of
// config file cfg, then extra.
func importArgs(cfg string, f *fixture, db *synapseDB, extra ...string) []string {
	args := []string{"-config", cfg, "-serverName", serverName, "-mediaStore", f.store}
	args = append(args, db.flags...)
	return append(args, extra...)
}

// writeConfig writes an mxcas configuration with its data in dataDir (which
// need not exist) and returns its path.
func writeConfig(t *testing.T, dataDir string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mxcas.toml")
	conf := fmt.Sprintf(`[server]
data_dir = %q

[[homeserver]]
name = %q
client_api = "http://127.0.0.1:9"
static_tokens = { %q = %q }
`, dataDir, serverName, adminToken, adminUser)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// summary is the tool's last line.
type summary struct {
	imported, skipped, failed, nullLength, bytesRead, bytesStored int64
	dedup                                                         string
}

var summaryRE = regexp.MustCompile(`(?m)^summary: imported=(\d+) skipped=(\d+) failed=(\d+) null_length=(\d+) ` +
	`bytes_read=(\d+) bytes_stored=(\d+) dedup=(0|\d+\.\d{3})$`)

// parseSummary finds the one summary line of r and checks that its dedup
// agrees with its byte counts.
func parseSummary(t *testing.T, r result) summary {
	t.Helper()
	m := summaryRE.FindAllStringSubmatch(r.stdout, -1)
	if len(m) != 1 {
		t.Fatalf("want exactly one summary line on stdout, found %d\n%s", len(m), r)
	}
	n := make([]int64, 6)
	for i := range n {
		n[i], _ = strconv.ParseInt(m[0][i+1], 10, 64)
	}
	s := summary{n[0], n[1], n[2], n[3], n[4], n[5], m[0][7]}
	want := "0"
	if s.bytesStored > 0 {
		want = fmt.Sprintf("%.3f", float64(s.bytesRead)/float64(s.bytesStored))
	}
	if s.dedup != want {
		t.Errorf("dedup=%s, want %s (bytes_read=%d bytes_stored=%d)", s.dedup, want, s.bytesRead, s.bytesStored)
	}
	return s
}

// checkCounts compares the counts of s with want, ignoring bytesStored
// and dedup, and bytesRead when want's is negative.
func checkCounts(t *testing.T, r result, got, want summary) {
	t.Helper()
	if got.imported != want.imported || got.skipped != want.skipped || got.failed != want.failed ||
		got.nullLength != want.nullLength || (want.bytesRead >= 0 && got.bytesRead != want.bytesRead) {
		t.Errorf("summary: imported=%d skipped=%d failed=%d null_length=%d bytes_read=%d\n"+
			"want:    imported=%d skipped=%d failed=%d null_length=%d bytes_read=%d\n%s",
			got.imported, got.skipped, got.failed, got.nullLength, got.bytesRead,
			want.imported, want.skipped, want.failed, want.nullLength, want.bytesRead, r)
	}
}

// checkStore opens the store in dataDir and checks that every row of f
// the tool should have imported is there, byte-identical and with its
// metadata, and that no other row is.
func checkStore(t *testing.T, dataDir string, rows []mediaRow) {
	t.Helper()
	st, err := media.Open(media.Options{Create: true, Dir: dataDir})
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	defer st.Close()
	for _, row := range rows {
		m := row.mxc()
		if !row.importable() || row.missing {
			if rec, err := st.Stat(m); !errors.Is(err, media.ErrNotFound) {
				t.Errorf("%s: Stat = %+v, %v; want ErrNotFound", m, rec, err)
			}
			continue
		}
		r, rec, err := st.Open(m)
		if err != nil {
			t.Errorf("%s: %v", m, err)
			continue
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Errorf("%s: read: %v", m, err)
		} else if !bytes.Equal(got, row.content) {
			t.Errorf("%s: content differs (%d bytes, want %d)", m, len(got), len(row.content))
		}
		want := media.Media{
			MXC: m, Object: rec.Object, Size: int64(len(row.content)),
			ContentType: row.typ, UploadName: row.name, Uploader: row.user, Created: row.created,
			Quarantined: row.quarantined, Remote: row.origin != "", Protected: row.protected, LastAccess: row.lastAccess,
		}
		if row.quarantined {
			want.QuarantinedBy = adminUser
		}
		if row.origin != "" {
			want.Uploader = rec.Uploader // remote_media_cache does not say
		}
		if rec != want {
			t.Errorf("%s: record\n got %+v\nwant %+v", m, rec, want)
		}
	}
}

// listing describes every file and directory under dir: its mode, and for
// files its size and modification time (but for lock files). It is nil when
// dir does not exist.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	l := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			l[rel] = fi.Mode().String()
		case d.Name() == "LOCK":
			// A lock file holds no data; taking the lock may touch it.
			l[rel] = fmt.Sprintf("%s %d", fi.Mode(), fi.Size())
		default:
			l[rel] = fmt.Sprintf("%s %d %s", fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func diffListings(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "removed "+k)
		} else if w != v {
			d = append(d, fmt.Sprintf("changed %s: %s -> %s", k, v, w))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	return d
}

// startMxcas runs mxcas serve on dataDir with homeserver serverName, whose
// admin has the static token adminToken; it stops at the end of the test.
func startMxcas(t *testing.T, dataDir string) *serverproc.Child {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	extra := fmt.Sprintf(`[[homeserver]]
name = %q
client_api = "http://127.0.0.1:9"
static_tokens = { %q = %q }
`, serverName, adminToken, adminUser)
	c, err := serverproc.StartMxcas(ctx, t.TempDir(), mxcas(t), dataDir, extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			log, _ := os.ReadFile(c.LogPath)
			t.Errorf("mxcas serve: %v\n%s", err, log)
		}
	})
	return c
}

// get sends GET path to the server at addr with Host serverName and, when
// token is not empty, the token.
func get(t *testing.T, addr, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = serverName
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	cl := &http.Client{Timeout: time.Minute}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, body
}

// checkDownload checks one 200 download of row.
func checkDownload(t *testing.T, what string, row mediaRow, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s: status %d, want 200: %s", what, resp.StatusCode, body)
		return
	}
	if !bytes.Equal(body, row.content) {
		t.Errorf("%s: body differs (%d bytes, want %d)", what, len(body), len(row.content))
	}
	if got := resp.Header.Get("Content-Type"); got != row.typ {
		t.Errorf("%s: Content-Type %q, want %q", what, got, row.typ)
	}
	cd := resp.Header.Get("Content-Disposition")
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		t.Errorf("%s: Content-Disposition %q: %v", what, cd, err)
		return
	}
	if got := params["filename"]; got != row.name {
		t.Errorf("%s: Content-Disposition %q names %q, want %q", what, cd, got, row.name)
	}
	if row.name != "" && !isASCII(row.name) && !strings.Contains(strings.ToLower(cd), "filename*=utf-8''") {
		t.Errorf("%s: Content-Disposition %q: want the non-ASCII name as filename*=utf-8''...", what, cd)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
