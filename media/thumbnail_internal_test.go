package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/testkit"
	"github.com/mxcas/mxcas/thumbgen"
)

func thumbStore(t *testing.T, o ThumbnailOptions) *Store {
	t.Helper()
	s, err := Open(Options{Create: true, Dir: t.TempDir(), Thumbnails: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func uploadFile(t *testing.T, s *Store, id, path, ct string) Media {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Upload(context.Background(), UploadInfo{MXC: mustMXC("s", id), ContentType: ct, Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func readThumb(t *testing.T, s *Store, rec Media, req ThumbnailRequest) ([]byte, Thumbnail) {
	t.Helper()
	r, tr, err := s.Thumbnail(context.Background(), rec, req)
	if err != nil {
		t.Fatalf("Thumbnail(%+v): %v", req, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b, tr
}

func TestThumbnailStoredOnceAndShared(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{Disabled: true})
	a := uploadFile(t, s, "a", "../thumbgen/testdata/video-001.png", "image/png")
	b := uploadFile(t, s, "b", "../thumbgen/testdata/video-001.png", "image/png") // same content, other ID
	req := ThumbnailRequest{Width: 32, Height: 32, Method: "crop"}
	first, tr := readThumb(t, s, a, req)
	if tr.ContentType != "image/png" || tr.Width != 32 || tr.Height != 32 {
		t.Errorf("thumbnail = %+v, want a 32x32 PNG", tr)
	}
	again, _ := readThumb(t, s, a, req)
	shared, _ := readThumb(t, s, b, req)
	if !bytes.Equal(first, again) || !bytes.Equal(first, shared) {
		t.Error("the same thumbnail came back with different bytes")
	}
	if n := s.thumbs.made.Load(); n != 1 {
		t.Errorf("generated %d times, want once (stored, and shared by identical sources)", n)
	}
}

func TestThumbnailSingleFlight(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{Disabled: true})
	rec := uploadFile(t, s, "a", "../thumbgen/testdata/video-001.jpeg", "image/jpeg")
	var wg sync.WaitGroup
	results := make([][]byte, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := s.Thumbnail(context.Background(), rec, ThumbnailRequest{Width: 96, Height: 96, Method: "crop"})
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			results[i], _ = io.ReadAll(r)
		}()
	}
	wg.Wait()
	for i := range results {
		if !bytes.Equal(results[i], results[0]) || len(results[0]) == 0 {
			t.Fatalf("request %d got other bytes", i)
		}
	}
	// Requests that arrive after the first finished are served from the
	// store; those during it share its work: never more than one run at once.
	if n := s.thumbs.made.Load(); n != 1 {
		t.Errorf("16 concurrent requests generated %d times, want 1", n)
	}
}

func TestThumbnailPregeneration(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{})
	rec := uploadFile(t, s, "a", "../thumbgen/testdata/video-001.jpeg", "image/jpeg")
	s.WaitThumbnailQueue()
	if n := s.thumbs.made.Load(); n != int64(len(DefaultThumbnailSizes)) {
		t.Errorf("pregenerated %d thumbnails, want %d", n, len(DefaultThumbnailSizes))
	}
	for _, z := range DefaultThumbnailSizes {
		readThumb(t, s, rec, ThumbnailRequest{Width: z.Width, Height: z.Height, Method: z.Method})
	}
	if n := s.thumbs.made.Load(); n != int64(len(DefaultThumbnailSizes)) {
		t.Errorf("requests for pregenerated sizes generated again (%d)", n)
	}
	// Not an image: nothing queued, the request is ErrUnsupported.
	txt, err := s.Upload(context.Background(), UploadInfo{MXC: mustMXC("s", "txt"), ContentType: "text/plain", Size: 5}, bytes.NewReader([]byte("hello")))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Thumbnail(context.Background(), txt, ThumbnailRequest{Width: 32, Height: 32, Method: "crop"}); !errors.Is(err, thumbgen.ErrUnsupported) {
		t.Errorf("thumbnail of text: %v, want ErrUnsupported", err)
	}
}

func TestThumbnailBombRefused(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{Disabled: true})
	bomb := testkit.PNGBomb(30000, 30000)
	rec, err := s.Upload(context.Background(), UploadInfo{MXC: mustMXC("s", "bomb"), ContentType: "image/png", Size: int64(len(bomb))}, bytes.NewReader(bomb))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err = s.Thumbnail(context.Background(), rec, ThumbnailRequest{Width: 32, Height: 32, Method: "crop"})
	if !errors.Is(err, thumbgen.ErrTooLarge) {
		t.Fatalf("bomb: %v, want ErrTooLarge", err)
	}
	// Refused from the header: decoding 30000x30000 RGBA would allocate 3.6 GB.
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", alloc)
	}
	// Still healthy: a real image thumbnails.
	ok := uploadFile(t, s, "ok", "../thumbgen/testdata/video-001.png", "image/png")
	readThumb(t, s, ok, ThumbnailRequest{Width: 32, Height: 32, Method: "crop"})
}

func TestGCKeepsThumbnailsOfLiveSources(t *testing.T) {
	later := time.Now().Add(48 * time.Hour)
	s, err := Open(Options{Create: true, Dir: t.TempDir(), Now: func() time.Time { return later }, Thumbnails: ThumbnailOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keep := uploadFile(t, s, "keep", "../thumbgen/testdata/video-001.png", "image/png")
	drop := uploadFile(t, s, "drop", "../thumbgen/testdata/video-001.jpeg", "image/jpeg")
	req := ThumbnailRequest{Width: 32, Height: 32, Method: "crop"}
	want, _ := readThumb(t, s, keep, req)
	readThumb(t, s, drop, req)
	if err := s.Delete(mustMXC("s", "drop")); err != nil {
		t.Fatal(err)
	}
	st, err := s.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ObjectsDeleted != 2 { // the deleted source and its thumbnail
		t.Errorf("GC removed %d objects, want 2: %+v", st.ObjectsDeleted, st)
	}
	made := s.thumbs.made.Load()
	got, _ := readThumb(t, s, keep, req)
	if !bytes.Equal(got, want) || s.thumbs.made.Load() != made {
		t.Error("the live source's thumbnail did not survive GC")
	}
	rep, err := s.Fsck(context.Background())
	if err != nil || !rep.Healthy() {
		t.Errorf("fsck after GC: %+v, %v", rep, err)
	}
}
