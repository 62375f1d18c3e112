package media_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// writeTree creates files (path -> content; a path ending in / is a
// directory) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o750); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Without Create, Open creates nothing: not in a missing directory, not in
// an empty one, not in one holding other files. With Create, a missing or
// empty directory (lost+found, cache/ and tmp/LOCK allowed) becomes a store, and a directory
// holding other files is refused, named and untouched.
func TestOpenCreatesOnlyWhenAsked(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "missing")
	empty := filepath.Join(root, "empty")
	foreign := filepath.Join(root, "foreign")
	writeTree(t, root, map[string]string{"empty/": "", "foreign/notes.txt": "mine", "foreign/tmp/precious": "keep",
		"foreign/.dotfile-123": "keep"})
	for _, dir := range []string{missing, empty, foreign} {
		before := testkit.Tree(t, dir)
		for _, ro := range []bool{false, true} {
			s, err := media.Open(media.Options{Dir: dir, ReadOnly: ro, Logger: quietLogger()})
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, media.ErrNoStore) {
				t.Errorf("Open(%s, read-only %v) without Create = %v, want ErrNoStore", dir, ro, err)
			}
		}
		testkit.SameTree(t, dir, before)
		if before == nil {
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open without Create created %s", dir)
			}
		}
	}

	before := testkit.Tree(t, foreign)
	s, err := media.Open(media.Options{Dir: foreign, Create: true, Logger: quietLogger()})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, media.ErrNotEmpty) || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("Open(Create) of a directory with other files = %v, want ErrNotEmpty naming notes.txt", err)
	}
	testkit.SameTree(t, foreign, before)

	volume := filepath.Join(root, "volume")
	cached := filepath.Join(root, "cached") // the chunk cache of an object store, opened first
	writeTree(t, root, map[string]string{"volume/lost+found/": "", "cached/cache/": "", "cached/tmp/LOCK": ""})
	for _, dir := range []string{missing, empty, volume, cached} {
		s := openStore(t, media.Options{Dir: dir, Create: true})
		upload(t, s, "A", "", randBytes(1, 1000))
		closeStore(t, s)
		s = openStore(t, media.Options{Dir: dir}) // a store now: no Create needed
		readMedia(t, s, "A")
		closeStore(t, s)
	}
}

// A creation interrupted before FORMAT was written (cas/, tmp/LOCK and
// index/ in place) is finished by the next Open with Create, not refused.
func TestOpenFinishesInterruptedCreation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Dir: dir, Create: true})
	closeStore(t, s)
	if err := os.Remove(filepath.Join(dir, "FORMAT")); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, media.Options{Dir: dir, Create: true})
	upload(t, s, "A", "", randBytes(2, 1000))
	closeStore(t, s)
	if _, err := os.Stat(filepath.Join(dir, "FORMAT")); err != nil {
		t.Errorf("no FORMAT after the creation was finished: %v", err)
	}
	// A store that holds chunks is no interrupted creation: without its
	// FORMAT it is refused, its chunk files kept.
	if err := os.Remove(filepath.Join(dir, "FORMAT")); err != nil {
		t.Fatal(err)
	}
	before := testkit.Tree(t, dir)
	if s, err := media.Open(media.Options{Dir: dir, Create: true, Logger: quietLogger()}); !errors.Is(err, media.ErrNotEmpty) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open(Create) of a store without FORMAT but with chunks = %v, want ErrNotEmpty", err)
	}
	testkit.SameTree(t, dir, before)
}

// A store whose index directory is gone, or empty (a volume not mounted),
// refuses to open, whatever the options, and nothing is created or removed.
func TestOpenRefusesLostIndex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(idx string) error
	}{
		{"removed", os.RemoveAll},
		{"empty", func(idx string) error {
			if err := os.RemoveAll(idx); err != nil {
				return err
			}
			return os.Mkdir(idx, 0o750)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newStore(t, nil)
			upload(t, s, "A", "", randBytes(3, 100_000))
			closeStore(t, s)
			if err := tc.damage(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
			before := testkit.Tree(t, dir)
			for _, o := range []media.Options{{}, {Create: true}, {ReadOnly: true}} {
				o.Dir, o.Logger = dir, quietLogger()
				s, err := media.Open(o)
				if err == nil {
					s.Close()
				}
				if !errors.Is(err, media.ErrIndexMissing) || !strings.Contains(err.Error(), dir) {
					t.Errorf("Open(%+v) = %v, want ErrIndexMissing naming %s", o, err, dir)
				}
			}
			testkit.SameTree(t, dir, before)
		})
	}
}

// replaceIndex swaps the index of the closed store in dir for a fresh,
// empty one: what a lost index looked like once mxcas had replaced it.
func replaceIndex(t testing.TB, dir string) {
	t.Helper()
	blank := filepath.Join(t.TempDir(), "blank")
	s := openStore(t, media.Options{Dir: blank, Create: true, Chunker: smallParams})
	closeStore(t, s)
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(blank, "index"), filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
}

// GC refuses a sweep of most chunks that the index does not know (a lost
// or replaced index), deleting nothing, and does it when forced; deleting
// most media in a healthy store is never refused.
func TestGCSanityCheck(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, dir := newStore(t, clk)
	for i := range 10 {
		upload(t, s, string(rune('a'+i)), "", randBytes(uint64(10+i), 100_000))
	}
	closeStore(t, s)
	replaceIndex(t, dir)
	clk.Advance(2 * time.Hour) // every chunk older than the grace period
	s = openStore(t, media.Options{Dir: dir, Now: clk.Now})
	before := chunkFiles(t, dir)
	st, err := s.GC(ctx)
	if !errors.Is(err, media.ErrGCRefused) || st.ChunksDeleted != 0 {
		t.Errorf("GC over an empty index = %+v, %v; want ErrGCRefused and nothing deleted", st, err)
	}
	if after := chunkFiles(t, dir); len(after) != len(before) {
		t.Errorf("refused GC left %d of %d chunk files", len(after), len(before))
	}
	// A few uploads into the new index do not make it trustworthy.
	upload(t, s, "new", "", randBytes(99, 10_000))
	if _, err := s.GC(ctx); !errors.Is(err, media.ErrGCRefused) {
		t.Errorf("GC over a nearly empty index = %v, want ErrGCRefused", err)
	}
	st, err = s.RunGC(ctx, media.GCOptions{Force: true})
	if err != nil || st.ChunksDeleted != len(before) {
		t.Errorf("forced GC = %+v, %v; want all %d old chunks deleted", st, err, len(before))
	}
	checkContent(t, s, "new", randBytes(99, 10_000))

	// A healthy store where nearly everything was deleted: GC goes ahead.
	s2, dir2 := newStore(t, clk)
	for i := range 10 {
		upload(t, s2, string(rune('a'+i)), "", randBytes(uint64(30+i), 100_000))
	}
	for i := range 9 {
		if err := s2.Delete(mxc(string(rune('a' + i)))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Hour)
	all := len(chunkFiles(t, dir2))
	st, err = s2.GC(ctx)
	if err != nil || st.ChunksDeleted < all*8/10 || st.ChunksUnknown != 0 {
		t.Errorf("GC after deleting 9 of 10 media = %+v, %v; want about 90%% of %d chunks deleted, none unknown", st, err, all)
	}
	checkContent(t, s2, "j", randBytes(39, 100_000))
	// And after deleting everything.
	if err := s2.Delete(mxc("j")); err != nil {
		t.Fatal(err)
	}
	if st, err = s2.GC(ctx); err != nil || len(chunkFiles(t, dir2)) != 0 {
		t.Errorf("GC after deleting every media = %+v, %v; want every chunk deleted", st, err)
	}
}

// Backup refuses a destination that is not empty and not a store of the
// same format, before touching anything in it; it still backs up into a
// missing or empty directory and into an earlier backup.
func TestBackupRefusesForeignDest(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t, nil)
	data := randBytes(50, 200_000)
	upload(t, s, "A", "", data)

	root := t.TempDir()
	foreign := filepath.Join(root, "foreign")
	writeTree(t, foreign, map[string]string{
		"tmp/precious/deep": "keep me", "tmp/LOCK": "not ours", ".dotfile": "keep", ".precious-42": "keep",
		"other": "keep", "cas/": "",
	})
	otherFormat := filepath.Join(root, "otherformat")
	o := openStore(t, media.Options{Dir: otherFormat, Create: true}) // default chunker params
	closeStore(t, o)
	file := filepath.Join(root, "file")
	writeTree(t, root, map[string]string{"file": "a file"})
	for _, dest := range []string{foreign, otherFormat, file, dir, filepath.Join(dir, "backup")} {
		before := testkit.Tree(t, dest)
		beforeRoot := testkit.Tree(t, root)
		st, err := s.Backup(ctx, dest)
		if !errors.Is(err, media.ErrBackupDest) || st.ChunksCopied != 0 {
			t.Errorf("Backup(%s) = %+v, %v; want ErrBackupDest", dest, st, err)
		}
		if dest != dir {
			testkit.SameTree(t, dest, before)
		}
		testkit.SameTree(t, root, beforeRoot)
	}

	for _, dest := range []string{filepath.Join(root, "missing"), filepath.Join(root, "empty"), filepath.Join(root, "volume")} {
		writeTree(t, root, map[string]string{"empty/": "", "volume/lost+found/": ""})
		if _, err := s.Backup(ctx, dest); err != nil {
			t.Fatalf("Backup(%s): %v", dest, err)
		}
		upload(t, s, "B"+filepath.Base(dest), "", randBytes(51, 50_000))
		st, err := s.Backup(ctx, dest) // incremental, into the earlier backup
		if err != nil || st.ChunksPresent == 0 {
			t.Fatalf("second Backup(%s) = %+v, %v; want chunks already present", dest, st, err)
		}
		cp := openStore(t, media.Options{Dir: dest, Chunker: smallParams})
		checkContent(t, cp, "A", data)
		closeStore(t, cp)
	}
}
