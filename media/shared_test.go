package media_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// sharedPair opens two stores (two nodes) on one PostgreSQL index and one
// bucket, each with a data directory of its own.
func sharedPair(t *testing.T) (a, b *media.Store) {
	t.Helper()
	pg := testkit.SharedPG(t, "mxcas")
	dsn := pg.DSN(pg.CreateDB(t, "media"))
	srv := testkit.StartS3(t)
	open := func(name string) *media.Store {
		return openStore(t, media.Options{Dir: filepath.Join(t.TempDir(), name), Create: true,
			Chunks: bucketChunks(t, srv, "shared/"), ChunksAt: "s3 shared", IndexDSN: dsn,
			Thumbnails: noThumbs, Logger: quietLogger()})
	}
	return open("a"), open("b")
}

func TestSharedUploadReadElsewhere(t *testing.T) {
	a, b := sharedPair(t)
	data := randBytes(1, 300_000)
	upload(t, a, "one", "@u:example.org", data)
	checkContent(t, b, "one", data)
}

func TestSharedUploadRaceOneWins(t *testing.T) {
	a, b := sharedPair(t)
	for round := range 5 {
		id := "race" + string(rune('a'+round))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*media.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				data := randBytes(uint64(10*round+i), 50_000)
				_, errs[i] = s.Upload(context.Background(), media.UploadInfo{MXC: mxc(id), Uploader: "@u:example.org",
					ContentType: "application/octet-stream", Size: int64(len(data))}, bytes.NewReader(data))
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, media.ErrExists):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d uploads succeeded (%v), want 1", round, ok, errs)
		}
	}
}

func TestSharedFillRaceAndWake(t *testing.T) {
	a, b := sharedPair(t)
	rec, err := a.Create(media.CreateInfo{MXC: mxc("made"), Uploader: "@u:example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(media.CreateInfo{MXC: mxc("made"), Uploader: "@u:example.org"}); !errors.Is(err, media.ErrExists) {
		t.Fatalf("second Create on the other node: %v, want ErrExists", err)
	}
	// A download on b waits; a fill on a wakes it.
	got := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		_, err := b.Wait(ctx, rec.MXC)
		got <- err
	}()
	// Two fills at once, one on each node: one wins.
	data := randBytes(7, 100_000)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*media.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Fill(context.Background(), media.UploadInfo{MXC: rec.MXC, ContentType: "application/octet-stream",
				Size: int64(len(data))}, "@u:example.org", bytes.NewReader(data))
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("fills: %v, %v: want exactly one to succeed", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, media.ErrExists) {
			t.Fatalf("losing fill: %v, want ErrExists", err)
		}
	}
	if err := <-got; err != nil {
		t.Fatalf("Wait on the other node: %v", err)
	}
	checkContent(t, a, "made", data)
	checkContent(t, b, "made", data)
}

func TestSharedQuarantineAtOnce(t *testing.T) {
	a, b := sharedPair(t)
	data := randBytes(3, 20_000)
	upload(t, a, "q1", "@u:example.org", data)
	upload(t, a, "q2", "@u:example.org", randBytes(4, 20_000))
	checkContent(t, a, "q1", data) // cached on a, if anything caches
	if err := b.Quarantine(mxc("q1"), "@admin:example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Resolve(context.Background(), mxc("q1"), media.ReadOptions{}); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("a resolves media quarantined on b: %v", err)
	}
	checkContent(t, a, "q2", randBytes(4, 20_000))
	if _, err := a.Resolve(context.Background(), mxc("q2"), media.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.QuarantineContent(mxc("q2"), server, "@admin:example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Resolve(context.Background(), mxc("q2"), media.ReadOptions{}); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("a resolves content quarantined on b: %v", err)
	}
}

func TestSharedGCOneAtATime(t *testing.T) {
	a, b := sharedPair(t)
	upload(t, a, "g", "@u:example.org", randBytes(5, 10_000))
	var other media.GCStats
	var otherErr error
	a.SetGCHook(func() { other, otherErr = b.GC(context.Background()) })
	st, err := a.GC(context.Background())
	if err != nil || st.Busy {
		t.Fatalf("first GC: %+v, %v", st, err)
	}
	if otherErr != nil || !other.Busy {
		t.Fatalf("GC on the other node while the first runs: %+v, %v; want Busy", other, otherErr)
	}
	if st, err := b.GC(context.Background()); err != nil || st.Busy {
		t.Fatalf("GC after: %+v, %v", st, err)
	}
}
