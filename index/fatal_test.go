package index

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/testkit"
)

// commitUntilError commits batches of 64 KiB, up to n bytes in all, and
// returns the first error. Past a memtable's worth, Pebble starts a new
// write-ahead log, which on a full disk gets no preallocated space.
func commitUntilError(t *testing.T, db *DB, n int) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for i := 0; i*(64<<10) < n; i++ {
			b := db.NewBatch()
			rec := MediaRecord{Server: "s", MediaID: fmt.Sprintf("m%d", i), UploadName: strings.Repeat("x", 64<<10)}
			if err := b.PutMedia(rec); err != nil {
				done <- err
				return
			}
			err := b.Commit()
			b.Close()
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("commits on a full disk hang")
		return nil
	}
}

// waitClosed fails the test unless ch is closed within a generous bound (a
// deadline for a hang, not a speed check).
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still waiting after 30s", what)
	}
}

// A commit that cannot be written (the disk full, no ballast) fails the
// index cleanly: the commit returns ErrFailed instead of panicking out of
// Pebble, later writes are refused at once, Failed is closed and Close
// returns instead of hanging. Reopened with room, every earlier commit is
// there.
func TestFatalCommitFailsTheIndex(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 32<<20)
	dir := filepath.Join(mnt, "index")
	db, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	commit(t, db, func(b *Batch) error { return b.PutMedia(MediaRecord{Server: "s", MediaID: "before"}) })
	filler := filepath.Join(mnt, "filler")
	testkit.FillDisk(t, filler)

	cerr := commitUntilError(t, db, 16<<20)
	if !errors.Is(cerr, ErrFailed) {
		t.Fatalf("commit on a full disk: %v, want ErrFailed", cerr)
	}
	waitClosed(t, db.Failed(), "Failed after a fatal commit")
	if !errors.Is(db.Err(), ErrFailed) {
		t.Errorf("Err = %v, want ErrFailed", db.Err())
	}
	b2 := db.NewBatch()
	b2.PutMedia(MediaRecord{Server: "s", MediaID: "after"})
	if err := b2.Commit(); !errors.Is(err, ErrFailed) {
		t.Errorf("a later commit: %v, want ErrFailed", err)
	}
	b2.Close()
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		if !errors.Is(err, ErrFailed) {
			t.Errorf("Close of a failed index: %v, want ErrFailed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close of a failed index hangs")
	}
}

// With OnDiskFull releasing a ballast, the same commits succeed. (The
// ballast covers the preallocated logs of Pebble's first, growing
// memtables too.)
func TestOnDiskFullLetsTheCommitThrough(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 64<<20)
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 40<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	calls := 0
	dir := filepath.Join(mnt, "index")
	db, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler), OnDiskFull: func() {
		calls++
		os.Remove(ballast)
	}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.FillDisk(t, filepath.Join(mnt, "filler"))
	if err := commitUntilError(t, db, 5<<20); err != nil {
		t.Fatalf("commits on a full disk with a ballast to release: %v (OnDiskFull calls: %d)", err, calls)
	}
	if calls == 0 {
		t.Error("OnDiskFull was not called")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	if _, err := db.Media("s", "m0"); err != nil {
		t.Errorf("after reopening: %v", err)
	}
}

// A fatal error on a goroutine of Pebble's own (no guarded call to recover
// it) marks the index failed without crashing the process; one inside a
// guarded call becomes its error.
func TestFatalOutsideAndInsideGuarded(t *testing.T) {
	f := newFailure()
	go f.fatal("background write failed") // parks for good
	waitClosed(t, f.done, "failure")
	if err := f.get(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "background write failed") {
		t.Errorf("failure = %v", err)
	}

	g := newFailure()
	err := guarded(func() error {
		g.fatal("commit failed")
		return nil
	})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "commit failed") {
		t.Errorf("guarded = %v, want ErrFailed: commit failed", err)
	}
	// Other panics are not ours to swallow.
	defer func() {
		if p := recover(); p != "other" {
			t.Errorf("recovered %v, want the panic to go on", p)
		}
	}()
	guarded(func() error { panic("other") })
}
