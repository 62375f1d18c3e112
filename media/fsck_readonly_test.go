package media_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

func fsckWith(t testing.TB, s *media.Store, workers int) media.FsckReport {
	t.Helper()
	rep, err := s.FsckWith(context.Background(), media.FsckOptions{Workers: workers})
	if err != nil {
		t.Fatalf("Fsck(workers %d): %v", workers, err)
	}
	return rep
}

// An fsck of a store opened read-only (offline mxcas fsck) writes nothing:
// no file under the data directory is created, removed or changed, not
// even its modification time or (for chunks) its access time; and it
// reports what an fsck of the same store opened writable reports.
func TestReadOnlyFsckWritesNothing(t *testing.T) {
	clk := newClock()
	s, dir := newStore(t, clk)
	a, b, c := randBytes(300, 200_000), randBytes(301, 150_000), randBytes(302, 9_000)
	upload(t, s, "A", "@a:server", a)
	upload(t, s, "B", "@b:server", b)
	upload(t, s, "C", "@c:server", c)
	thumbBytes(t, s, uploadAs(t, s, "img", "image/png", pngOf(t, 300, 200)))
	// D is deleted and its chunks collected; E is deleted, its chunks
	// left as orphans.
	upload(t, s, "D", "@d:server", randBytes(303, 100_000))
	if err := s.Delete(mxc("D")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(pastGrace)
	if st := gc(t, s); st.ChunksDeleted == 0 {
		t.Fatalf("GC = %+v; want D's chunks collected", st)
	}
	upload(t, s, "E", "@e:server", randBytes(304, 50_000))
	if err := s.Delete(mxc("E")); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	chunksA, chunksB := chunksOf(t, a, smallParams), chunksOf(t, b, smallParams)
	testkit.FlipByte(t, chunkPath(dir, chunksA[1]))
	if err := os.Remove(chunkPath(dir, chunksB[0])); err != nil {
		t.Fatal(err)
	}

	// Chunks and their directories are read with O_NOATIME: their access
	// times must stay too. Pebble reads its files plainly: of those, only
	// contents and modification times are checked.
	testkit.Backdate(t, dir, time.Now().Add(-72*time.Hour).Truncate(time.Second))
	before := testkit.Stamps(t, dir, "cas")
	ro := openStore(t, media.Options{Dir: dir, ReadOnly: true})
	got := fsckWith(t, ro, 3)
	closeStore(t, ro)
	testkit.SameStamps(t, dir, before, "cas")

	if got.Healthy() || !reflect.DeepEqual(got.Damaged, []string{mxc("A").String(), mxc("B").String()}) {
		t.Errorf("read-only Fsck: problems %v, damaged %v; want A and B damaged", got.Problems, got.Damaged)
	}
	if got.Media != 4 {
		t.Errorf("read-only Fsck: %d media, want 4 (A, B, C, img)", got.Media)
	}
	rw := openStore(t, media.Options{Dir: dir})
	if want := fsckWith(t, rw, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("read-only Fsck:\n%+v\nwritable Fsck:\n%+v", got, want)
	}
}

// Fsck reports the same, in the same order, whatever its number of
// workers: every corrupt, truncated and missing chunk, and the media they
// damage.
func TestFsckWorkersSameReport(t *testing.T) {
	s, dir := newStore(t, nil)
	var corrupt, missing []cas.Hash
	for i := range 12 {
		data := randBytes(uint64(400+i), 60_000+i*7_000)
		upload(t, s, fmt.Sprintf("m%02d", i), "@u:server", data)
		hs := fileChunksOf(t, data, smallParams)
		switch i % 3 {
		case 0:
			corrupt = append(corrupt, hs[len(hs)-1])
		case 1:
			missing = append(missing, hs[0])
		}
	}
	closeStore(t, s)
	for _, h := range corrupt {
		testkit.FlipByte(t, chunkPath(dir, h))
	}
	for _, h := range missing {
		if err := os.Remove(chunkPath(dir, h)); err != nil {
			t.Fatal(err)
		}
	}

	ro := openStore(t, media.Options{Dir: dir, ReadOnly: true})
	one := fsckWith(t, ro, 1)
	found := make(map[string]map[cas.Hash]bool)
	for _, p := range one.Problems {
		if found[p.Kind] == nil {
			found[p.Kind] = make(map[cas.Hash]bool)
		}
		found[p.Kind][p.Chunk] = true
	}
	for kind, want := range map[string][]cas.Hash{media.ProblemCorruptChunk: corrupt, media.ProblemMissingChunk: missing} {
		if len(found[kind]) != len(want) {
			t.Errorf("%s: Fsck found %d, want %d", kind, len(found[kind]), len(want))
		}
		for _, h := range want {
			if !found[kind][h] {
				t.Errorf("%s: chunk %s not reported", kind, h.Short())
			}
		}
	}
	if len(one.Damaged) != len(corrupt)+len(missing) {
		t.Errorf("Fsck: %d damaged media, want %d", len(one.Damaged), len(corrupt)+len(missing))
	}
	for _, workers := range []int{2, 8, 8} {
		if got := fsckWith(t, ro, workers); !reflect.DeepEqual(got, one) {
			t.Errorf("Fsck with %d workers:\n%+v\nwith 1:\n%+v", workers, got, one)
		}
	}
}
