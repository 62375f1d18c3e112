package media_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// importMedia stores data as m through Import, with its history.
func importMedia(t testing.TB, s *media.Store, info media.ImportInfo, data []byte) media.Media {
	t.Helper()
	if info.ContentType == "" {
		info.ContentType = "application/octet-stream"
	}
	info.Size = int64(len(data))
	res, err := s.Import(context.Background(), info, bytes.NewReader(data))
	if err != nil || !res.Imported {
		t.Fatalf("Import(%s): imported %v, %v", info.MXC, res.Imported, err)
	}
	return res.Record
}

// storedSize is the size of the unique chunks of the given contents.
func storedSize(t testing.TB, s *media.Store, contents ...[]byte) int64 {
	t.Helper()
	all := make(map[cas.Hash]int64)
	for _, c := range contents {
		for h, n := range chunkSizes(t, c, s.Params()) {
			all[h] = n
		}
	}
	var sum int64
	for _, n := range all {
		sum += n
	}
	return sum
}

// TestUsageDedupCountedOnce checks every figure of ServerUsage and
// UserUsage exactly: the same bytes uploaded twice and a file sharing
// chunks with them are stored once; thumbnails of one content made through
// two media count once; deleted and pending media count nothing,
// quarantined media counts; remote media is in the remote cache only;
// another local server's media is not counted.
func TestUsageDedupCountedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams,
		Thumbnails: media.ThumbnailOptions{Disabled: true}})
	ctx := context.Background()
	const alice, bob = "@alice:server", "@bob:server"

	a := randBytes(1, 300<<10)
	shares := append(append([]byte(nil), a[:200<<10]...), randBytes(2, 100<<10)...) // a's first chunks, then its own
	c := randBytes(3, 50<<10)
	q := randBytes(4, 20<<10)
	img, err := os.ReadFile("../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}

	upload(t, s, "a1", alice, a)
	upload(t, s, "a2", alice, a) // the same bytes again
	upload(t, s, "shares", alice, shares)
	upload(t, s, "c", bob, c)
	importMedia(t, s, media.ImportInfo{MXC: mxc("quarantined"), Uploader: bob, Quarantined: true}, q)
	upload(t, s, "gone", alice, randBytes(5, 10<<10))
	if err := s.Delete(mxc("gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(media.CreateInfo{MXC: mxc("pending"), Uploader: alice}); err != nil {
		t.Fatal(err)
	}
	importMedia(t, s, media.ImportInfo{MXC: mustMXC("far.test", "r1"), Remote: true}, randBytes(6, 7000))
	importMedia(t, s, media.ImportInfo{MXC: mustMXC("far.test", "r2"), Remote: true}, randBytes(7, 3000))
	importMedia(t, s, media.ImportInfo{MXC: mustMXC("other", "o"), Uploader: "@carol:other"}, randBytes(8, 9000))

	// Two media with one content; thumbnails asked through each.
	var pics []media.Media
	for _, p := range []struct{ id, user string }{{"pic1", alice}, {"pic2", bob}} {
		rec, err := s.Upload(ctx, media.UploadInfo{MXC: mxc(p.id), ContentType: "image/png", Uploader: p.user,
			Size: int64(len(img))}, bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		pics = append(pics, rec)
	}
	thumbs := make(map[cas.Hash]int64)
	for i, req := range []media.ThumbnailRequest{{Width: 32, Height: 32, Method: "crop"}, {Width: 96, Height: 96, Method: "crop"}} {
		r, th, err := s.Thumbnail(ctx, pics[i%2], req)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		thumbs[th.Object] = th.Size
	}
	var thumbBytes int64
	for _, n := range thumbs {
		thumbBytes += n
	}

	n := func(b []byte) int64 { return int64(len(b)) }
	got, err := s.ServerUsage(ctx, "SERVER") // case does not matter
	if err != nil {
		t.Fatal(err)
	}
	want := media.ServerUsage{
		Usage: media.Usage{
			Media:          7,
			LogicalBytes:   2*n(a) + n(shares) + n(c) + n(q) + 2*n(img),
			StoredBytes:    storedSize(t, s, a, shares, c, q, img),
			Thumbnails:     int64(len(thumbs)),
			ThumbnailBytes: thumbBytes,
		},
		RemoteMedia: 2, RemoteBytes: 10000,
	}
	if got != want {
		t.Errorf("ServerUsage =\n %+v, want\n %+v", got, want)
	}
	if want.StoredBytes >= n(a)+n(shares)+n(c)+n(q)+n(img) {
		t.Errorf("the test shares no chunks: stored %d", want.StoredBytes)
	}

	gotA, err := s.UserUsage(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	wantA := media.Usage{Media: 4, LogicalBytes: 2*n(a) + n(shares) + n(img),
		StoredBytes: storedSize(t, s, a, shares, img), Thumbnails: int64(len(thumbs)), ThumbnailBytes: thumbBytes}
	if gotA != wantA {
		t.Errorf("UserUsage(alice) =\n %+v, want\n %+v", gotA, wantA)
	}
	gotB, err := s.UserUsage(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	wantB := media.Usage{Media: 3, LogicalBytes: n(c) + n(q) + n(img), StoredBytes: storedSize(t, s, c, q, img),
		Thumbnails: int64(len(thumbs)), ThumbnailBytes: thumbBytes}
	if gotB != wantB {
		t.Errorf("UserUsage(bob) =\n %+v, want\n %+v", gotB, wantB)
	}
	if r := wantA.DedupRatio(); r <= 1 {
		t.Errorf("alice's dedup ratio %v, want > 1", r)
	}
	if got, err := s.UserUsage(ctx, "@nobody:server"); err != nil || got != (media.Usage{}) || got.DedupRatio() != 1 {
		t.Errorf("UserUsage(nobody) = %+v, %v; want zero, ratio 1", got, err)
	}

	// The figures come from the records: reopening gives the same.
	closeStore(t, s)
	s = openStore(t, media.Options{Dir: dir})
	if again, err := s.ServerUsage(ctx, "server"); err != nil || again != want {
		t.Errorf("after reopening: %+v, %v", again, err)
	}
}

func TestUsageCancelled(t *testing.T) {
	s, _ := newStore(t, nil)
	upload(t, s, "x", "@alice:server", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ServerUsage(ctx, server); !errors.Is(err, context.Canceled) {
		t.Errorf("ServerUsage with a cancelled context: %v", err)
	}
	if _, err := s.UserMedia(ctx, "@alice:server", media.OrderCreated, false); !errors.Is(err, context.Canceled) {
		t.Errorf("UserMedia with a cancelled context: %v", err)
	}
}
