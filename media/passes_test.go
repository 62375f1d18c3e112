package media_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// TestPassesSameResults: with the pass budget lowered to a handful of
// hashes, fsck and GC work in many passes over ranges of hashes, and on a
// store with live, duplicate and deleted media, thumbnails live and dead,
// old and young unreferenced chunks, corrupt and missing chunks and
// recorded damage they give the same reports and stats, and leave the
// same chunk files, as in one pass.
func TestPassesSameResults(t *testing.T) {
	clk := newClock()
	dir := buildMixedStore(t, clk)
	dir2 := filepath.Join(t.TempDir(), "data")
	copyStore(t, dir, dir2)

	one := fsckGCFsck(t, dir, clk.Now, 1<<19)
	many := fsckGCFsck(t, dir2, clk.Now, 3)
	if one.passes != 3 {
		t.Errorf("default budget: %d passes, want 1 each for fsck, GC, fsck", one.passes)
	}
	if many.passes < 10*one.passes {
		t.Errorf("budget 3: %d passes, want many more than the %d of one pass each", many.passes, one.passes)
	}
	if !reflect.DeepEqual(many.before, one.before) {
		t.Errorf("fsck in passes:\n%+v\nin one pass:\n%+v", many.before, one.before)
	}
	if many.gc != one.gc {
		t.Errorf("GC in passes: %+v\nin one pass: %+v", many.gc, one.gc)
	}
	if !reflect.DeepEqual(many.after, one.after) {
		t.Errorf("fsck after GC in passes:\n%+v\nin one pass:\n%+v", many.after, one.after)
	}
	if !reflect.DeepEqual(many.files, one.files) {
		t.Errorf("GC in passes left %d chunk files, in one pass %d", len(many.files), len(one.files))
	}

	// The store had all it should, or the comparison proves little.
	b, g := one.before, one.gc
	kinds := make(map[string]int)
	for _, p := range b.Problems {
		kinds[p.Kind]++
	}
	if kinds[media.ProblemCorruptChunk] == 0 || kinds[media.ProblemMissingChunk] < 2 ||
		kinds[media.ProblemRecordedDamage] < 2 || b.Orphans == 0 || len(b.Damaged) == 0 {
		t.Errorf("fsck before GC found too little: problems %v, orphans %d, damaged %q", kinds, b.Orphans, b.Damaged)
	}
	if g.ObjectsDeleted < 3 || g.ChunksDeleted == 0 || g.ChunksYoung < 2 || g.ChunksUnknown == 0 || g.Chunks == 0 {
		t.Errorf("GC found too little: %+v", g)
	}
	if len(one.after.Problems) >= len(b.Problems) {
		t.Errorf("GC cleared no recorded damage or dead missing chunk: %d problems before, %d after", len(b.Problems), len(one.after.Problems))
	}
}

// fsckResults is what fsckGCFsck found.
type fsckResults struct {
	before, after media.FsckReport
	gc            media.GCStats
	files         map[cas.Hash]int64
	passes        int64
}

// fsckGCFsck runs fsck, GC and fsck again on the store in dir with the
// pass budget set to budget.
func fsckGCFsck(t *testing.T, dir string, now func() time.Time, budget int) fsckResults {
	t.Helper()
	defer media.SetPassBudget(budget)()
	s := openStore(t, media.Options{Dir: dir, Chunker: smallParams, Now: now})
	defer closeStore(t, s)
	start := media.PassesRun()
	var r fsckResults
	r.before = fsck(t, s)
	r.gc = gc(t, s)
	r.after = fsck(t, s)
	r.files = chunkFiles(t, dir)
	r.passes = media.PassesRun() - start
	return r
}

// buildMixedStore makes a closed store of every kind of content fsck and
// GC tell apart, its chunk files old (past the grace at clk's now) but
// for a few young ones.
func buildMixedStore(t *testing.T, clk interface{ Now() time.Time }) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now})
	ctx := context.Background()
	var data [][]byte
	for i := range 12 {
		data = append(data, randBytes(uint64(900+i), 40_000+i*15_000))
		upload(t, s, string(rune('A'+i)), "@u:server", data[i])
	}
	upload(t, s, "dupA", "@u:server", data[0])
	for id, file := range map[string]string{"livepic": "video-001.png", "deadpic": "video-001.jpeg"} {
		b, err := os.ReadFile(filepath.Join("../thumbgen/testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		ct := "image/" + filepath.Ext(file)[1:]
		rec, err := s.Upload(ctx, media.UploadInfo{MXC: mxc(id), ContentType: ct, Size: int64(len(b))}, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := s.Thumbnail(ctx, rec, media.ThumbnailRequest{Width: 32, Height: 32, Method: "crop"})
		if err != nil {
			t.Fatalf("thumbnail of %s: %v", id, err)
		}
		r.Close()
	}

	// Damage: a corrupt chunk of C and of D (read, so recorded), two
	// missing chunks of B, E and F; then D and E and deadpic are deleted.
	p := s.Params()
	damage := func(data []byte, remove bool) {
		hs := chunksOf(t, data, p)
		h := hs[1]
		if remove {
			if err := os.Remove(chunkPath(dir, hs[2])); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(chunkPath(dir, h)); err != nil {
				t.Fatal(err)
			}
			return
		}
		b, err := os.ReadFile(chunkPath(dir, h))
		if err != nil {
			t.Fatal(err)
		}
		b[0] ^= 1
		if err := os.WriteFile(chunkPath(dir, h), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	damage(data[2], false)
	damage(data[3], false)
	damage(data[1], true)
	damage(data[4], true)
	damage(data[5], true)
	for _, id := range []string{"C", "D"} {
		if r, _, err := s.Open(mxc(id)); err == nil {
			if _, err := io.ReadAll(r); err == nil {
				t.Fatalf("read of damaged %s succeeded", id)
			}
			r.Close()
		}
	}
	for _, id := range []string{"D", "E", "deadpic"} {
		if err := s.Delete(mxc(id)); err != nil {
			t.Fatal(err)
		}
	}

	// Chunk files no manifest lists: two old, two young.
	var young []string
	for i := range 4 {
		b := randBytes(uint64(990+i), 3000)
		path := chunkPath(dir, cas.Sum(b))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			young = append(young, path)
		}
	}
	closeStore(t, s)

	old := clk.Now().Add(-pastGrace)
	err := filepath.WalkDir(filepath.Join(dir, "cas"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, y := range young {
			if y == path {
				return nil
			}
		}
		return os.Chtimes(path, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyStore copies the closed store in src to dst, chunk files' times
// included.
func copyStore(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(filepath.Join(src, "cas"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		return os.Chtimes(filepath.Join(dst, rel), info.ModTime(), info.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}
