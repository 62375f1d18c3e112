package media_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// newLocalStore is newStore whose test server is local: a read of an
// unknown ID there is ErrNotFound, never a remote fetch.
func newLocalStore(t *testing.T, clk *testkit.Clock) (*media.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	return openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now,
		Local: func(s string) bool { return s == server }}), dir
}

// TestDeleteLeavesTombstone: deleted media is not found on any read path,
// its ID is never taken again (upload, create, fill, import), a second
// delete is ErrNotFound, its usage is gone, and after a GC its own chunks
// are erased while fsck stays clean and the tombstone stays.
func TestDeleteLeavesTombstone(t *testing.T) {
	clk := newClock()
	s, dir := newLocalStore(t, clk)
	ctx := context.Background()
	shared := randBytes(80, 300_000)
	a := append(append([]byte(nil), shared...), randBytes(81, 300_000)...)
	b := append(append([]byte(nil), shared...), randBytes(82, 300_000)...)
	upload(t, s, "A", "@a:server", a)
	upload(t, s, "B", "@b:server", b)
	if _, err := s.Create(media.CreateInfo{MXC: mxc("P"), Uploader: "@a:server"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"A", "P"} {
		if err := s.Delete(mxc(id)); err != nil {
			t.Fatalf("Delete(%s): %v", id, err)
		}
	}

	for _, id := range []string{"A", "P"} {
		checkNotFound(t, s, id)
		for _, p := range []media.ReadPath{media.ClientRead, media.LegacyRead, media.FederationRead} {
			if _, err := s.Resolve(ctx, mxc(id), media.ReadOptions{Path: p, Wait: time.Second}); !errors.Is(err, media.ErrNotFound) {
				t.Errorf("Resolve(%s, path %d) = %v, want ErrNotFound", id, p, err)
			}
		}
		if err := s.Delete(mxc(id)); !errors.Is(err, media.ErrNotFound) {
			t.Errorf("second Delete(%s) = %v, want ErrNotFound", id, err)
		}
		info := media.UploadInfo{MXC: mxc(id), Uploader: "@a:server", Size: 3}
		if _, err := s.Upload(ctx, info, bytes.NewReader([]byte("new"))); !errors.Is(err, media.ErrExists) {
			t.Errorf("Upload to deleted %s = %v, want ErrExists", id, err)
		}
		if _, err := s.Create(media.CreateInfo{MXC: mxc(id), Uploader: "@a:server"}); !errors.Is(err, media.ErrExists) {
			t.Errorf("Create of deleted %s = %v, want ErrExists", id, err)
		}
		if _, err := s.Fill(ctx, info, "@a:server", bytes.NewReader([]byte("new"))); !errors.Is(err, media.ErrNotFound) {
			t.Errorf("Fill of deleted %s = %v, want ErrNotFound", id, err)
		}
		res, err := s.Import(ctx, media.ImportInfo{MXC: mxc(id), Size: 3}, bytes.NewReader([]byte("new")))
		if err != nil || res.Imported {
			t.Errorf("Import of deleted %s = %+v, %v; want not imported", id, res, err)
		}
	}

	own := hashSet(chunksOf(t, a, s.Params()))
	for h := range hashSet(chunksOf(t, b, s.Params())) {
		delete(own, h)
	}
	clk.Advance(2 * time.Hour)
	if st := gc(t, s); st.ChunksDeleted != len(own) || st.ObjectsDeleted != 1 {
		t.Errorf("GC after deleting A = %+v; want its %d own chunks and its object deleted", st, len(own))
	}
	files := chunkFiles(t, dir)
	for h := range own {
		if _, ok := files[h]; ok {
			t.Errorf("chunk %s of deleted A only is still stored", h.Short())
		}
	}
	checkContent(t, s, "B", b)
	if rep := fsck(t, s); !rep.Healthy() || rep.Media != 1 {
		t.Errorf("fsck after delete and GC: %+v; want healthy with 1 media", rep)
	}
	checkNotFound(t, s, "A")
	checkUsage(t, s, dir, map[string]index.Usage{"@a:server": {}, "@b:server": {Bytes: int64(len(b)), Count: 1}},
		index.Usage{Bytes: int64(len(b)), Count: 1})
}

// TestDeleteWakesWaiters: a read waiting for a created ID's content ends
// with ErrNotFound when the ID is deleted.
func TestDeleteWakesWaiters(t *testing.T) {
	s, _ := newLocalStore(t, newClock())
	if _, err := s.Create(media.CreateInfo{MXC: mxc("P"), Uploader: "@a:server"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Resolve(ctx, mxc("P"), media.ReadOptions{Wait: media.MaxWait})
		done <- err
	}()
	// The reader may register before or after the delete: either way it
	// ends with ErrNotFound, not at its timeout.
	if err := s.Delete(mxc("P")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, media.ErrNotFound) {
		t.Errorf("waiting read after delete = %v, want ErrNotFound", err)
	}
}
