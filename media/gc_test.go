package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

// pastGrace is far enough to make every chunk written so far old.
const pastGrace = 2 * time.Hour

func TestDeleteAndGC(t *testing.T) {
	clk := newClock()
	s, dir := newStore(t, clk)
	p := randBytes(70, 1<<20)
	// q shares p's first half, then differs.
	q := append(append([]byte(nil), p[:len(p)/2]...), randBytes(71, 300_000)...)
	r := randBytes(72, 200_000)
	upload(t, s, "A", "@a:server", p)
	upload(t, s, "B", "@b:server", p) // same object as A
	upload(t, s, "C", "@c:server", q)
	upload(t, s, "D", "", r)
	chunksP, chunksQ, chunksR := fileChunksOf(t, p, s.Params()), fileChunksOf(t, q, s.Params()), fileChunksOf(t, r, s.Params())
	onlyP := hashSet(chunksP)
	for h := range hashSet(chunksQ, chunksR) {
		delete(onlyP, h)
	}
	if len(onlyP) == 0 || len(onlyP) == len(hashSet(chunksP)) {
		t.Fatalf("test data: %d of p's %d chunks are its own; want some but not all", len(onlyP), len(chunksP))
	}
	all := len(hashSet(chunksP, chunksQ, chunksR))

	// Deleting A leaves B, which shares its object, intact.
	if err := s.Delete(mxc("A")); err != nil {
		t.Fatalf("Delete(A): %v", err)
	}
	checkNotFound(t, s, "A")
	if err := s.Delete(mxc("A")); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("second Delete(A) = %v, want ErrNotFound", err)
	}
	checkContent(t, s, "B", p)
	clk.Advance(pastGrace)
	if st := gc(t, s); st.ChunksDeleted != 0 || st.ObjectsDeleted != 0 || st.Chunks != all || st.Objects != 3 {
		t.Errorf("GC with A deleted, B alive = %+v; want nothing deleted, %d chunks and 3 objects kept", st, all)
	}
	checkContent(t, s, "B", p)

	// Deleting B leaves p unreferenced; young chunks survive a GC.
	if err := s.Delete(mxc("B")); err != nil {
		t.Fatalf("Delete(B): %v", err)
	}
	checkNotFound(t, s, "B")
	checkContent(t, s, "C", q)
	clk.Set(time.Now()) // every chunk is younger than the grace
	st := gc(t, s)
	if st.ChunksDeleted != 0 || st.ChunksYoung != len(onlyP) {
		t.Errorf("GC before the grace: ChunksDeleted = %d, ChunksYoung = %d; want 0, %d", st.ChunksDeleted, st.ChunksYoung, len(onlyP))
	}
	if got := len(chunkFiles(t, dir)); got != all {
		t.Errorf("after GC before the grace: %d chunk files, want %d", got, all)
	}

	// Past the grace, exactly p's own chunks go.
	clk.Advance(pastGrace)
	st = gc(t, s)
	if st.ChunksDeleted != len(onlyP) || st.ChunksYoung != 0 || st.Chunks != all-len(onlyP) {
		t.Errorf("GC past the grace = %+v; want %d chunks deleted, %d kept, 0 young", st, len(onlyP), all-len(onlyP))
	}
	files := chunkFiles(t, dir)
	for h := range onlyP {
		if _, ok := files[h]; ok {
			t.Errorf("chunk %s used only by deleted media survived GC", h.Short())
		}
	}
	for h := range hashSet(chunksQ, chunksR) {
		if _, ok := files[h]; !ok {
			t.Errorf("chunk %s of live media was collected", h.Short())
		}
	}
	var wantBytes int64
	sizes := chunkSizes(t, p, s.Params())
	for h := range onlyP {
		wantBytes += sizes[h]
	}
	if st.BytesDeleted != wantBytes {
		t.Errorf("BytesDeleted = %d, want %d", st.BytesDeleted, wantBytes)
	}
	checkContent(t, s, "C", q)
	checkContent(t, s, "D", r)
	rep := mediatest.CheckHealthy(t, s)
	if rep.Media != 2 || rep.Objects != 2 || rep.Orphans != 0 {
		t.Errorf("Fsck after GC: %d media, %d objects, %d orphans; want 2, 2, 0", rep.Media, rep.Objects, rep.Orphans)
	}
	// A GC with nothing to do deletes nothing.
	if st := gc(t, s); st.ChunksDeleted != 0 || st.ObjectsDeleted != 0 {
		t.Errorf("idle GC = %+v, want nothing deleted", st)
	}

	// p can be uploaded again after its chunks and manifest were collected.
	upload(t, s, "A2", "@a:server", p)
	checkContent(t, s, "A2", p)
	mediatest.CheckHealthy(t, s)
	checkUsage(t, s, dir, map[string]index.Usage{
		"@a:server": {Bytes: int64(len(p)), Count: 1},
		"@b:server": {},
		"@c:server": {Bytes: int64(len(q)), Count: 1},
	}, index.Usage{Bytes: int64(len(p) + len(q) + len(r)), Count: 3})
}

// TestGCSparesUploadInFlight: content X was uploaded and deleted, so its
// chunks are old and unreferenced. A new upload of X is in flight (its body
// fully read, not yet ended) while GC runs past the grace. The upload must
// still succeed with every chunk in place: only its pins protect them.
func TestGCSparesUploadInFlight(t *testing.T) {
	clk := newClock()
	s, dir := newStore(t, clk)
	x := randBytes(80, 2<<20)
	upload(t, s, "A", "@a:server", x)
	if err := s.Delete(mxc("A")); err != nil {
		t.Fatalf("Delete(A): %v", err)
	}
	clk.Advance(pastGrace)

	pr, pw := io.Pipe()
	type result struct {
		rec media.Media
		err error
	}
	done := make(chan result, 1)
	go func() {
		rec, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc("B"), Uploader: "@b:server", Size: int64(len(x))}, pr)
		pr.CloseWithError(err)
		done <- result{rec, err}
	}()
	// Write returns once Upload has read every byte of x; the chunks before
	// the last chunker buffer have been pinned and found present.
	if _, err := pw.Write(x); err != nil {
		t.Fatalf("write body: %v", err)
	}
	st := gc(t, s)
	t.Logf("GC during the upload: %+v", st)
	if st.Chunks == 0 {
		t.Errorf("GC kept no chunk while an upload of them was in flight: %+v", st)
	}
	pw.Close()
	res := <-done
	if res.err != nil {
		t.Fatalf("Upload(B): %v", res.err)
	}
	if got, want := res.rec.Object, wantObjectHash(t, s.Params(), x); got != want {
		t.Errorf("B's object = %s, want %s", got.Short(), want.Short())
	}
	checkContent(t, s, "B", x)
	rep := mediatest.CheckHealthy(t, s)
	if rep.Objects != 1 || rep.Orphans != 0 {
		t.Errorf("Fsck: %d objects, %d orphans; want 1, 0", rep.Objects, rep.Orphans)
	}
	if got, want := len(chunkFiles(t, dir)), len(hashSet(fileChunksOf(t, x, s.Params()))); got != want {
		t.Errorf("%d chunk files, want %d", got, want)
	}
	// A later GC, even past the grace, keeps B.
	clk.Advance(pastGrace)
	if st := gc(t, s); st.ChunksDeleted != 0 || st.ObjectsDeleted != 0 {
		t.Errorf("GC after B's upload = %+v, want nothing deleted", st)
	}
	checkContent(t, s, "B", x)
}

// TestGCConcurrentWithUploads re-uploads contents whose chunks are old and
// unreferenced while GC runs in a loop past the grace period: every
// acknowledged upload must read back intact.
func TestGCConcurrentWithUploads(t *testing.T) {
	clk := newClock()
	s, _ := newStore(t, clk)
	const contents = 6
	var data [][]byte
	for i := range contents {
		d := randBytes(uint64(90+i), 100_000+i*37_000)
		data = append(data, d)
		id := fmt.Sprintf("old%d", i)
		upload(t, s, id, "", d)
		if err := s.Delete(mxc(id)); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	clk.Advance(pastGrace)

	stop := make(chan struct{})
	var gcWG sync.WaitGroup
	gcRuns := 0
	gcWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.GC(context.Background()); err != nil {
				t.Errorf("GC: %v", err)
				return
			}
			gcRuns++
		}
	})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 6 {
				d := data[(w+i)%contents]
				id := fmt.Sprintf("new%d-%d", w, i)
				if _, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc(id), Size: int64(len(d))}, bytes.NewReader(d)); err != nil {
					t.Errorf("Upload(%s): %v", id, err)
				}
				if i%2 == 1 {
					// Delete some, so GC finds the content dead again.
					if err := s.Delete(mxc(id)); err != nil {
						t.Errorf("Delete(%s): %v", id, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	gcWG.Wait()
	t.Logf("%d GC runs during the uploads", gcRuns)
	for w := range 4 {
		for i := 0; i < 6; i += 2 {
			checkContent(t, s, fmt.Sprintf("new%d-%d", w, i), data[(w+i)%contents])
		}
	}
	rep := mediatest.CheckHealthy(t, s)
	if got, want := rep.Media, 4*3; got != want {
		t.Errorf("Fsck: Media = %d, want %d", got, want)
	}
	gc(t, s)
	mediatest.CheckHealthy(t, s)
}
