package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// inlineStore is a new store (layoutInline) on the default chunker, with a
// clock for GC's grace period.
func inlineStore(t *testing.T) (*Store, string, *time.Time) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Now()
	s, err := Open(Options{Create: true, Dir: dir, Now: func() time.Time { return now }, Thumbnails: ThumbnailOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir, &now
}

func inlineUpload(t *testing.T, s *Store, id string, seed byte, n int) (Media, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(data)
	rec, err := s.Upload(context.Background(), UploadInfo{MXC: mustMXC("s", id), Size: int64(n)}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return rec, data
}

// casFiles returns the chunk files under dir/cas, by their path relative
// to dir.
func casFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "cas"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readAllOf(t *testing.T, s *Store, id string) ([]byte, error) {
	t.Helper()
	return readAllAt(t, s, "s", id)
}

func readAllAt(t *testing.T, s *Store, server, id string) ([]byte, error) {
	t.Helper()
	r, _, err := s.Open(mustMXC(server, id))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// TestInlineLayout: a new store says layoutInline in FORMAT; a small
// upload writes no chunk file (its one chunk is in the index), a larger one
// writes its chunk files in cas/ab/<hash> and keeps a small last chunk
// inline; both read back byte for byte, and the manifests say which chunk
// is where.
func TestInlineLayout(t *testing.T) {
	s, dir, _ := inlineStore(t)
	if f, err := readFormat(dir); err != nil || f.Layout != layoutInline {
		t.Fatalf("FORMAT = %+v, %v; want layout %d", f, err, layoutInline)
	}
	small, smallData := inlineUpload(t, s, "small", 1, 9000)
	if files := casFiles(t, dir); len(files) != 0 {
		t.Errorf("a 9000-byte upload wrote chunk files %v", files)
	}
	big, bigData := inlineUpload(t, s, "big", 2, 700_000)
	files := casFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("a 700 KB upload wrote no chunk file")
	}
	for _, f := range files {
		parts := strings.Split(f, string(filepath.Separator)) // cas/ab/<hash>
		if len(parts) != 3 || !strings.HasPrefix(parts[2], parts[1]) {
			t.Errorf("chunk file %s not in cas/ab/<hash>", f)
		}
	}
	m, err := s.idx.Manifest(big.Object)
	if err != nil {
		t.Fatal(err)
	}
	ref, inline := m.InlineRef()
	if last := m.Chunks[len(m.Chunks)-1]; inline != (last.Len <= MaxInline) || len(files) != len(m.Stored()) {
		t.Errorf("last chunk of %d bytes inline %v; %d chunk files for %d stored chunks", last.Len, inline, len(files), len(m.Stored()))
	}
	if inline {
		if data, err := s.idx.InlineChunk(big.Object); err != nil || !bytes.Equal(data, bigData[len(bigData)-int(ref.Len):]) {
			t.Errorf("inline tail: %d bytes, %v", len(data), err)
		}
	}
	for id, want := range map[string][]byte{"small": smallData, "big": bigData} {
		if got, err := readAllOf(t, s, id); err != nil || !bytes.Equal(got, want) {
			t.Errorf("read %s: %d bytes, %v", id, len(got), err)
		}
	}
	if sm, err := s.idx.Manifest(small.Object); err != nil || len(sm.Stored()) != 0 {
		t.Errorf("small manifest %+v, %v: want its one chunk inline", sm, err)
	}
}

// TestInlineFsckAndGC: on a store mixing inline chunks and chunk files,
// fsck is clean; GC of deleted media removes their inline chunks with
// their manifests (and only theirs) and their chunk files; inline chunks
// damaged in the index are reported by fsck and refused by reads.
func TestInlineFsckAndGC(t *testing.T) {
	s, dir, now := inlineStore(t)
	keepSmall, keepSmallData := inlineUpload(t, s, "keep-small", 1, 3000)
	_, keepBigData := inlineUpload(t, s, "keep-big", 2, 500_000)
	goneSmall, _ := inlineUpload(t, s, "gone-small", 3, 12_000)
	goneBig, _ := inlineUpload(t, s, "gone-big", 4, 400_000)
	rep, err := s.Fsck(context.Background())
	if err != nil || !rep.Healthy() || rep.Objects != 4 || rep.Orphans != 0 {
		t.Fatalf("fsck of the mixed store: %+v, %v", rep, err)
	}
	inlineBefore, _, err := s.idx.InlineBytes()
	if err != nil || inlineBefore < 2 {
		t.Fatalf("%d inline chunks, %v; want the small media's at least", inlineBefore, err)
	}
	filesBefore := len(casFiles(t, dir))
	for _, id := range []string{"gone-small", "gone-big"} {
		if err := s.Delete(mustMXC("s", id)); err != nil {
			t.Fatal(err)
		}
	}
	*now = now.Add(48 * time.Hour) // past the grace period
	st, err := s.GC(context.Background())
	if err != nil || st.ObjectsDeleted != 2 || st.ChunksDeleted == 0 {
		t.Fatalf("GC: %+v, %v; want both objects and the big one's chunk files deleted", st, err)
	}
	for _, obj := range []cas.Hash{goneSmall.Object, goneBig.Object} {
		if _, err := s.idx.InlineChunk(obj); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("inline chunk of a collected object: %v, want ErrNotFound", err)
		}
	}
	if files := len(casFiles(t, dir)); files != filesBefore-st.ChunksDeleted {
		t.Errorf("%d chunk files after GC, want %d", files, filesBefore-st.ChunksDeleted)
	}
	for id, want := range map[string][]byte{"keep-small": keepSmallData, "keep-big": keepBigData} {
		if got, err := readAllOf(t, s, id); err != nil || !bytes.Equal(got, want) {
			t.Errorf("read %s after GC: %d bytes, %v", id, len(got), err)
		}
	}
	if rep, err := s.Fsck(context.Background()); err != nil || !rep.Healthy() || rep.Objects != 2 || rep.Orphans != 0 {
		t.Fatalf("fsck after GC: %+v, %v", rep, err)
	}

	// Damage keep-small's inline chunk in the index: reads refuse it,
	// fsck names it.
	bad := bytes.Clone(keepSmallData)
	bad[10] ^= 1
	setInlineChunk(t, s, keepSmall.Object, bad)
	s.manifests = newManifestCache() // read the manifest again
	if _, err := readAllOf(t, s, "keep-small"); !errors.Is(err, ErrDamaged) || !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("read of a damaged inline chunk: %v, want ErrDamaged wrapping cas.ErrCorrupt", err)
	}
	rep, err = s.Fsck(context.Background())
	found := false
	for _, p := range rep.Problems {
		found = found || p.Kind == ProblemCorruptChunk && p.Object == keepSmall.Object
	}
	if err != nil || !found || len(rep.Damaged) != 1 || rep.Damaged[0] != "mxc://s/keep-small" {
		t.Errorf("fsck with a damaged inline chunk: %+v, %v; want its corrupt-chunk problem", rep, err)
	}
}

// TestOldLayoutStore: a store made before layoutInline (testdata: three
// media by the binary of commit 29b9549, FORMAT without a layout line,
// chunk files in cas/ab/cd/) opens, serves its media, keeps writing every
// chunk as a file in its own layout, and is healthy and collectable.
func TestOldLayoutStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dir, os.DirFS("testdata/layout1-store")); err != nil {
		t.Fatal(err)
	}
	formatBefore, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir, Thumbnails: ThumbnailOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.inlineMax != 0 || s.format.Layout != layoutNested {
		t.Fatalf("old store opened with layout %d, inline up to %d", s.format.Layout, s.inlineMax)
	}
	for i, id := range []string{"small", "medium", "large"} {
		want := make([]byte, []int{1000, 40_000, 300_000}[i])
		// randBytes of media_test: ChaCha8 keyed by the seed, little-endian.
		var key [32]byte
		binary.LittleEndian.PutUint64(key[:], uint64(900+i))
		rand.NewChaCha8(key).Read(want)
		got, err := readAllAt(t, s, "old.example", id)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("old media %s: %d bytes, %v", id, len(got), err)
		}
	}
	_, data := inlineUpload(t, s, "new-small", 7, 2000)
	h := cas.Sum(data)
	x := h.String()
	if _, err := os.Stat(filepath.Join(dir, "cas", x[:2], x[2:4], x)); err != nil {
		t.Errorf("a small upload to an old store: %v, want a chunk file in cas/ab/cd/", err)
	}
	rep, err := s.Fsck(context.Background())
	if err != nil || !rep.Healthy() || rep.Media != 4 || rep.Orphans != 0 {
		t.Errorf("fsck of the old store: %+v, %v", rep, err)
	}
	if st, err := s.GC(context.Background()); err != nil || st.ChunksDeleted != 0 || st.Chunks != len(casFiles(t, dir)) {
		t.Errorf("GC of the old store: %+v, %v", st, err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "FORMAT")); !bytes.Equal(after, formatBefore) {
		t.Errorf("FORMAT changed: %q, was %q", after, formatBefore)
	}
}

// TestFsckInlineOrphansAndMissing: fsck counts an inline chunk that no
// manifest names (here: its manifest was written again without it) as an
// orphan, not as damage; a manifest naming an inline chunk the index lacks
// is damage; both found by the walk of manifests and inline chunks side
// by side, over every range of object hashes.
func TestFsckInlineOrphansAndMissing(t *testing.T) {
	s, _, _ := inlineStore(t)
	var objs []cas.Hash
	for i := range 40 { // objects in many of fsck's ranges
		rec, _ := inlineUpload(t, s, fmt.Sprintf("m%d", i), byte(10+i), 1000+i)
		objs = append(objs, rec.Object)
	}
	rep, err := s.Fsck(context.Background())
	if err != nil || !rep.Healthy() || rep.Objects != 40 || rep.Orphans != 0 || rep.Bytes != 40*1000+39*40/2 {
		t.Fatalf("fsck: %+v, %v; want 40 objects of %d bytes, healthy", rep, err, 40*1000+39*40/2)
	}
	// m7's manifest again, its chunk now named as a file: the inline chunk
	// stays in the index, named by no manifest.
	m, err := s.idx.Manifest(objs[7])
	if err != nil {
		t.Fatal(err)
	}
	m.Chunks[len(m.Chunks)-1].Inline = false
	b := s.idx.NewBatch()
	defer b.Close()
	if err := errors.Join(b.PutManifest(objs[7], m), b.Commit()); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Fsck(context.Background())
	if err != nil || rep.Orphans != 1 || rep.Objects != 40 || len(rep.Damaged) != 1 || rep.Damaged[0] != "mxc://s/m7" {
		t.Errorf("fsck with an orphan inline chunk: %+v, %v; want 1 orphan, m7 damaged (its chunk is no file)", rep, err)
	}

	// A manifest whose inline chunk is gone, and an inline chunk without
	// a manifest, as the walk passes them.
	var c objectsChecked
	ref := index.ChunkRef{Hash: cas.Sum([]byte("tail")), Len: 4, Inline: true}
	c.check(index.ObjectEntry{Hash: objs[0], HasManifest: true, Manifest: index.Manifest{Size: 4, Chunks: []index.ChunkRef{ref}}})
	c.check(index.ObjectEntry{Hash: objs[1], HasInline: true})
	if c.objects != 1 || c.orphans != 1 || len(c.found) != 1 || c.kinds[0] != ProblemMissingChunk ||
		c.found[0].p.Object != objs[0] || c.found[0].p.Chunk != ref.Hash {
		t.Errorf("check: %+v; want one object with its inline chunk missing, one orphan", c)
	}
}
