package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
	"github.com/mxcas/mxcas/testkit"
)

const server = "a.test"

// env is a data directory and a configuration file naming it, with a.test
// as the served homeserver.
type env struct {
	data, config string
}

func newEnv(t *testing.T) env {
	t.Helper()
	e := env{data: filepath.Join(t.TempDir(), "data"), config: filepath.Join(t.TempDir(), "mxcas.toml")}
	text := fmt.Sprintf("[server]\ndata_dir = %q\n\n[[homeserver]]\nname = \"A.test\"\nclient_api = \"http://127.0.0.1:8008\"\n", e.data)
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// open opens the store as the server would (no other process may hold
// it), with the clock now (nil: time.Now).
func (e env) open(t *testing.T, now func() time.Time) *media.Store {
	t.Helper()
	st, err := media.Open(media.Options{Dir: e.data, Create: true, Now: now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Local:  func(s string) bool { return strings.EqualFold(s, server) }, Thumbnails: media.ThumbnailOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// gdpr runs the command in process.
func gdpr(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func content(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func mxcOf(t *testing.T, id string) matrix.MXC {
	t.Helper()
	m, err := matrix.NewMXC(server, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// item is one media of a test.
type item struct {
	id, uploader, name, ctype string
	body                      []byte
}

// filledEnv is newEnv with items uploaded.
func filledEnv(t *testing.T, items []item) env {
	t.Helper()
	e := newEnv(t)
	st := e.open(t, nil)
	defer st.Close()
	fill(t, st, items)
	return e
}

// fill uploads items into st.
func fill(t *testing.T, st *media.Store, items []item) {
	t.Helper()
	for _, it := range items {
		info := media.UploadInfo{MXC: mxcOf(t, it.id), ContentType: it.ctype, UploadName: it.name, Uploader: it.uploader, Size: int64(len(it.body))}
		if _, err := st.Upload(context.Background(), info, bytes.NewReader(it.body)); err != nil {
			t.Fatalf("upload %s: %v", it.id, err)
		}
	}
}

// aliceAndBob are alice's media (one multi-chunk, one with the bytes of
// bob's) and bob's one.
func aliceAndBob() (alice []item, bob item) {
	bob = item{"bob1", "@bob:a.test", "b.bin", "application/octet-stream", content(9, 300<<10)}
	alice = []item{
		{"a1", "@alice:a.test", "cat.png", "image/png", content(1, 5000)},
		{"a2", "@alice:a.test", "", "text/plain", []byte("hello")},
		{"a3", "@alice:a.test", "big.bin", "application/octet-stream", content(3, 1<<20)},
		{"a4", "@alice:a.test", "same.bin", "application/octet-stream", bob.body},
		{"a5", "@alice:a.test", "empty", "application/octet-stream", nil},
	}
	return alice, bob
}

// summary returns the fields of the summary line of out.
func summary(t *testing.T, out string) map[string]string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "summary: "); ok {
			f := map[string]string{}
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				f[k] = v
			}
			return f
		}
	}
	t.Fatalf("no summary line in %q", out)
	return nil
}

// wantSummary checks the given fields of out's summary line.
func wantSummary(t *testing.T, out string, want map[string]string) {
	t.Helper()
	got := summary(t, out)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("summary %s=%s, want %s (line: %s)", k, got[k], v, strings.TrimSpace(out))
		}
	}
}

// treeState lists every file under dir with its size and modification
// time: what a read-only run must leave as it is.
func treeState(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil || d.Name() == "LOCK" { // a lock's mtime changes as it is taken
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// casFiles lists the chunk files of the store in dir.
func casFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, l := range treeState(t, filepath.Join(dir, "cas")) {
		f := strings.Fields(l)
		out = append(out, f[0]+" "+f[1])
	}
	return out
}

// TestExportDeleteImport: alice's media exported, deleted and collected
// comes back with -allowDeleted (bytes, IDs, names, types, uploaders,
// creation times), the content shared with bob stored once; without the
// flag every media is refused; a second run imports nothing; -verify
// passes, and when media is missing fails and changes nothing.
func TestExportDeleteImport(t *testing.T) {
	e := newEnv(t)
	alice, bob := aliceAndBob()
	st := e.open(t, nil)
	fill(t, st, append(slices.Clone(alice), bob, item{"aq", "@alice:a.test", "q.bin", "text/plain", []byte("quarantined")}))
	if err := st.Quarantine(mxcOf(t, "aq"), "@admin:a.test"); err != nil {
		t.Fatal(err)
	}
	before := map[string]media.Media{}
	for _, it := range alice {
		before[it.id], _ = st.Stat(mxcOf(t, it.id))
	}
	st.Close()
	chunksBefore := casFiles(t, e.data)

	arch := filepath.Join(t.TempDir(), "alice")
	code, out, errs := gdpr(t, "export", "-config", e.config, "-entity", "@alice:a.test", "-destination", arch, "-partSize", "65536")
	if code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errs)
	}
	if want := regexp.MustCompile(`^summary: entity=@alice:a.test media=5 bytes=\d+ parts=\d+ quarantined=1\n$`); !want.MatchString(out) {
		t.Fatalf("export output %q", out)
	}
	if n := summary(t, out)["parts"]; n == "1" || n == "2" {
		t.Errorf("parts=%s: want the media spread over several parts plus the manifest", n)
	}

	st = e.open(t, nil)
	for _, it := range alice {
		if err := st.Delete(mxcOf(t, it.id)); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	st = e.open(t, func() time.Time { return time.Now().Add(48 * time.Hour) })
	if _, err := st.RunGC(context.Background(), media.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if slices.Equal(casFiles(t, e.data), chunksBefore) {
		t.Fatal("GC removed no chunk: the test would not show the import restoring them")
	}

	code, out, errs = gdpr(t, "import", "-config", e.config, "-directory", arch)
	if code != 1 || strings.Count(errs, "refused: mxc://a.test/a") != len(alice) {
		t.Fatalf("import without -allowDeleted: exit %d, want 1 and every media refused\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"archives": "1", "imported": "0", "refused": "5"})

	code, out, errs = gdpr(t, "import", "-config", e.config, "-directory", arch, "-allowDeleted")
	if code != 0 || errs != "" {
		t.Fatalf("import -allowDeleted: exit %d\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"imported": "5", "present": "0", "refused": "0", "failed": "0"})
	st, _ = mediatest.OpenHealthy(t, e.data)
	for _, it := range alice {
		m := mxcOf(t, it.id)
		mediatest.WantContent(t, st, m, it.body)
		got, err := st.Stat(m)
		b := before[it.id]
		if err != nil || got.UploadName != b.UploadName || got.ContentType != b.ContentType || got.Uploader != b.Uploader || got.Created != b.Created {
			t.Errorf("%s: %+v (%v), want as before: %+v", it.id, got, err, b)
		}
	}
	st.Close()
	if got := casFiles(t, e.data); !slices.Equal(got, chunksBefore) {
		t.Errorf("chunk files after the import differ from before the deletion:\n%v\nwant\n%v", got, chunksBefore)
	}

	code, out, errs = gdpr(t, "import", "-config", e.config, "-directory", arch, "-allowDeleted")
	if code != 0 || errs != "" {
		t.Fatalf("second import: exit %d\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"imported": "0", "present": "5", "bytes_stored": "0"})

	code, out, errs = gdpr(t, "import", "-config", e.config, "-directory", arch, "-verify")
	if code != 0 || errs != "" {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"present": "5", "missing": "0"})

	st = e.open(t, nil)
	if err := st.Delete(mxcOf(t, "a3")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	state := treeState(t, e.data)
	code, out, errs = gdpr(t, "import", "-config", e.config, "-directory", arch, "-verify")
	if code != 1 || errs != "missing: mxc://a.test/a3: not held here\n" {
		t.Fatalf("verify with a3 deleted: exit %d, want 1 and a3 missing\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"present": "4", "missing": "1", "imported": "0"})
	if got := treeState(t, e.data); !slices.Equal(got, state) {
		t.Errorf("-verify changed the data directory:\n%v\nwant\n%v", got, state)
	}
}

// TestServerExportHasRemoteMedia: a server export holds every media of
// that origin held here, cached remote media included, and imports into
// another store as cached remote media.
func TestServerExportHasRemoteMedia(t *testing.T) {
	e := newEnv(t)
	st := e.open(t, nil)
	alice, bob := aliceAndBob()
	fill(t, st, append(alice[:1], bob))
	far, _ := matrix.NewMXC("far.test", "r1")
	body := content(7, 2000)
	info := media.ImportInfo{MXC: far, ContentType: "image/jpeg", Remote: true, Created: time.UnixMilli(1700000000000), Size: int64(len(body))}
	if _, err := st.Import(context.Background(), info, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	arch := t.TempDir()
	code, out, errs := gdpr(t, "export", "-config", e.config, "-entity", "far.test", "-destination", filepath.Join(arch, "far"))
	if code != 0 || !strings.HasPrefix(out, "summary: entity=far.test media=1 bytes=2000 parts=2 quarantined=0\n") {
		t.Fatalf("export far.test: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = gdpr(t, "export", "-config", e.config, "-entity", "a.test", "-destination", filepath.Join(arch, "local"))
	if code != 0 || !strings.Contains(out, " media=2 ") {
		t.Fatalf("export a.test: exit %d\n%s%s", code, out, errs)
	}

	other := newEnv(t)
	code, out, errs = gdpr(t, "import", "-config", other.config, "-directory", arch)
	if code != 0 || errs != "" {
		t.Fatalf("import into a new store: exit %d\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"archives": "2", "imported": "3"})
	st, _ = mediatest.OpenHealthy(t, other.data)
	defer st.Close()
	mediatest.WantContent(t, st, far, body)
	if got, err := st.Stat(far); err != nil || !got.Remote || got.ContentType != "image/jpeg" || got.Created != 1700000000000 {
		t.Errorf("far.test's media: %+v %v, want a cached remote copy", got, err)
	}
}

// TestExportRefusals: an export refuses a destination that already holds
// parts, and bad usage, writing nothing; one that fails half-way (a
// damaged chunk) removes what it wrote.
func TestExportRefusals(t *testing.T) {
	alice, _ := aliceAndBob()
	e := filledEnv(t, alice)

	dest := t.TempDir()
	if err := os.WriteFile(filepath.Join(dest, "export-part-1.tgz"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := testkit.Tree(t, dest)
	code, out, errs := gdpr(t, "export", "-config", e.config, "-entity", "@alice:a.test", "-destination", dest)
	if code != 2 || out != "" || !strings.Contains(errs, "already holds export-part-1.tgz") {
		t.Errorf("export into a directory with parts: exit %d, want 2\n%s%s", code, out, errs)
	}
	testkit.SameTree(t, dest, state)
	for _, args := range [][]string{
		{"export", "-config", e.config, "-entity", "@alice:a.test"},
		{"export", "-config", e.config, "-entity", "not a server", "-destination", dest},
		{"export", "-config", e.config, "-entity", "@alice:a.test", "-destination", dest, "-partSize", "0"},
		{"import", "-config", e.config},
		{"import", "-config", e.config, "-directory", dest, "-onlyEntity", "@nobody"},
		{"import", "-config", e.config, "-directory", t.TempDir()},
		{"purge"},
	} {
		if code, _, errs := gdpr(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, want 2 and a message; stderr %q", args, code, errs)
		}
	}

	// Every chunk file is a chunk of alice's (a3's, or a4's, which are
	// bob's bytes); the small media are inline in the index. One damaged
	// fails the export, after the media before it.
	var chunk string
	filepath.WalkDir(filepath.Join(e.data, "cas"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && chunk == "" && d.Type().IsRegular() {
			chunk = p
		}
		return err
	})
	if chunk == "" {
		t.Fatal("no chunk file to damage")
	}
	if err := os.WriteFile(chunk, []byte("HELLO"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "new")
	code, out, errs = gdpr(t, "export", "-config", e.config, "-entity", "@alice:a.test", "-destination", fresh, "-partSize", "1024")
	if code != 1 || out != "" {
		t.Errorf("export over a damaged chunk: exit %d, want 1\n%s%s", code, out, errs)
	}
	testkit.SameTree(t, fresh, nil)
}

// TestImportResumes: an import stopped half-way (here: an archive whose
// second part is missing) is finished by a run over the whole archive;
// an archive that fails as a whole is reported and the next one read.
func TestImportResumes(t *testing.T) {
	alice, _ := aliceAndBob()
	e := filledEnv(t, alice)
	arch := filepath.Join(t.TempDir(), "full")
	if code, out, errs := gdpr(t, "export", "-config", e.config, "-entity", "@alice:a.test", "-destination", arch, "-partSize", "1"); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errs)
	}
	half := t.TempDir()
	for _, n := range []string{"export-part-1.tgz", "export-part-3.tgz", "export-part-4.tgz", "export-part-5.tgz", "export-manifest.tgz"} {
		b, err := os.ReadFile(filepath.Join(arch, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(half, n), b, 0o600)
	}
	os.Mkdir(filepath.Join(half, "zz\nbroken"), 0o700)
	os.WriteFile(filepath.Join(half, "zz\nbroken", "export-part-1.tgz"), []byte("not gzip"), 0o600)

	other := newEnv(t)
	code, out, errs := gdpr(t, "import", "-config", other.config, "-directory", half)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 1 || len(lines) != 2 || lines[0] != "failed: mxc://a.test/a2: no file for it in the archive" ||
		!strings.HasPrefix(lines[1], `failed: archive "`+half+`/zz\nbroken": `) {
		t.Fatalf("import of the broken directory: exit %d, want 1, a2 failed and the broken archive reported\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"archives": "2", "imported": "4", "failed": "1"})

	code, out, errs = gdpr(t, "import", "-config", other.config, "-directory", arch)
	if code != 0 || errs != "" {
		t.Fatalf("resumed import: exit %d\n%s%s", code, out, errs)
	}
	wantSummary(t, out, map[string]string{"imported": "1", "present": "4"})
	st, _ := mediatest.OpenHealthy(t, other.data)
	defer st.Close()
	for _, it := range alice {
		mediatest.WantContent(t, st, mxcOf(t, it.id), it.body)
	}
}
