package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// ageChunks sets every chunk file's mtime past the GC grace period, and
// returns how many there are.
func ageChunks(t *testing.T, data string) int {
	t.Helper()
	old := time.Now().Add(-3 * time.Hour)
	n := 0
	err := filepath.WalkDir(filepath.Join(data, "cas"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		return os.Chtimes(path, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countChunks counts the chunk files of the store in data.
func countChunks(t *testing.T, data string) int {
	t.Helper()
	n := 0
	for p := range testkit.Tree(t, filepath.Join(data, "cas")) {
		if len(filepath.Base(p)) == 64 {
			n++
		}
	}
	return n
}

func storeBodies() map[string][]byte {
	return map[string][]byte{"a": content(20, 300<<10), "b": content(21, 2<<20), "c": content(22, 5000)}
}

// newStoredMedia writes a config for a fresh data directory, uploads
// bodies into it and returns the directory and the config's path.
func newStoredMedia(t *testing.T, bodies map[string][]byte) (data, cfg string) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	cfg = writeConfig(t, data)
	uploadMedia(t, data, bodies)
	return data, cfg
}

// With its index removed, or an empty index directory in its place (an
// unmounted volume), no command opens the store: fsck, gc and backup exit 2
// and serve exits 1, each saying the index is missing, and the store is
// left exactly as it was (no chunk deleted, no index created).
func TestLostIndexRefused(t *testing.T) {
	mxcasBinary(t) // built before the deadline starts
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	for _, emptyDir := range []bool{false, true} {
		data, cfg := newStoredMedia(t, storeBodies())
		chunks := ageChunks(t, data)
		if err := os.RemoveAll(filepath.Join(data, "index")); err != nil {
			t.Fatal(err)
		}
		if emptyDir {
			if err := os.Mkdir(filepath.Join(data, "index"), 0o750); err != nil {
				t.Fatal(err)
			}
		}
		before := testkit.Tree(t, data)
		dest := filepath.Join(t.TempDir(), "backup")
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"fsck", "-config", cfg}, 2},
			{[]string{"gc", "-config", cfg}, 2},
			{[]string{"gc", "-config", cfg, "-force"}, 2},
			{[]string{"backup", "-config", cfg, dest}, 2},
			{[]string{"serve", "-config", cfg}, 1},
		} {
			code, out, stderr := runBinary(t, ctx, c.args...)
			if code != c.code || !strings.Contains(stderr, "index is missing") || !strings.Contains(stderr, data) {
				t.Errorf("index dir empty %v: mxcas %s: exit %d, want %d and an error naming %s and the missing index\nstdout:\n%s\nstderr:\n%s",
					emptyDir, strings.Join(c.args, " "), code, c.code, data, out, stderr)
			}
		}
		if n := countChunks(t, data); n != chunks {
			t.Errorf("index dir empty %v: %d of %d chunk files left", emptyDir, n, chunks)
		}
		testkit.SameTree(t, data, before)
		testkit.SameTree(t, dest, nil)
	}
}

// fsck, gc and backup never create a store: on a missing data_dir, or one
// holding other files, they exit 2 and change nothing. serve refuses a
// non-empty directory that is not a store, naming what is in it, and
// creates a store in an empty one (a fresh volume's lost+found allowed).
func TestOnlyServeCreatesStore(t *testing.T) {
	mxcasBinary(t) // built before the deadline starts
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	root := t.TempDir()
	missing := filepath.Join(root, "missing")
	foreign := filepath.Join(root, "foreign")
	for p, c := range map[string]string{"notes.txt": "mine", "tmp/precious": "keep"} {
		os.MkdirAll(filepath.Join(foreign, filepath.Dir(p)), 0o750)
		if err := os.WriteFile(filepath.Join(foreign, p), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, data := range []string{missing, foreign} {
		cfg := writeConfig(t, data)
		before := testkit.Tree(t, data)
		dest := filepath.Join(t.TempDir(), "backup")
		for _, args := range [][]string{{"fsck", "-config", cfg}, {"gc", "-config", cfg}, {"backup", "-config", cfg, dest}} {
			code, out, stderr := runBinary(t, ctx, args...)
			if code != 2 || !strings.Contains(stderr, "no mxcas store") || !strings.Contains(stderr, data) {
				t.Errorf("mxcas %s on %s: exit %d, want 2 and \"no mxcas store\" naming it\nstdout:\n%s\nstderr:\n%s",
					args[0], data, code, out, stderr)
			}
		}
		testkit.SameTree(t, data, before)
		testkit.SameTree(t, dest, nil)
	}

	cfg := writeConfig(t, foreign)
	before := testkit.Tree(t, foreign)
	code, _, stderr := runBinary(t, ctx, "serve", "-config", cfg)
	if code != 1 || !strings.Contains(stderr, "not empty") || !strings.Contains(stderr, "notes.txt") {
		t.Errorf("serve in a directory of other files: exit %d, want 1 and an error naming notes.txt\n%s", code, stderr)
	}
	testkit.SameTree(t, foreign, before)

	volume := filepath.Join(root, "volume")
	if err := os.MkdirAll(filepath.Join(volume, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, ctx, writeConfig(t, volume))
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve on an empty volume: exit %d\n%s", code, srv.log)
	}
	if _, err := os.Stat(filepath.Join(volume, "FORMAT")); err != nil {
		t.Errorf("serve in an empty directory created no store: %v", err)
	}
}

// replaceIndex swaps the index of the (closed) store in data for an empty
// one, as a lost index replaced by a fresh one looks.
func replaceIndex(t *testing.T, data string) {
	t.Helper()
	blank := filepath.Join(t.TempDir(), "blank")
	st, err := media.Open(media.Options{Dir: blank, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(data, "index")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(blank, "index"), filepath.Join(data, "index")); err != nil {
		t.Fatal(err)
	}
}

// gc over an index that knows none of the chunks refuses (exit 2, nothing
// deleted), locally and through a running server, and deletes them with
// -force.
func TestGCRefusesMassDelete(t *testing.T) {
	mxcasBinary(t) // built before the deadline starts
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	data, cfg := newStoredMedia(t, storeBodies())
	replaceIndex(t, data)
	chunks := ageChunks(t, data)

	code, out, stderr := runBinary(t, ctx, "gc", "-config", cfg)
	if code != 2 || !strings.Contains(stderr, "gc refused") || !strings.Contains(stderr, "-force") {
		t.Errorf("gc over an empty index: exit %d, want 2 and \"gc refused\" pointing at -force\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if n := countChunks(t, data); n != chunks {
		t.Fatalf("refused gc left %d of %d chunk files", n, chunks)
	}

	srv := startServer(t, ctx, cfg)
	code, out, stderr = runBinary(t, ctx, "gc", "-config", cfg)
	if code != 2 || !strings.Contains(stderr, "gc refused") || !strings.Contains(stderr, "asking it") {
		t.Errorf("gc through the server: exit %d, want 2 and \"gc refused\"\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if n := countChunks(t, data); n != chunks {
		t.Fatalf("refused gc through the server left %d of %d chunk files", n, chunks)
	}
	code, out, stderr = runBinary(t, ctx, "gc", "-config", cfg, "-force")
	if code != 0 || !strings.Contains(stderr, "asking it") {
		t.Errorf("gc -force through the server: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if n := countChunks(t, data); n != 0 {
		t.Errorf("gc -force left %d of %d chunk files", n, chunks)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("server exit %d\n%s", code, srv.log)
	}
}

// backup refuses a destination holding other files (a tmp/ with precious
// files, dotfiles) and leaves every one of them as it was; it backs up into
// a missing or empty directory and, incrementally, into an earlier backup.
func TestBackupDestinationChecked(t *testing.T) {
	mxcasBinary(t) // built before the deadline starts
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	bodies := storeBodies()
	_, cfg := newStoredMedia(t, bodies)

	root := t.TempDir()
	foreign := filepath.Join(root, "foreign")
	for p, c := range map[string]string{"tmp/precious/deep": "keep me", "tmp/LOCK": "x", ".dotfile": "keep",
		".precious-42": "keep", "other": "keep"} {
		os.MkdirAll(filepath.Join(foreign, filepath.Dir(p)), 0o750)
		if err := os.WriteFile(filepath.Join(foreign, p), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := testkit.Tree(t, foreign)
	code, out, stderr := runBinary(t, ctx, "backup", "-config", cfg, foreign)
	if code != 2 || !strings.Contains(stderr, "backup destination refused") || !strings.Contains(stderr, "other") {
		t.Errorf("backup into a directory of other files: exit %d, want 2 and a refusal naming its files\nstdout:\n%s\nstderr:\n%s",
			code, out, stderr)
	}
	testkit.SameTree(t, foreign, before)

	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{filepath.Join(root, "missing"), empty} {
		for i, want := range []string{"backup complete", "copied 0 chunks"} { // the second one is incremental
			code, out, stderr := runBinary(t, ctx, "backup", "-config", cfg, dest)
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("backup %d into %s: exit %d, want 0 and %q\nstdout:\n%s\nstderr:\n%s", i+1, dest, code, want, out, stderr)
			}
		}
		checkStore(t, dest, bodies)
	}
}
