package media_test

import (
	"io"
	"os"
	"slices"
	"testing"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

func TestFsckHealthy(t *testing.T) {
	s, dir := newStore(t, nil)
	a, b := randBytes(100, 500_000), randBytes(101, 70_000)
	upload(t, s, "A", "@a:server", a)
	upload(t, s, "A2", "@b:server", a)
	upload(t, s, "B", "@a:server", b)
	upload(t, s, "empty", "", nil)

	rep := mediatest.CheckHealthy(t, s)
	want := hashSet(chunksOf(t, a, s.Params()), chunksOf(t, b, s.Params()))
	if rep.Media != 4 || rep.Objects != 3 || rep.Chunks != len(want) || rep.Orphans != 0 {
		t.Errorf("Fsck = %d media, %d objects, %d chunks, %d orphans; want 4, 3, %d, 0",
			rep.Media, rep.Objects, rep.Chunks, rep.Orphans, len(want))
	}
	if got, want := rep.Bytes, int64(len(a)+len(b)); got != want {
		t.Errorf("Fsck: Bytes = %d, want %d", got, want)
	}
	if len(rep.Damaged) != 0 {
		t.Errorf("Fsck: Damaged = %v, want none", rep.Damaged)
	}
	if got := len(chunkFiles(t, dir)); got != rep.Chunks {
		t.Errorf("%d chunk files, Fsck counted %d", got, rep.Chunks)
	}

	// A deleted media's chunks are orphans, not damage.
	if err := s.Delete(mxc("B")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	gc(t, s) // removes B's manifest; its chunks are young
	rep = mediatest.CheckHealthy(t, s)
	if got, want := rep.Orphans, len(hashSet(chunksOf(t, b, s.Params()))); got != want {
		t.Errorf("Fsck after Delete: Orphans = %d, want %d", got, want)
	}
}

func TestFsckDamage(t *testing.T) {
	s, dir := newStore(t, nil)
	a, b, c := randBytes(110, 400_000), randBytes(111, 300_000), randBytes(112, 200_000)
	upload(t, s, "A", "@a:server", a)
	upload(t, s, "B", "@b:server", b)
	upload(t, s, "C", "@c:server", c)
	chunksA, chunksB := chunksOf(t, a, s.Params()), chunksOf(t, b, s.Params())
	corrupt, missing := chunksA[len(chunksA)/2], chunksB[1]

	// Flip one byte of one of A's chunks; remove one of B's.
	path := chunkPath(dir, corrupt)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read chunk: %v", err)
	}
	data[len(data)/3] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("corrupt chunk: %v", err)
	}
	if err := os.Remove(chunkPath(dir, missing)); err != nil {
		t.Fatalf("remove chunk: %v", err)
	}

	rep := fsck(t, s)
	if rep.Healthy() {
		t.Fatalf("Fsck of a damaged store is healthy: %+v", rep)
	}
	if got, want := rep.Damaged, []string{"mxc://server/A", "mxc://server/B"}; !slices.Equal(got, want) {
		t.Errorf("Damaged = %q, want %q", got, want)
	}
	objB := wantObjectHash(t, s.Params(), b)
	var sawCorrupt, sawMissing bool
	for _, p := range rep.Problems {
		switch {
		case p.Kind == media.ProblemCorruptChunk && p.Chunk == corrupt:
			sawCorrupt = true
			if want := []string{"mxc://server/A"}; !slices.Equal(p.Media, want) {
				t.Errorf("%s: Media = %q, want %q", p, p.Media, want)
			}
		case p.Kind == media.ProblemMissingChunk && p.Chunk == missing:
			sawMissing = true
			if p.Object != objB {
				t.Errorf("%s: Object = %s, want B's %s", p, p.Object.Short(), objB.Short())
			}
			if want := []string{"mxc://server/B"}; !slices.Equal(p.Media, want) {
				t.Errorf("%s: Media = %q, want %q", p, p.Media, want)
			}
		default:
			t.Errorf("unexpected problem %s (media %q)", p, p.Media)
		}
	}
	if !sawCorrupt {
		t.Errorf("Problems %v: no %s for chunk %s", rep.Problems, media.ProblemCorruptChunk, corrupt.Short())
	}
	if !sawMissing {
		t.Errorf("Problems %v: no %s for chunk %s", rep.Problems, media.ProblemMissingChunk, missing.Short())
	}

	// Media sharing a damaged chunk are damaged too; the others are not.
	upload(t, s, "A2", "@d:server", a)
	rep = fsck(t, s)
	if got, want := rep.Damaged, []string{"mxc://server/A", "mxc://server/A2", "mxc://server/B"}; !slices.Equal(got, want) {
		t.Errorf("with a copy of A: Damaged = %q, want %q", got, want)
	}
	for _, p := range rep.Problems {
		if p.Kind == media.ProblemCorruptChunk {
			if want := []string{"mxc://server/A", "mxc://server/A2"}; !slices.Equal(p.Media, want) {
				t.Errorf("%s: Media = %q, want %q", p, p.Media, want)
			}
		}
	}
	checkContent(t, s, "C", c)
}

// TestFsckTruncatedChunk: a chunk file cut short is damage, its media is
// named, and reading it fails instead of returning short content.
func TestFsckTruncatedChunk(t *testing.T) {
	s, dir := newStore(t, nil)
	a := randBytes(120, 200_000)
	upload(t, s, "A", "", a)
	h := chunksOf(t, a, s.Params())[0]
	if err := os.Truncate(chunkPath(dir, h), 100); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	rep := fsck(t, s)
	if rep.Healthy() {
		t.Fatalf("Fsck with a truncated chunk is healthy")
	}
	if got, want := rep.Damaged, []string{"mxc://server/A"}; !slices.Equal(got, want) {
		t.Errorf("Damaged = %q, want %q", got, want)
	}
	// Reading the media fails rather than returning short content.
	r, _, err := s.Open(mxc("A"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	buf := make([]byte, len(a))
	if n, err := io.ReadFull(r, buf); err == nil {
		t.Errorf("reading media with a truncated chunk: %d bytes, no error", n)
	}
}
