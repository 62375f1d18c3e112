package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/testkit"
)

// The conformance suite: one set of behaviour tests run on every
// implementation of the index, the Pebble one and the PostgreSQL one (as
// cas/castest does for the chunk stores). Tests about Pebble's files (reopen,
// checkpoints, the key layout, the change log) stay in their own files; the
// PostgreSQL-only behaviour (Lock waiting, Watch) is in pgindex_test.go.

func TestMain(m *testing.M) { os.Exit(testkit.RunWithPG(m)) }

// backend is one implementation of the index.
type backend struct {
	name string
	// open returns a new, empty index, closed when the test ends.
	open func(t *testing.T) *DB
	// nodes returns two handles on one new, empty index, as two processes
	// sharing it hold them: with PostgreSQL two pools on one database, with
	// Pebble (one process per index) one DB twice.
	nodes func(t *testing.T) (a, b *DB)
}

var backends = []backend{
	{
		name: "pebble",
		open: openPebble,
		nodes: func(t *testing.T) (*DB, *DB) {
			db := openPebble(t)
			return db, db
		},
	},
	{
		name: "postgres",
		open: func(t *testing.T) *DB { return openPG(t, newPGDSN(t)) },
		nodes: func(t *testing.T) (*DB, *DB) {
			dsn := newPGDSN(t)
			return openPG(t, dsn), openPG(t, dsn)
		},
	},
}

func openPebble(t *testing.T) *DB {
	t.Helper()
	db := openDB(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	return db
}

// newPGDSN creates a fresh database in the test binary's PostgreSQL
// cluster and returns its DSN.
func newPGDSN(t *testing.T) string {
	t.Helper()
	c := testkit.SharedPG(t, "mxcas")
	return c.DSN(c.CreateDB(t, "index"))
}

// openPG opens the PostgreSQL index in dsn, closed when the test ends.
func openPG(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := OpenPostgres(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var conformance = []struct {
	name string
	fn   func(t *testing.T, be backend)
}{
	{"MediaRoundTrip", testMediaRoundTrip},
	{"ManifestsScanWithHighHashBytes", testManifestsScanWithHighHashBytes},
	{"UsageAddsAcrossBatches", testUsageAddsAcrossBatches},
	{"ScanMediaAndOwnership", testScanMediaAndOwnership},
	{"SnapshotIsolation", testSnapshotIsolation},
	{"DamagedRoundTrip", testDamagedRoundTrip},
	{"QuarantineScan", testQuarantineScan},
	{"ThumbnailsScan", testThumbnailsScan},
	{"ScanAndDeletePreviews", testScanAndDeletePreviews},
	{"CountPending", testCountPending},
	{"InsertMediaConflict", testInsertMediaConflict},
	{"InsertMediaRace", testInsertMediaRace},
	{"FillPending", testFillPending},
	{"FillPendingRace", testFillPendingRace},
	{"Meta", testMeta},
	{"TryLock", testTryLock},
	{"InlineChunk", testInlineChunk},
}

func TestConformance(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range conformance {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, be) })
			}
		})
	}
}

// tryCommit commits the batch fn fills, returning fn's or Commit's error.
func tryCommit(db *DB, fn func(b *Batch) error) error {
	b := db.NewBatch()
	defer b.Close()
	if err := fn(b); err != nil {
		return err
	}
	return b.Commit()
}

// race commits, from n goroutines released at once, the batches fill(i)
// fills, on the nodes in turn, and returns the index of the one that
// committed; the others must fail with ErrConflict.
func race(t *testing.T, nodes []*DB, n int, fill func(i int) func(b *Batch) error) int {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = tryCommit(nodes[i%len(nodes)], fill(i))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("batches %d and %d both committed", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, ErrConflict):
			t.Fatalf("batch %d: %v, want ErrConflict or success", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no batch committed: %v", errs)
	}
	return winner
}

// owned returns what user owns, as "server/id".
func owned(t *testing.T, db *DB, user string) []string {
	t.Helper()
	var got []string
	if err := db.ScanOwned(user, func(server, id string) error {
		got = append(got, server+"/"+id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func wantUsage(t *testing.T, what string, get func() (Usage, error), want Usage) {
	t.Helper()
	if got, err := get(); err != nil || got != want {
		t.Errorf("%s = %+v, %v; want %+v", what, got, err, want)
	}
}

func testMediaRoundTrip(t *testing.T, be backend) {
	db := be.open(t)
	want := MediaRecord{
		Server: "example.org", MediaID: "abcDEF_-1", Object: hashOf("x"), Size: 1,
		ContentType: "img/png", UploadName: "ünïcode name.png", Uploader: "@a/b:example.org",
		Created: 1700000000123, RequiresAuth: true,
	}
	commit(t, db, func(b *Batch) error { return b.PutMedia(want) })
	got, err := db.Media("example.org", "abcDEF_-1")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := db.Media("example.org", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing media: got %v, want ErrNotFound", err)
	}
	replaced := want
	replaced.Size, replaced.Object = 2, hashOf("y")
	commit(t, db, func(b *Batch) error { return b.PutMedia(replaced) })
	if got, err := db.Media("example.org", "abcDEF_-1"); err != nil || got != replaced {
		t.Errorf("replaced media: got %+v, %v; want %+v", got, err, replaced)
	}
	commit(t, db, func(b *Batch) error { return b.DeleteMedia("example.org", "abcDEF_-1") })
	if _, err := db.Media("example.org", "abcDEF_-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted media: got %v, want ErrNotFound", err)
	}
}

func testManifestsScanWithHighHashBytes(t *testing.T, be backend) {
	db := be.open(t)
	var hs []cas.Hash
	for _, first := range []byte{0x00, 0x7f, 0xff} {
		h := hashOf(string(first))
		h[0] = first
		for i := 1; i < 4; i++ {
			h[i] = 0xff
		}
		hs = append(hs, h)
	}
	m := Manifest{Size: 3, Chunks: []ChunkRef{{Hash: hashOf("a"), Len: 3}}}
	commit(t, db, func(b *Batch) error {
		for _, h := range hs {
			if err := b.PutManifest(h, m); err != nil {
				return err
			}
		}
		// An owner record after o/ in key order must not show up as a manifest.
		return b.PutOwner("@u:x", "x", "id")
	})
	var got []cas.Hash
	err := db.ScanManifests(func(h cas.Hash, gm Manifest, err error) error {
		if gm.Size != m.Size || !slices.Equal(gm.Chunks, m.Chunks) {
			t.Errorf("manifest of %s = %+v, want %+v", h.Short(), gm, m)
		}
		got = append(got, h)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, hs) {
		t.Errorf("scanned %d manifests %v, want %v", len(got), got, hs)
	}
	for _, h := range hs {
		if ok, err := db.HasManifest(h); !ok || err != nil {
			t.Errorf("HasManifest(%s) = %v, %v", h.Short(), ok, err)
		}
	}
	commit(t, db, func(b *Batch) error { return b.DeleteManifest(hs[1]) })
	if ok, err := db.HasManifest(hs[1]); ok || err != nil {
		t.Errorf("deleted manifest: HasManifest = %v, %v", ok, err)
	}
	if _, err := db.Manifest(hs[1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted manifest: %v, want ErrNotFound", err)
	}
}

// Usage counters add up across batches, from concurrent batches on every
// node, negative deltas included; TotalServerUsage sums the servers'.
func testUsageAddsAcrossBatches(t *testing.T, be backend) {
	a, b := be.nodes(t)
	for i := range 10 {
		commit(t, a, func(bt *Batch) error {
			return bt.AddUsage("@u:example.org", "example.org", Usage{Bytes: int64(i), Count: 1})
		})
	}
	commit(t, b, func(bt *Batch) error { return bt.AddUsage("", "example.org", Usage{Bytes: 100, Count: 1}) })
	commit(t, a, func(bt *Batch) error {
		return bt.AddUsage("@u:example.org", "example.org", Usage{Bytes: -5, Count: -1})
	})
	wantUsage(t, "user usage", func() (Usage, error) { return b.UserUsage("@u:example.org") }, Usage{Bytes: 40, Count: 9})
	wantUsage(t, "server usage", func() (Usage, error) { return b.ServerUsage("example.org") }, Usage{Bytes: 140, Count: 10})
	wantUsage(t, "unknown user usage", func() (Usage, error) { return a.UserUsage("@nobody:example.org") }, Usage{})
	commit(t, b, func(bt *Batch) error { return bt.AddUsage("", "other.example", Usage{Bytes: 7, Count: 2}) })
	wantUsage(t, "total server usage", a.TotalServerUsage, Usage{Bytes: 147, Count: 12})

	// Concurrent batches on both nodes: every delta counts.
	const workers, adds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := []*DB{a, b}[w%2]
			for range adds {
				if err := tryCommit(db, func(bt *Batch) error {
					return bt.AddUsage("@w:c.example", "c.example", Usage{Bytes: 1 << 33, Count: 1})
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := int64(workers * adds)
	wantUsage(t, "user usage after concurrent adds", func() (Usage, error) { return a.UserUsage("@w:c.example") }, Usage{Bytes: n << 33, Count: n})
	wantUsage(t, "total server usage after concurrent adds", b.TotalServerUsage, Usage{Bytes: 147 + n<<33, Count: 12 + n})
}

func testScanMediaAndOwnership(t *testing.T, be backend) {
	db := be.open(t)
	recs := []MediaRecord{
		{Server: "a.org", MediaID: "1", Uploader: "@x/y:a.org"},
		{Server: "a.org", MediaID: "2", Uploader: "@x:a.org"},
		{Server: "b.org:8448", MediaID: "1", Uploader: "@x/y:a.org"},
	}
	commit(t, db, func(b *Batch) error {
		for _, r := range recs {
			if err := b.PutMedia(r); err != nil {
				return err
			}
			if err := b.PutOwner(r.Uploader, r.Server, r.MediaID); err != nil {
				return err
			}
		}
		return nil
	})
	var got []string
	if err := db.ScanMedia(func(r MediaRecord) error {
		got = append(got, r.Server+"/"+r.MediaID+" "+r.Uploader)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.org/1 @x/y:a.org", "a.org/2 @x:a.org", "b.org:8448/1 @x/y:a.org"}; !slices.Equal(got, want) {
		t.Errorf("ScanMedia = %v, want %v", got, want)
	}
	// "@x/y:a.org" must not pick up "@x:a.org"'s media, nor the reverse.
	if got, want := owned(t, db, "@x/y:a.org"), []string{"a.org/1", "b.org:8448/1"}; !slices.Equal(got, want) {
		t.Errorf("ScanOwned = %v, want %v", got, want)
	}
	if got, want := owned(t, db, "@x:a.org"), []string{"a.org/2"}; !slices.Equal(got, want) {
		t.Errorf("ScanOwned = %v, want %v", got, want)
	}
	commit(t, db, func(b *Batch) error { return b.DeleteOwner("@x/y:a.org", "a.org", "1") })
	if got, want := owned(t, db, "@x/y:a.org"), []string{"b.org:8448/1"}; !slices.Equal(got, want) {
		t.Errorf("after DeleteOwner: ScanOwned = %v, want %v", got, want)
	}
}

// A snapshot sees what was committed before it, on any node, and nothing
// committed after: records, scans and counters.
func testSnapshotIsolation(t *testing.T, be backend) {
	a, b := be.nodes(t)
	commit(t, b, func(bt *Batch) error {
		if err := bt.PutMedia(MediaRecord{Server: "s", MediaID: "old", Size: 1}); err != nil {
			return err
		}
		if err := bt.PutMedia(MediaRecord{Server: "s", MediaID: "gone", Size: 1}); err != nil {
			return err
		}
		return bt.AddUsage("@u:s", "s", Usage{Bytes: 5, Count: 1})
	})
	snap := a.Snapshot()
	defer snap.Close()
	commit(t, b, func(bt *Batch) error {
		for _, err := range []error{
			bt.PutMedia(MediaRecord{Server: "s", MediaID: "new"}),
			bt.PutMedia(MediaRecord{Server: "s", MediaID: "old", Size: 2}),
			bt.DeleteMedia("s", "gone"),
			bt.AddUsage("@u:s", "s", Usage{Bytes: 7, Count: 1}),
			bt.AddUsage("", "t", Usage{Bytes: 9, Count: 1}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if _, err := snap.Media("s", "new"); !errors.Is(err, ErrNotFound) {
		t.Errorf("snapshot sees a later write: %v", err)
	}
	if r, err := snap.Media("s", "old"); err != nil || r.Size != 1 {
		t.Errorf("snapshot: old = %+v, %v; want the record before the change", r, err)
	}
	if _, err := snap.Media("s", "gone"); err != nil {
		t.Errorf("snapshot misses a record deleted later: %v", err)
	}
	var ids []string
	if err := snap.ScanMedia(func(r MediaRecord) error { ids = append(ids, r.MediaID); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"gone", "old"}; !slices.Equal(ids, want) {
		t.Errorf("snapshot ScanMedia = %v, want %v", ids, want)
	}
	wantUsage(t, "snapshot user usage", func() (Usage, error) { return snap.UserUsage("@u:s") }, Usage{Bytes: 5, Count: 1})
	wantUsage(t, "snapshot total server usage", snap.TotalServerUsage, Usage{Bytes: 5, Count: 1})
	wantUsage(t, "live total server usage", a.TotalServerUsage, Usage{Bytes: 21, Count: 3})
}

// A damage record round-trips through the index and is gone once deleted.
func testDamagedRoundTrip(t *testing.T, be backend) {
	db := be.open(t)
	h := hashOf("chunk")
	want := DamageRecord{Media: "mxc://example.org/x", Reason: "cas: content does not match its hash", Detected: 42}
	commit(t, db, func(b *Batch) error { return b.PutDamaged(h, want) })
	got := map[cas.Hash]DamageRecord{}
	scan := func() {
		clear(got)
		if err := db.ScanDamaged(func(h cas.Hash, d DamageRecord, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			got[h] = d
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	scan()
	if len(got) != 1 || got[h] != want {
		t.Fatalf("got %v, want {%s: %v}", got, h.Short(), want)
	}
	commit(t, db, func(b *Batch) error { return b.DeleteDamaged(h) })
	scan()
	if len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
}

// ScanQuarantine lists every content and homeserver, ScanQuarantineOf one
// content's, and DeleteQuarantine lifts exactly one.
func testQuarantineScan(t *testing.T, be backend) {
	db := be.open(t)
	h1, h2 := hashOf("one"), hashOf("two")
	h1[0], h2[0] = 0x00, 0xff
	q := QuarantineRecord{By: "@admin:a.example", At: 7}
	commit(t, db, func(b *Batch) error {
		for _, err := range []error{
			b.PutQuarantine(h1, "a.example", q),
			b.PutQuarantine(h1, "b.example:8448", q),
			b.PutQuarantine(h2, "a.example", QuarantineRecord{By: "@other:a.example", At: 8}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	all := func() []string {
		t.Helper()
		var got []string
		if err := db.ScanQuarantine(func(h cas.Hash, hs string, q QuarantineRecord, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %s %s %d", h.Short(), hs, q.By, q.At))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []string{
		h1.Short() + " a.example @admin:a.example 7",
		h1.Short() + " b.example:8448 @admin:a.example 7",
		h2.Short() + " a.example @other:a.example 8",
	}
	if got := all(); !slices.Equal(got, want) {
		t.Errorf("ScanQuarantine = %q, want %q", got, want)
	}
	var of []string
	if err := db.ScanQuarantineOf(h1, func(hs string, q QuarantineRecord) error {
		of = append(of, hs+" "+q.By)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example @admin:a.example", "b.example:8448 @admin:a.example"}; !slices.Equal(of, want) {
		t.Errorf("ScanQuarantineOf = %q, want %q", of, want)
	}
	commit(t, db, func(b *Batch) error { return b.DeleteQuarantine(h1, "a.example") })
	if got := all(); !slices.Equal(got, want[1:]) {
		t.Errorf("after DeleteQuarantine: ScanQuarantine = %q, want %q", got, want[1:])
	}
}

// Thumbnails are found by source and spec, listed per source in spec
// order and all together, and deleted one at a time.
func testThumbnailsScan(t *testing.T, be backend) {
	db := be.open(t)
	src1, src2 := hashOf("src1"), hashOf("src2")
	src1[0], src2[0] = 0x00, 0xff
	src1[cas.HashSize-1] = '/' // a source ending in the separator is still one source
	tr := func(n int) ThumbRecord {
		return ThumbRecord{Object: hashOf(fmt.Sprint(n)), Size: int64(n), ContentType: "image/png", Width: n, Height: n}
	}
	commit(t, db, func(b *Batch) error {
		for _, err := range []error{
			b.PutThumbnail(src1, "96x96/crop/0", tr(96)),
			b.PutThumbnail(src1, "32x32/scale/0", tr(32)),
			b.PutThumbnail(src2, "96x96/crop/0", tr(1)),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if got, err := db.Thumbnail(src1, "96x96/crop/0"); err != nil || got != tr(96) {
		t.Errorf("Thumbnail = %+v, %v; want %+v", got, err, tr(96))
	}
	if _, err := db.Thumbnail(src1, "640x480/scale/0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing thumbnail: %v, want ErrNotFound", err)
	}
	var of []string
	if err := db.ScanThumbnailsOf(src1, func(spec string, got ThumbRecord) error {
		of = append(of, fmt.Sprintf("%s %d", spec, got.Width))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"32x32/scale/0 32", "96x96/crop/0 96"}; !slices.Equal(of, want) {
		t.Errorf("ScanThumbnailsOf = %q, want %q", of, want)
	}
	all := func() []string {
		t.Helper()
		var got []string
		if err := db.ScanThumbnails(func(src cas.Hash, spec string, r ThumbRecord, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %s %d", src.Short(), spec, r.Size))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []string{src1.Short() + " 32x32/scale/0 32", src1.Short() + " 96x96/crop/0 96", src2.Short() + " 96x96/crop/0 1"}
	if got := all(); !slices.Equal(got, want) {
		t.Errorf("ScanThumbnails = %q, want %q", got, want)
	}
	commit(t, db, func(b *Batch) error { return b.DeleteThumbnail(src1, "32x32/scale/0") })
	if got := all(); !slices.Equal(got, want[1:]) {
		t.Errorf("after DeleteThumbnail: ScanThumbnails = %q, want %q", got, want[1:])
	}
}

// ScanPreviews gives back the server, URL and hour each key was written
// with, hours whose bytes hold 0x00 and 0xff included; DeletePreview
// removes exactly one.
func testScanAndDeletePreviews(t *testing.T, be backend) {
	db := be.open(t)
	type key struct {
		server, url string
		hour        int64
	}
	keys := []key{
		{"a.example", "https://x/?q=a/b", 1767348000000},
		{"a.example", "https://x/?q=a/b", 0x00ff00ff00ff00},
		{"b.example", "http://y/", 3600000},
	}
	commit(t, db, func(b *Batch) error {
		for _, k := range keys {
			if err := b.PutPreview(k.server, k.url, k.hour, PreviewRecord{Fetched: k.hour}); err != nil {
				return err
			}
		}
		return nil
	})
	scan := func() map[key]bool {
		got := map[key]bool{}
		if err := db.ScanPreviews(func(server, url string, hour int64) error {
			got[key{server, url, hour}] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := scan()
	if len(got) != len(keys) {
		t.Fatalf("ScanPreviews = %v, want %v", got, keys)
	}
	for _, k := range keys {
		if !got[k] {
			t.Fatalf("ScanPreviews = %v, misses %v", got, k)
		}
	}
	if p, err := db.Preview(keys[1].server, keys[1].url, keys[1].hour); err != nil || p.Fetched != keys[1].hour {
		t.Errorf("Preview = %+v, %v; want Fetched %d", p, err, keys[1].hour)
	}
	commit(t, db, func(b *Batch) error { return b.DeletePreview(keys[0].server, keys[0].url, keys[0].hour) })
	if _, err := db.Preview(keys[0].server, keys[0].url, keys[0].hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted preview: %v, want ErrNotFound", err)
	}
	if n := len(scan()); n != 2 {
		t.Errorf("after one delete: %d previews, want 2", n)
	}
}

// CountPending counts a user's created IDs that have not lapsed, and no
// other user's (not even one whose name extends it).
func testCountPending(t *testing.T, be backend) {
	db := be.open(t)
	const now = 1_700_000_000_000
	commit(t, db, func(b *Batch) error {
		for _, err := range []error{
			b.PutPending("@u:x", "x", "a", now+1),
			b.PutPending("@u:x", "x", "b", now+60_000),
			b.PutPending("@u:x", "y", "a", now), // lapses at now
			b.PutPending("@u:x", "x", "c", now-1),
			b.PutPending("@u:xy", "x", "d", now+1),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	count := func(user string, want int) {
		t.Helper()
		if n, err := db.CountPending(user, now); err != nil || n != want {
			t.Errorf("CountPending(%s) = %d, %v; want %d", user, n, err, want)
		}
	}
	count("@u:x", 2)
	count("@u:xy", 1)
	count("@v:x", 0)
	commit(t, db, func(b *Batch) error { return b.DeletePending("@u:x", "x", "a") })
	count("@u:x", 1)
}

// A second InsertMedia of an ID fails with ErrConflict, whether the record
// was committed before or written earlier in the same batch, and nothing
// else of its batch is applied.
func testInsertMediaConflict(t *testing.T, be backend) {
	db := be.open(t)
	first := MediaRecord{Server: "s", MediaID: "m", Size: 1, Uploader: "@a:s"}
	commit(t, db, func(b *Batch) error {
		if err := b.InsertMedia(first); err != nil {
			return err
		}
		if err := b.PutOwner("@a:s", "s", "m"); err != nil {
			return err
		}
		return b.AddUsage("@a:s", "s", Usage{Bytes: 1, Count: 1})
	})
	if got, err := db.Media("s", "m"); err != nil || got != first {
		t.Fatalf("inserted media: %+v, %v; want %+v", got, err, first)
	}
	second := MediaRecord{Server: "s", MediaID: "m", Size: 2, Uploader: "@b:s"}
	err := tryCommit(db, func(b *Batch) error {
		for _, err := range []error{
			b.PutMedia(MediaRecord{Server: "s", MediaID: "side"}),
			b.InsertMedia(second),
			b.PutOwner("@b:s", "s", "m"),
			b.AddUsage("@b:s", "s", Usage{Bytes: 2, Count: 1}),
			b.DeleteOwner("@a:s", "s", "m"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second InsertMedia: %v, want ErrConflict", err)
	}
	if got, err := db.Media("s", "m"); err != nil || got != first {
		t.Errorf("after the conflict: %+v, %v; want %+v", got, err, first)
	}
	if _, err := db.Media("s", "side"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed batch's other record was written: %v", err)
	}
	if got := owned(t, db, "@b:s"); len(got) != 0 {
		t.Errorf("a failed batch's owner was written: %v", got)
	}
	if got, want := owned(t, db, "@a:s"), []string{"s/m"}; !slices.Equal(got, want) {
		t.Errorf("a failed batch's delete was applied: %v", got)
	}
	wantUsage(t, "server usage", func() (Usage, error) { return db.ServerUsage("s") }, Usage{Bytes: 1, Count: 1})
	wantUsage(t, "user usage", func() (Usage, error) { return db.UserUsage("@b:s") }, Usage{})

	// Written earlier in the same batch, by PutMedia or InsertMedia.
	for name, put := range map[string]func(*Batch, MediaRecord) error{
		"PutMedia":    (*Batch).PutMedia,
		"InsertMedia": (*Batch).InsertMedia,
	} {
		err := tryCommit(db, func(b *Batch) error {
			rec := MediaRecord{Server: "s", MediaID: "same-batch-" + name}
			if err := put(b, rec); err != nil {
				return err
			}
			return b.InsertMedia(rec)
		})
		if !errors.Is(err, ErrConflict) {
			t.Errorf("InsertMedia after %s in one batch: %v, want ErrConflict", name, err)
		}
		if _, err := db.Media("s", "same-batch-"+name); !errors.Is(err, ErrNotFound) {
			t.Errorf("InsertMedia after %s in one batch: the record was written (%v)", name, err)
		}
	}
	// Deleted earlier in the same batch: the insert may go ahead.
	commit(t, db, func(b *Batch) error {
		if err := b.DeleteMedia("s", "m"); err != nil {
			return err
		}
		return b.InsertMedia(second)
	})
	if got, err := db.Media("s", "m"); err != nil || got != second {
		t.Errorf("InsertMedia after DeleteMedia in one batch: %+v, %v; want %+v", got, err, second)
	}
}

// Batches inserting one ID at once, on every node: exactly one commits,
// with its owner and usage, and nothing of the others is applied.
func testInsertMediaRace(t *testing.T, be backend) {
	a, b := be.nodes(t)
	const rounds, racers = 8, 4
	for round := range rounds {
		id := fmt.Sprintf("m%d", round)
		winner := race(t, []*DB{a, b}, racers, func(i int) func(*Batch) error {
			user := fmt.Sprintf("@r%d:s", i)
			return func(bt *Batch) error {
				if err := bt.InsertMedia(MediaRecord{Server: "s", MediaID: id, Size: int64(i), Uploader: user}); err != nil {
					return err
				}
				if err := bt.PutOwner(user, "s", id); err != nil {
					return err
				}
				return bt.AddUsage(user, "s", Usage{Bytes: 1, Count: 1})
			}
		})
		if got, err := b.Media("s", id); err != nil || got.Size != int64(winner) {
			t.Fatalf("round %d: media %+v, %v; want the winner's (%d)", round, got, err, winner)
		}
		for i := range racers {
			has := slices.Contains(owned(t, a, fmt.Sprintf("@r%d:s", i)), "s/"+id)
			if has != (i == winner) {
				t.Fatalf("round %d: racer %d owns the media: %v (winner %d)", round, i, has, winner)
			}
		}
	}
	wantUsage(t, "server usage", func() (Usage, error) { return a.ServerUsage("s") }, Usage{Bytes: rounds, Count: rounds})
}

// FillPending commits only while the pending entry is there.
func testFillPending(t *testing.T, be backend) {
	db := be.open(t)
	const far = 1 << 62
	commit(t, db, func(b *Batch) error { return b.PutPending("@u:s", "s", "id", far) })
	fill := func(size int64) error {
		return tryCommit(db, func(b *Batch) error {
			if err := b.FillPending("@u:s", "s", "id"); err != nil {
				return err
			}
			if err := b.PutMedia(MediaRecord{Server: "s", MediaID: "id", Size: size}); err != nil {
				return err
			}
			return b.AddUsage("@u:s", "s", Usage{Bytes: size, Count: 1})
		})
	}
	if err := fill(1); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CountPending("@u:s", 0); err != nil || n != 0 {
		t.Errorf("after FillPending: CountPending = %d, %v; want 0", n, err)
	}
	if err := fill(2); !errors.Is(err, ErrConflict) {
		t.Fatalf("FillPending of a filled ID: %v, want ErrConflict", err)
	}
	if got, err := db.Media("s", "id"); err != nil || got.Size != 1 {
		t.Errorf("after the conflict: %+v, %v; want the first fill's", got, err)
	}
	wantUsage(t, "user usage", func() (Usage, error) { return db.UserUsage("@u:s") }, Usage{Bytes: 1, Count: 1})
	err := tryCommit(db, func(b *Batch) error { return b.FillPending("@u:s", "s", "never-created") })
	if !errors.Is(err, ErrConflict) {
		t.Errorf("FillPending of an ID never created: %v, want ErrConflict", err)
	}
	// Created earlier in the same batch: the fill goes ahead.
	commit(t, db, func(b *Batch) error {
		if err := b.PutPending("@u:s", "s", "now", far); err != nil {
			return err
		}
		return b.FillPending("@u:s", "s", "now")
	})
	// Deleted earlier in the same batch: it fails.
	commit(t, db, func(b *Batch) error { return b.PutPending("@u:s", "s", "twice", far) })
	err = tryCommit(db, func(b *Batch) error {
		if err := b.DeletePending("@u:s", "s", "twice"); err != nil {
			return err
		}
		return b.FillPending("@u:s", "s", "twice")
	})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("FillPending after DeletePending in one batch: %v, want ErrConflict", err)
	}
	if n, err := db.CountPending("@u:s", 0); err != nil || n != 1 {
		t.Errorf("CountPending = %d, %v; want 1 (the failed batch's delete not applied)", n, err)
	}
}

// Uploads filling one created ID at once, on every node: one commits.
func testFillPendingRace(t *testing.T, be backend) {
	a, b := be.nodes(t)
	const rounds, racers = 8, 4
	for round := range rounds {
		id := fmt.Sprintf("p%d", round)
		commit(t, a, func(bt *Batch) error { return bt.PutPending("@u:s", "s", id, 1<<62) })
		winner := race(t, []*DB{a, b}, racers, func(i int) func(*Batch) error {
			return func(bt *Batch) error {
				if err := bt.FillPending("@u:s", "s", id); err != nil {
					return err
				}
				if err := bt.PutMedia(MediaRecord{Server: "s", MediaID: id, Size: int64(i)}); err != nil {
					return err
				}
				return bt.AddUsage("@u:s", "s", Usage{Bytes: 1, Count: 1})
			}
		})
		if got, err := a.Media("s", id); err != nil || got.Size != int64(winner) {
			t.Fatalf("round %d: media %+v, %v; want the winner's (%d)", round, got, err, winner)
		}
	}
	wantUsage(t, "user usage", func() (Usage, error) { return b.UserUsage("@u:s") }, Usage{Bytes: rounds, Count: rounds})
}

// EnsureMeta stores a value once: later calls, on any node, get the first.
func testMeta(t *testing.T, be backend) {
	a, b := be.nodes(t)
	if _, err := a.Meta("format"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Meta of a new index: %v, want ErrNotFound", err)
	}
	if got, err := a.EnsureMeta("format", []byte("v1")); err != nil || string(got) != "v1" {
		t.Fatalf("first EnsureMeta = %q, %v; want v1", got, err)
	}
	if got, err := b.EnsureMeta("format", []byte("v2")); err != nil || string(got) != "v1" {
		t.Errorf("second EnsureMeta = %q, %v; want v1", got, err)
	}
	if got, err := b.Meta("format"); err != nil || string(got) != "v1" {
		t.Errorf("Meta = %q, %v; want v1", got, err)
	}
	if _, err := b.Meta("other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta of another name: %v, want ErrNotFound", err)
	}

	// Two nodes at once: both get the one value stored.
	for round := range 4 {
		name := fmt.Sprintf("race%d", round)
		got := make([][]byte, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, db := range []*DB{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i], errs[i] = db.EnsureMeta(name, []byte{byte('a' + i)})
			}()
		}
		close(start)
		wg.Wait()
		stored, err := a.Meta(name)
		if errs[0] != nil || errs[1] != nil || err != nil {
			t.Fatalf("round %d: %v, %v, %v", round, errs[0], errs[1], err)
		}
		if string(got[0]) != string(stored) || string(got[1]) != string(stored) {
			t.Fatalf("round %d: EnsureMeta returned %q and %q, %q is stored", round, got[0], got[1], stored)
		}
	}
}

// A second TryLock of a name, on any node, fails until the holder unlocks.
func testTryLock(t *testing.T, be backend) {
	a, b := be.nodes(t)
	ctx := context.Background()
	tryLock := func(db *DB, name string, want bool) func() {
		t.Helper()
		unlock, ok, err := db.TryLock(ctx, name)
		if err != nil || ok != want {
			t.Fatalf("TryLock(%s) = %v, %v; want %v", name, ok, err, want)
		}
		return unlock
	}
	unlockA := tryLock(a, "gc", true)
	tryLock(b, "gc", false)
	tryLock(a, "gc", false)
	unlockOther := tryLock(b, "other", true)
	unlockA()
	unlockA() // a second unlock is harmless
	unlockB := tryLock(b, "gc", true)
	tryLock(a, "gc", false)
	tryLock(a, "other", false)
	unlockOther()
	unlockB()
	tryLock(a, "gc", true)()
}

// testInlineChunk: a manifest whose last chunk is inline keeps that chunk's
// bytes beside it: InlineChunk and ScanObjectsIn give them back, Manifest
// does not carry them, and DeleteManifest removes both.
func testInlineChunk(t *testing.T, be backend) {
	db := be.open(t)
	tail := []byte("the inline tail")
	a, b := hashOf("a"), hashOf("b")
	m := Manifest{Size: 70000 + int64(len(tail)), Chunks: []ChunkRef{
		{Hash: hashOf("big"), Len: 70000}, {Hash: hashOf(string(tail)), Len: uint32(len(tail)), Inline: true}}, Tail: tail}
	plain := Manifest{Size: 3, Chunks: []ChunkRef{{Hash: hashOf("abc"), Len: 3}}}
	commit(t, db, func(bt *Batch) error {
		return errors.Join(bt.PutManifest(a, m), bt.PutManifest(b, plain))
	})
	got, err := db.Manifest(a)
	if err != nil || got.Tail != nil || !slices.Equal(got.Chunks, m.Chunks) || got.Stored()[0] != m.Chunks[0] || len(got.Stored()) != 1 {
		t.Fatalf("Manifest = %+v, %v; want the chunks, no tail", got, err)
	}
	if data, err := db.InlineChunk(a); err != nil || string(data) != string(tail) {
		t.Errorf("InlineChunk = %q, %v", data, err)
	}
	if _, err := db.InlineChunk(b); !errors.Is(err, ErrNotFound) {
		t.Errorf("InlineChunk of a manifest without one: %v, want ErrNotFound", err)
	}
	// ScanObjectsIn walks manifests and inline chunks side by side: c's
	// inline chunk outlived the manifest that named it, d's has none.
	c, d := hashOf("c"), hashOf("d")
	commit(t, db, func(bt *Batch) error {
		m := m
		m.Tail = []byte("c's tail ....")
		m.Chunks = []ChunkRef{{Hash: hashOf("c's tail ...."), Len: 13, Inline: true}}
		return bt.PutManifest(c, m)
	})
	commit(t, db, func(bt *Batch) error {
		return errors.Join(bt.PutManifest(c, plain), bt.set(inlineKey(d), []byte("d's lone chunk")))
	})
	want := map[cas.Hash]string{a: "manifest inline " + string(tail), b: "manifest", c: "manifest inline c's tail ....", d: "inline d's lone chunk"}
	scan := func(lo, hi cas.Hash, toEnd bool) []cas.Hash {
		var seen []cas.Hash
		if err := db.ScanObjectsIn(lo, hi, toEnd, func(e ObjectEntry) error {
			seen = append(seen, e.Hash)
			got := ""
			if e.HasManifest {
				got = "manifest"
				if e.DecodeErr != nil || len(e.Manifest.Chunks) == 0 {
					t.Errorf("ScanObjectsIn: %s: manifest %+v, %v", e.Hash.Short(), e.Manifest, e.DecodeErr)
				}
			}
			if data, err := e.Inline(); err == nil {
				got = strings.TrimSpace(got + " inline " + string(data))
			} else if e.HasInline || !errors.Is(err, ErrNotFound) {
				t.Errorf("ScanObjectsIn: %s: Inline: %v", e.Hash.Short(), err)
			}
			if got != want[e.Hash] {
				t.Errorf("ScanObjectsIn: %s = %q, want %q", e.Hash.Short(), got, want[e.Hash])
			}
			return nil
		}); err != nil {
			t.Fatalf("ScanObjectsIn: %v", err)
		}
		return seen
	}
	all := slices.SortedFunc(maps.Keys(want), func(x, y cas.Hash) int { return bytes.Compare(x[:], y[:]) })
	if got := scan(cas.Hash{}, cas.Hash{}, true); !slices.Equal(got, all) {
		t.Errorf("ScanObjectsIn of everything = %v, want %v", got, all)
	}
	if got := scan(all[1], all[3], false); !slices.Equal(got, all[1:3]) {
		t.Errorf("ScanObjectsIn of [%s, %s) = %v, want %v", all[1].Short(), all[3].Short(), got, all[1:3])
	}
	if got := scan(all[2], cas.Hash{}, true); !slices.Equal(got, all[2:]) {
		t.Errorf("ScanObjectsIn from %s = %v, want %v", all[2].Short(), got, all[2:])
	}
	// A manifest claiming an inline chunk must come with its bytes.
	bad := m
	bad.Tail = nil
	if err := tryCommit(db, func(bt *Batch) error { return bt.PutManifest(hashOf("c"), bad) }); err == nil {
		t.Error("PutManifest of an inline manifest without its tail succeeded")
	}
	commit(t, db, func(bt *Batch) error { return bt.DeleteManifest(a) })
	if _, err := db.InlineChunk(a); !errors.Is(err, ErrNotFound) {
		t.Errorf("InlineChunk after DeleteManifest: %v, want ErrNotFound", err)
	}
}
