package media_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// With a shared index a thumbnail request holds a pooled connection (the
// source's advisory lock) while it waits for a decoding worker; the worker
// then needs a connection to read the source. As many requests for
// distinct sources as the pool has connections must still all be served
// (here a pool of 3; in production 32 of MaxWaiting's 64). On e8639e4
// it hangs for good: each request holds the lock's connection and waits,
// with no deadline, for a second one (readThumbnail after the lock, then
// the source's manifest), so it is skipped unless MXCAS_SHOW_HANGS is set.
func TestSharedThumbnailsPoolOfLockHolders(t *testing.T) {
	if os.Getenv("MXCAS_SHOW_HANGS") == "" {
		t.Skip("hangs until pgReader reads have a deadline and the lock does not pin a pooled connection; set MXCAS_SHOW_HANGS=1")
	}
	const n = 3
	pg := testkit.SharedPG(t, "mxcas")
	dsn := pg.DSN(pg.CreateDB(t, "media")) + "&pool_max_conns=3"
	srv := testkit.StartS3(t)
	s := openStore(t, media.Options{Dir: filepath.Join(t.TempDir(), "a"), Create: true,
		Chunks: bucketChunks(t, srv, "shared/"), ChunksAt: "s3 shared", IndexDSN: dsn,
		Thumbnails: media.ThumbnailOptions{Disabled: true, Workers: 1}, Logger: quietLogger()})
	recs := make([]media.Media, n)
	for i := range recs {
		img := image.NewRGBA(image.Rect(0, 0, 64, 64))
		for p := range img.Pix {
			img.Pix[p] = byte(40 * (i + 1))
		}
		img.Set(0, 0, color.RGBA{1, 2, 3, 255})
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		recs[i] = uploadAs(t, s, "img"+string(rune('a'+i)), "image/png", buf.Bytes())
	}
	// Every request reaches the worker queue (holding its lock) before
	// any is let through.
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	s.SetThumbnailWaitHook(func() {
		mu.Lock()
		if arrived++; arrived == n {
			close(all)
		}
		mu.Unlock()
		<-all
	})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := s.Thumbnail(context.Background(), rec, media.ThumbnailRequest{Width: 32, Height: 32})
			if err == nil {
				r.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("thumbnail of %s: %v", recs[i].MXC, err)
		}
	}
}
