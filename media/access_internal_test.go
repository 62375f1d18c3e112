package media

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/testkit"
)

// TestLastAccessThrottled: a read records its time only when the record's
// last access (or creation) is an hour old or more; a read while someone
// holds the media's claim neither waits nor writes.
func TestLastAccessThrottled(t *testing.T) {
	t0 := time.Now()
	clk := testkit.NewClock(t0)
	s, m := storeWithOne(t, Options{Now: clk.Now})
	ctx := context.Background()
	read := func(when time.Duration, want time.Duration) {
		t.Helper()
		clk.Set(t0.Add(when))
		if _, err := s.Resolve(ctx, m, ReadOptions{}); err != nil {
			t.Fatal(err)
		}
		rec, err := s.readMedia(m) // the index, not the cache
		if err != nil {
			t.Fatal(err)
		}
		if wantMs := t0.Add(want).UnixMilli(); want < 0 && rec.LastAccess != 0 || want >= 0 && rec.LastAccess != wantMs {
			t.Errorf("read at +%v: LastAccess %d, want +%v", when, rec.LastAccess, want)
		}
	}
	read(10*time.Minute, -1)             // created within the hour: no write
	read(90*time.Minute, 90*time.Minute) // first read an hour after creation
	read(2*time.Hour, 90*time.Minute)    // within the hour of the last: no write
	read(151*time.Minute, 151*time.Minute)

	// Someone changing the record holds its claim: the read goes on at
	// once and leaves the record to them.
	if !s.claims.try(m) {
		t.Fatal("claim busy")
	}
	read(5*time.Hour, 151*time.Minute)
	s.claims.release(m)
	read(5*time.Hour, 5*time.Hour)
}

// TestLastAccessDiskFull: a read that finds the disk under its free-space
// threshold records no access, and leaves the media's claim free (a
// leaked claim would block every later change of the media).
func TestLastAccessDiskFull(t *testing.T) {
	t0 := time.Now()
	clk := testkit.NewClock(t0)
	var free atomic.Uint64
	free.Store(64 << 20)
	s, m := storeWithOne(t, Options{Now: clk.Now, MinFreeBytes: 1 << 20, BallastBytes: -1,
		FreeSpace: func() (uint64, uint64, error) { return free.Load(), 1 << 30, nil }})
	ctx := context.Background()
	free.Store(512 << 10)
	clk.Set(t0.Add(2 * time.Hour))
	if _, err := s.Resolve(ctx, m, ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.readMedia(m); err != nil || rec.LastAccess != 0 {
		t.Errorf("read on a full disk: LastAccess %d, %v; want 0", rec.LastAccess, err)
	}
	if !s.claims.try(m) {
		t.Fatal("the read left the media's claim taken")
	}
	s.claims.release(m)
}

// TestDeleteOldSelection: delete by date and size takes the local media of
// one server last used before the cutoff and larger than the size, and
// spares quarantined, protected, pending, recently read, newer, smaller,
// remote and other servers' media.
func TestDeleteOldSelection(t *testing.T) {
	t0 := time.Now().Add(-30 * 24 * time.Hour)
	clk := testkit.NewClock(t0)
	s, err := Open(Options{Create: true, Dir: t.TempDir(), Now: clk.Now, Local: func(sv string) bool { return sv != "remote.test" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	put := func(server, id string, size int) Media {
		t.Helper()
		rec, err := s.Upload(ctx, UploadInfo{MXC: mustMXC(server, id), Size: int64(size)}, bytes.NewReader(bytes.Repeat([]byte(id), size)[:size]))
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	put("s", "old", 100)
	put("s", "small", 10)
	put("s", "read", 100)
	put("other", "old", 100)
	for _, id := range []string{"quar", "prot"} {
		rec := put("s", id, 100)
		rec.Quarantined, rec.Protected = id == "quar", id == "prot"
		b := s.idx.NewBatch()
		if err := b.PutMedia(rec.record()); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		s.records.invalidate(rec.MXC)
	}
	if _, err := s.Import(ctx, ImportInfo{MXC: mustMXC("remote.test", "r"), Remote: true, Size: 100, Created: t0}, bytes.NewReader(make([]byte, 100))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(CreateInfo{MXC: mustMXC("s", "pending")}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(48 * time.Hour)
	if _, err := s.Resolve(ctx, mustMXC("s", "read"), ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	put("s", "new", 100)
	before := t0.Add(24 * time.Hour).UnixMilli()

	for _, c := range []struct {
		sizeGT int64
		want   []string
	}{{50, []string{"old"}}, {0, []string{"small"}}} {
		got, err := s.DeleteOld(ctx, "s", before, c.sizeGT)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range got {
			ids = append(ids, m.MediaID())
		}
		if len(ids) != len(c.want) || len(ids) > 0 && ids[0] != c.want[0] {
			t.Errorf("DeleteOld(size_gt %d) = %v, want %v", c.sizeGT, ids, c.want)
		}
	}
	for _, id := range []string{"read", "quar", "prot", "new", "pending"} {
		if _, err := s.readMedia(mustMXC("s", id)); err != nil {
			t.Errorf("%s: %v, want kept", id, err)
		}
	}
	if _, err := s.Stat(mustMXC("other", "old")); err != nil {
		t.Errorf("other server's media: %v, want kept", err)
	}
	if _, err := s.Stat(mustMXC("remote.test", "r")); err != nil {
		t.Errorf("remote media: %v, want kept", err)
	}
}

// storeWithOne opens a new store with o (created, every server local) and
// uploads one small media, s/A, to it.
func storeWithOne(t *testing.T, o Options) (*Store, matrix.MXC) {
	t.Helper()
	o.Create, o.Dir, o.Local = true, t.TempDir(), func(string) bool { return true }
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m := mustMXC("s", "A")
	if _, err := s.Upload(context.Background(), UploadInfo{MXC: m, Size: 3}, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	return s, m
}
