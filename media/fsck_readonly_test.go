package media_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// treeState is what a check must not change of every file and directory
// under a data directory: its size, mode, modification time and, for a
// file, a hash of its bytes; under cas/ also its access time (chunks are
// read through O_NOATIME). It reads with O_NOATIME itself, so taking it
// changes no access time.
func treeState(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(dir, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UTC())
		if rel == "cas" || strings.HasPrefix(rel, "cas/") {
			st := fi.Sys().(*syscall.Stat_t)
			v += " atime " + time.Unix(st.Atim.Sec, st.Atim.Nsec).UTC().String()
		}
		out[rel] = v
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return
		}
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOATIME, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if fi.Mode().IsRegular() {
			b, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			out[rel] += " " + cas.Sum(b).String()
			return
		}
		names, err := f.Readdirnames(-1)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			walk(filepath.Join(rel, n))
		}
	}
	walk(".")
	return out
}

// backdate sets the access and modification times of everything under dir
// to t: a read of any of them then changes its access time (relatime).
func backdate(tb testing.TB, dir string, t time.Time) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, t, t)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// checkSameTree fails the test for every path changed, created or removed
// between the states before and after.
func checkSameTree(t testing.TB, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if got, ok := after[p]; !ok {
			t.Errorf("%s was removed", p)
		} else if got != v {
			t.Errorf("%s changed: %s -> %s", p, v, got)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was created", p)
		}
	}
}

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
	flipByte(t, chunkPath(dir, chunksA[1]))
	if err := os.Remove(chunkPath(dir, chunksB[0])); err != nil {
		t.Fatal(err)
	}

	backdate(t, dir, time.Now().Add(-72*time.Hour).Truncate(time.Second))
	before := treeState(t, dir)
	ro := openStore(t, media.Options{Dir: dir, ReadOnly: true})
	got := fsckWith(t, ro, 3)
	closeStore(t, ro)
	checkSameTree(t, before, treeState(t, dir))

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
		hs := chunksOf(t, data, smallParams)
		switch i % 3 {
		case 0:
			corrupt = append(corrupt, hs[len(hs)-1])
		case 1:
			missing = append(missing, hs[0])
		}
	}
	closeStore(t, s)
	for _, h := range corrupt {
		flipByte(t, chunkPath(dir, h))
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
