package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/testkit"
)

// copyPG opens the index in a new PostgreSQL database.
func copyPG(t *testing.T) *DB {
	t.Helper()
	pg := testkit.SharedPG(t, "mxcas")
	db, err := OpenPostgres(context.Background(), pg.DSN(pg.CreateDB(t, "index")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// copyPebble opens a new Pebble index.
func copyPebble(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "index"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// copyFill writes n media of every kind of record into db, in batches of
// ten (so the usage counters are sums of many adds), and returns db.
func copyFill(t *testing.T, db *DB, n int) *DB {
	t.Helper()
	for i := 0; i < n; i += 10 {
		b := db.NewBatch()
		for j := i; j < min(i+10, n); j++ {
			h := hashOf(fmt.Sprint("object ", j))
			id, user := fmt.Sprintf("m%03d", j), fmt.Sprintf("@u%d:example.org", j%3)
			err := errors.Join(
				b.PutMedia(MediaRecord{Server: "example.org", MediaID: id, Object: h, Size: int64(j), Uploader: user, Created: int64(j)}),
				b.PutManifest(h, Manifest{Size: int64(j), Chunks: []ChunkRef{{Hash: hashOf(fmt.Sprint("chunk ", j)), Len: uint32(j)}}}),
				b.PutOwner(user, "example.org", id),
				b.AddUsage(user, "example.org", Usage{Bytes: int64(j), Count: 1}),
				b.PutThumbnail(h, "32x32/scale/0", ThumbRecord{Object: hashOf(fmt.Sprint("thumb ", j)), Size: 7, Width: 32, Height: 32}),
			)
			if j%5 == 0 {
				err = errors.Join(err, b.PutQuarantine(h, "example.org", QuarantineRecord{By: "@admin:example.org", At: int64(j)}),
					b.PutPending(user, "example.org", "p"+id, int64(j)),
					b.PutDamaged(hashOf(fmt.Sprint("chunk ", j)), DamageRecord{Reason: "test", Detected: int64(j)}),
					b.PutPreview("example.org", fmt.Sprint("https://example.com/", j), int64(j)*3600_000, PreviewRecord{Fetched: int64(j)}))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	return db
}

// copyDump returns db's records (every key but the change log, the meta
// records and the counters) and its counters.
func copyDump(t *testing.T, db *DB) (records map[string]string, counters map[string]Usage) {
	t.Helper()
	records, counters = make(map[string]string), make(map[string]Usage)
	err := db.kv.scan(nil, nil, func(k, v []byte) error {
		switch {
		case bytes.HasPrefix(k, prefixChange) || bytes.HasPrefix(k, prefixMeta):
		case bytes.HasPrefix(k, prefixUserUse) || bytes.HasPrefix(k, prefixSiteUse):
			if db.pg != nil {
				t.Errorf("counter %q in PostgreSQL's kv table", k)
			}
		default:
			records[string(k)] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{prefixUserUse, prefixSiteUse} {
		err := db.kv.scanCounters(p, prefixEnd(p), func(k []byte, u Usage) error {
			counters[string(k)] = u
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return records, counters
}

// checkCopied fails unless dst holds what src does, and the copy is
// finished: not marked, with meta.
func checkCopied(t *testing.T, dst, src *DB, meta string) {
	t.Helper()
	wantR, wantC := copyDump(t, src)
	gotR, gotC := copyDump(t, dst)
	if !maps.Equal(gotR, wantR) {
		t.Errorf("%s copy holds %d records, want the %s source's %d (equal)", dst.Backend(), len(gotR), src.Backend(), len(wantR))
	}
	if !maps.Equal(gotC, wantC) {
		t.Errorf("%s copy's counters %v, want %v", dst.Backend(), gotC, wantC)
	}
	// Through the readers too.
	for _, user := range []string{"@u0:example.org", "@u1:example.org", "@u2:example.org"} {
		got, err1 := dst.UserUsage(user)
		want, err2 := src.UserUsage(user)
		if got != want || err1 != nil || err2 != nil || want.Count == 0 {
			t.Errorf("UserUsage(%s) = %v, %v; want %v, %v", user, got, err1, want, err2)
		}
	}
	if got, err := dst.TotalServerUsage(); err != nil || got != wantC["s/s/example.org"] {
		t.Errorf("TotalServerUsage = %v, %v; want %v", got, err, wantC["s/s/example.org"])
	}
	if got, err := dst.Copying(); got != "" || err != nil {
		t.Errorf("Copying() = %q, %v after the copy finished", got, err)
	}
	got, err := dst.Meta("format")
	if meta == "" && !errors.Is(err, ErrNotFound) || meta != "" && (string(got) != meta || err != nil) {
		t.Errorf("Meta(format) = %q, %v; want %q (none: not found)", got, err, meta)
	}
	if dst.pg == nil {
		var logged int
		dst.kv.scan(prefixChange, prefixEnd(prefixChange), func(_, _ []byte) error { logged++; return nil })
		if logged != 0 || dst.Head() != 0 {
			t.Errorf("the Pebble copy has %d changes logged (head %d), want none: copies are not changes", logged, dst.Head())
		}
	}
}

func TestCopyPebbleToPostgresAndBack(t *testing.T) {
	ctx := context.Background()
	src := copyFill(t, copyPebble(t), 45)
	if src.Head() == 0 {
		t.Fatal("the source logged no changes; the test wants a change log to leave behind")
	}
	pg := copyPG(t)
	var progress []int
	st, err := Copy(ctx, pg, src, CopyOptions{Source: "store-a", BatchKeys: 50,
		Meta:     map[string][]byte{"format": []byte("pg format")},
		Progress: func(st CopyStats) { progress = append(progress, st.Records+st.Counters) }})
	if err != nil {
		t.Fatalf("Copy to PostgreSQL: %v", err)
	}
	records, counters := copyDump(t, src)
	if st.Records != len(records) || st.Counters != len(counters) || st.Counters != 4 {
		t.Errorf("Copy = %+v, want %d records and %d counters", st, len(records), len(counters))
	}
	if len(progress) < len(records)/50 {
		t.Errorf("progress called %d times (%v), want once per batch of 50", len(progress), progress)
	}
	checkCopied(t, pg, src, "pg format")

	// And back into Pebble: the meta records stay behind.
	back := copyPebble(t)
	if _, err := Copy(ctx, back, pg, CopyOptions{Source: "store-a"}); err != nil {
		t.Fatalf("Copy to Pebble: %v", err)
	}
	checkCopied(t, back, src, "")
}

// TestCopyRefusesNonEmpty: a destination with a record or only a counter,
// or a finished copy, is refused and left as it was.
func TestCopyRefusesNonEmpty(t *testing.T) {
	ctx := context.Background()
	src := copyFill(t, copyPebble(t), 5)
	withRecord := copyPebble(t)
	commit(t, withRecord, func(b *Batch) error { return b.PutOwner("@x:example.org", "example.org", "x") })
	withCounter := copyPG(t)
	commit(t, withCounter, func(b *Batch) error { return b.AddUsage("", "example.org", Usage{Bytes: 1, Count: 1}) })
	finished := copyPG(t)
	if _, err := Copy(ctx, finished, src, CopyOptions{Source: "store-a"}); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []*DB{withRecord, withCounter, finished} {
		beforeR, beforeC := copyDump(t, dst)
		if _, err := CheckCopyDest(dst, "store-a"); !errors.Is(err, ErrCopyDest) {
			t.Errorf("CheckCopyDest of a non-empty %s index: %v, want ErrCopyDest", dst.Backend(), err)
		}
		if _, err := Copy(ctx, dst, src, CopyOptions{Source: "store-a"}); !errors.Is(err, ErrCopyDest) {
			t.Errorf("Copy into a non-empty %s index: %v, want ErrCopyDest", dst.Backend(), err)
		}
		afterR, afterC := copyDump(t, dst)
		if !maps.Equal(beforeR, afterR) || !maps.Equal(beforeC, afterC) {
			t.Errorf("the refused copy changed the %s index", dst.Backend())
		}
		if got, _ := dst.Copying(); got != "" {
			t.Errorf("the refused copy marked the %s index as %q", dst.Backend(), got)
		}
	}
}

// TestCopyResumes: an interrupted copy is marked; only the same source may
// copy into it again, and that run removes what the first wrote, so that
// records gone from the source meanwhile do not stay and the counters are
// not counted twice.
func TestCopyResumes(t *testing.T) {
	src := copyFill(t, copyPebble(t), 30)
	for _, dst := range []*DB{copyPG(t), copyPebble(t)} {
		// Interrupted once every record and counter is in, before the
		// last batch: a run that did not start over would count twice.
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Copy(ctx, dst, src, CopyOptions{Source: "store-a", BatchKeys: 20, Progress: func(st CopyStats) {
			if st.Counters > 0 {
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted Copy to %s: %v, want context.Canceled", dst.Backend(), err)
		}
		if got, err := dst.Copying(); got != "store-a" || err != nil {
			t.Fatalf("Copying() = %q, %v after an interrupted copy; want store-a", got, err)
		}
		wantR, wantC := copyDump(t, src)
		if gotR, gotC := copyDump(t, dst); len(gotR) != len(wantR) || len(gotC) != len(wantC) {
			t.Errorf("the interrupted copy to %s wrote %d records and %d counters, want all %d and %d",
				dst.Backend(), len(gotR), len(gotC), len(wantR), len(wantC))
		}
		if _, err := Copy(context.Background(), dst, src, CopyOptions{Source: "store-b"}); !errors.Is(err, ErrCopyDest) {
			t.Errorf("Copy of another source into an unfinished copy: %v, want ErrCopyDest", err)
		}
		// The source changes before the run that finishes: a record goes.
		commit(t, src, func(b *Batch) error { return b.DeleteMedia("example.org", "m000") })
		if _, err := Copy(context.Background(), dst, src, CopyOptions{Source: "store-a", BatchKeys: 20}); err != nil {
			t.Fatalf("resumed Copy to %s: %v", dst.Backend(), err)
		}
		checkCopied(t, dst, src, "")
		commit(t, src, func(b *Batch) error { return b.PutMedia(MediaRecord{Server: "example.org", MediaID: "m000"}) })
	}
}
