package media_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
)

// wantStoreFigures checks the gauges of st against what is on disk: the
// chunk files under dir, and the media and their sizes.
// wantStoreFigures checks the store's figures: the chunk files on disk,
// the distinct content stored (chunk files and inline chunks), media and
// logical bytes.
func wantStoreFigures(t *testing.T, st media.Stats, dir string, wantMedia, wantLogical, wantStored int64) {
	t.Helper()
	files := chunkFiles(t, dir)
	var inFiles int64
	for _, n := range files {
		inFiles += n
	}
	if !st.ChunksCounted || st.Chunks != int64(len(files)) || st.StoredBytes != wantStored || inFiles >= wantStored && wantStored > 0 {
		t.Errorf("chunks: counted %v, %d chunks, %d bytes stored; want %d chunk files (%d bytes, some inline besides), %d bytes stored",
			st.ChunksCounted, st.Chunks, st.StoredBytes, len(files), inFiles, wantStored)
	}
	if st.Media != wantMedia || st.LogicalBytes != wantLogical {
		t.Errorf("media: %d of %d bytes, want %d of %d", st.Media, st.LogicalBytes, wantMedia, wantLogical)
	}
}

// Stats follow uploads (the same bytes twice: logical bytes double, stored
// bytes do not), deletions and GC; the gauges are the same after a reopen
// (from the index's counters and a count of the chunk files), the counters
// start again from zero.
func TestStatsFollowUploadsDeletesAndGC(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "data")
	opts := media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now, CountChunks: true}
	s := openStore(t, opts)
	if st := s.Stats(); st.Media != 0 || st.Chunks != 0 || !st.ChunksCounted || st.DedupRatio() != 1 {
		t.Fatalf("empty store: %+v", st)
	}
	a, c := randBytes(1, 200_000), randBytes(2, 50_000)
	upload(t, s, "a1", "@alice:"+server, a)
	upload(t, s, "a2", "@bob:"+server, a)
	upload(t, s, "c", "@alice:"+server, c)
	logical := int64(2*len(a) + len(c))
	st := s.Stats()
	wantStoreFigures(t, st, dir, 3, logical, int64(len(a)+len(c)))
	if st.Uploads != 3 || st.UploadBytes != logical {
		t.Errorf("uploads: %d of %d bytes, want 3 of %d", st.Uploads, st.UploadBytes, logical)
	}
	if want := float64(logical) / float64(len(a)+len(c)); st.DedupRatio() != want {
		t.Errorf("DedupRatio = %v, want %v", st.DedupRatio(), want)
	}
	if err := s.Delete(mxc("a1")); err != nil {
		t.Fatal(err)
	}
	wantStoreFigures(t, s.Stats(), dir, 2, int64(len(a)+len(c)), int64(len(a)+len(c)))

	closeStore(t, s)
	s = openStore(t, opts)
	st = s.Stats()
	wantStoreFigures(t, st, dir, 2, int64(len(a)+len(c)), int64(len(a)+len(c)))
	if st.Uploads != 0 || st.GCRuns != 0 {
		t.Errorf("counters after reopen: %+v, want zero", st)
	}
	before := st
	var beforeFiles int64 // GC counts the bytes of the chunk files it removes
	for _, n := range chunkFiles(t, dir) {
		beforeFiles += n
	}

	for _, id := range []string{"a2", "c"} {
		if err := s.Delete(mxc(id)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Hour) // past the grace period
	gcst := gc(t, s)
	st = s.Stats()
	wantStoreFigures(t, st, dir, 0, 0, 0)
	if st.GCRuns != 1 || st.GCChunksDeleted != before.Chunks || st.GCBytesDeleted != beforeFiles ||
		int64(gcst.ChunksDeleted) != before.Chunks {
		t.Errorf("GC: runs %d, deleted %d chunks of %d bytes; want 1, %d of %d", st.GCRuns, st.GCChunksDeleted,
			st.GCBytesDeleted, before.Chunks, beforeFiles)
	}
}

// Without Options.CountChunks, Open walks no chunk files: the chunk figures
// are unknown and the dedup ratio is 1; media figures are kept anyway.
func TestStatsWithoutCountChunks(t *testing.T) {
	s, _ := newStore(t, nil)
	upload(t, s, "x", "@alice:"+server, randBytes(3, 10_000))
	st := s.Stats()
	if st.ChunksCounted || st.Chunks != 0 || st.DedupRatio() != 1 || st.Media != 1 || st.LogicalBytes != 10_000 {
		t.Errorf("Stats = %+v", st)
	}
}

// Remote fetches are counted by result, once per fetch from the remote
// (or refused by the backoff), never for media already cached.
func TestStatsRemoteFetchResults(t *testing.T) {
	okm, big := mustMXC("far.test", "ok"), mustMXC("far.test", "big")
	f := &fetcher{files: map[string][]byte{okm.String(): []byte("small"), big.String(): make([]byte, 5000)}}
	s := openRemote(t, f, 1000)
	ctx := context.Background()
	s.FetchRemote(ctx, okm)
	s.FetchRemote(ctx, okm) // cached: no fetch
	s.FetchRemote(ctx, big)
	s.FetchRemote(ctx, mustMXC("far.test", "none"))
	f.fail = errors.New("connection refused")
	s.FetchRemote(ctx, mustMXC("down.test", "x"))
	s.FetchRemote(ctx, mustMXC("down.test", "y")) // backed off
	want := [media.NumFetchResults]int64{media.FetchOK: 1, media.FetchNotFound: 1, media.FetchTooLarge: 1,
		media.FetchUnavailable: 1, media.FetchBackoff: 1}
	if got := s.Stats().RemoteFetches; got != want {
		t.Errorf("RemoteFetches = %v, want %v", got, want)
	}
	if st := s.Stats(); st.Media != 1 || st.LogicalBytes != 5 {
		t.Errorf("remote cache: %d media of %d bytes, want 1 of 5", st.Media, st.LogicalBytes)
	}
	if got := media.FetchTooLarge.String(); got != "too_large" {
		t.Errorf("FetchTooLarge.String() = %q", got)
	}
}

// Thumbnails: made and served once generated, served again from the store
// without being made, refused for a source that is not an image; Observe
// sees each one made.
func TestStatsThumbnails(t *testing.T) {
	var observed atomic.Int64
	s := openStore(t, media.Options{Create: true, Dir: t.TempDir(), Thumbnails: media.ThumbnailOptions{
		Disabled: true, // no pregeneration: only requests make thumbnails
		Observe: func(took time.Duration) {
			if took >= 0 {
				observed.Add(1)
			}
		},
	}})
	img := upload(t, s, "img", "@alice:"+server, pngOf(t, 200, 100))
	txt := upload(t, s, "txt", "@alice:"+server, bytes.Repeat([]byte("not an image "), 100))
	ctx := context.Background()
	req := media.ThumbnailRequest{Width: 32, Height: 32}
	for range 2 {
		r, _, err := s.Thumbnail(ctx, img, req)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	if _, _, err := s.Thumbnail(ctx, txt, req); !errors.Is(err, media.ErrCannotThumbnail) {
		t.Fatalf("thumbnail of text: %v", err)
	}
	st := s.Stats()
	if st.ThumbnailsMade != 1 || st.ThumbnailsServed != 2 || st.ThumbnailsRefused != 1 || observed.Load() != 1 {
		t.Errorf("made %d, served %d, refused %d, observed %d; want 1, 2, 1, 1",
			st.ThumbnailsMade, st.ThumbnailsServed, st.ThumbnailsRefused, observed.Load())
	}
}
