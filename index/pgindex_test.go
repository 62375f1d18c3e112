package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxcas/mxcas/cas"
)

// What only the PostgreSQL index does: Lock waits across nodes, and Watch
// tells each node of the others' commits. The behaviour both indexes share
// is in conformance_test.go.

// waitLockWaiters waits until n sessions of the database in dsn wait for
// an advisory lock, as a guard against hanging (generous), not a measure.
func waitLockWaiters(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
			WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting == n {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d sessions wait for an advisory lock after 30s, want %d", waiting, n)
		}
	}
}

// receive returns the next value from ch, failing the test if none comes
// (a guard against hanging, not a measure).
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing after 30s", what)
		panic("unreachable")
	}
}

// A Lock held on one node makes a Lock of the name on another wait until
// it is released; a waiting Lock whose ctx is cancelled returns an error.
func TestPostgresLockWaitsForHolder(t *testing.T) {
	dsn := newPGDSN(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	ctx := context.Background()
	unlockA, err := a.Lock(ctx, "thumbs")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	go func() {
		unlock, err := b.Lock(ctx, "thumbs")
		got <- result{unlock, err}
	}()
	waitLockWaiters(t, dsn, 1)
	select {
	case r := <-got:
		t.Fatalf("Lock on b returned while a holds the lock: %v", r.err)
	default:
	}
	if _, ok, err := b.TryLock(ctx, "thumbs"); ok || err != nil {
		t.Fatalf("TryLock while a holds the lock = %v, %v; want false", ok, err)
	}
	unlockA()
	r := receive(t, got, "Lock on b after a unlocked")
	if r.err != nil {
		t.Fatal(r.err)
	}
	unlockB := r.unlock

	// Now a waits for b, and gives up.
	cctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() {
		unlock, err := a.Lock(cctx, "thumbs")
		if err == nil {
			unlock()
		}
		errs <- err
	}()
	waitLockWaiters(t, dsn, 1)
	cancel()
	if err := receive(t, errs, "cancelled Lock"); err == nil {
		t.Fatal("a Lock whose ctx was cancelled while waiting took the lock")
	}
	waitLockWaiters(t, dsn, 0)
	if _, ok, err := a.TryLock(ctx, "thumbs"); ok || err != nil {
		t.Fatalf("TryLock while b holds the lock = %v, %v; want false", ok, err)
	}
	unlockB()
	unlockB()
	unlock, err := a.Lock(ctx, "thumbs")
	if err != nil {
		t.Fatal(err)
	}
	unlock()

	if _, err := a.Lock(cctx, "other"); err == nil {
		t.Error("Lock with a cancelled ctx succeeded")
	}
}

// note is what a Watch callback was given: the media keys as server/id
// and all.
type note struct {
	media []string
	all   bool
}

func watch(t *testing.T, db *DB) <-chan note {
	t.Helper()
	ch := make(chan note, 64)
	err := db.Watch(func(ops []Op, all bool) {
		n := note{all: all}
		for _, op := range ops {
			if server, id, ok := op.MediaOf(); ok {
				n.media = append(n.media, server+"/"+id)
			}
		}
		ch <- n
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func wantNote(t *testing.T, ch <-chan note, want note) {
	t.Helper()
	got := receive(t, ch, fmt.Sprintf("notification %v", want))
	if got.all != want.all || !slices.Equal(got.media, want.media) {
		t.Fatalf("notification %+v, want %+v", got, want)
	}
}

// A commit on one node reaches the Watch of another with the media keys it
// changed; a node is not told of its own commits; a batch changing more
// keys than a notification holds arrives as all.
func TestPostgresWatch(t *testing.T) {
	dsn := newPGDSN(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	atA, atB := watch(t, a), watch(t, b)

	commit(t, a, func(bt *Batch) error {
		if err := bt.PutMedia(MediaRecord{Server: "s", MediaID: "one"}); err != nil {
			return err
		}
		if err := bt.PutOwner("@u:s", "s", "one"); err != nil {
			return err
		}
		return bt.AddUsage("@u:s", "s", Usage{Bytes: 1, Count: 1})
	})
	wantNote(t, atB, note{media: []string{"s/one"}})

	// Notifications come in commit order: had a been told of "one", that
	// would come first.
	commit(t, b, func(bt *Batch) error { return bt.InsertMedia(MediaRecord{Server: "s", MediaID: "two"}) })
	wantNote(t, atA, note{media: []string{"s/two"}})

	// A damage record in the batch does not hide the media it changed.
	commit(t, a, func(bt *Batch) error {
		if err := bt.PutDamaged(hashOf("chunk"), DamageRecord{Reason: "r"}); err != nil {
			return err
		}
		return bt.DeleteMedia("s", "one")
	})
	wantNote(t, atB, note{media: []string{"s/one"}})

	commit(t, a, func(bt *Batch) error {
		for i := range 300 {
			if err := bt.PutMedia(MediaRecord{Server: "s", MediaID: fmt.Sprintf("many-%s-%d", strings.Repeat("x", 20), i)}); err != nil {
				return err
			}
		}
		return nil
	})
	wantNote(t, atB, note{all: true})

	// A failed batch tells nobody; the next commit is the next notification.
	if err := tryCommit(a, func(bt *Batch) error { return bt.InsertMedia(MediaRecord{Server: "s", MediaID: "two"}) }); !errors.Is(err, ErrConflict) {
		t.Fatalf("InsertMedia of an existing ID: %v, want ErrConflict", err)
	}
	commit(t, a, func(bt *Batch) error { return bt.PutMedia(MediaRecord{Server: "s", MediaID: "three"}) })
	wantNote(t, atB, note{media: []string{"s/three"}})
	select {
	case n := <-atA:
		t.Errorf("a was told of a commit (%+v); its only notification was b's", n)
	default:
	}
}

// The change log and checkpoints are Pebble's: the PostgreSQL index says
// so rather than pretending.
func TestPostgresUnsupported(t *testing.T) {
	db := openPG(t, newPGDSN(t))
	if err := db.Checkpoint(t.TempDir() + "/ck"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Checkpoint: %v, want ErrUnsupported", err)
	}
	if got := db.Backend(); got != "postgres" || !db.Shared() {
		t.Errorf("Backend = %q, Shared = %v; want postgres, true", got, db.Shared())
	}
}

// Locks never take the whole pool: with a pool of 2 one Lock is held at a
// time and a second waits without a connection, so reads go on (they would
// wait for good if the waiting Lock held the pool's last connections).
func TestPostgresLocksLeaveThePool(t *testing.T) {
	dsn := newPGDSN(t)
	d := openPG(t, dsn+"&pool_max_conns=2")
	ctx := context.Background()
	unlockA, err := d.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		unlock, err := d.Lock(ctx, "b")
		if err == nil {
			unlock()
		}
		got <- err
	}()
	// The pool's other connection serves reads while "b" waits.
	for range 5 {
		if _, err := d.Media("s", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read while a lock is held and another waits: %v", err)
		}
	}
	select {
	case err := <-got:
		t.Fatalf("a second Lock was taken beside the first with a pool of 2: %v", err)
	default:
	}
	unlockA()
	if err := receive(t, got, "Lock b after a"); err != nil {
		t.Fatal(err)
	}
}

// A commit under GuardObject fails with ErrCondemned while its object or a
// chunk of it is condemned, and commits once they are absolved; Condemn
// waits for a guarded commit in progress (the sweep lock).
func TestPostgresCondemnGuards(t *testing.T) {
	dsn := newPGDSN(t)
	gc, node := openPG(t, dsn), openPG(t, dsn)
	obj, chunk := hashOf("object"), hashOf("chunk")
	m := Manifest{Size: 5, Chunks: []ChunkRef{{Hash: chunk, Len: 5}}}
	record := func() error {
		b := node.NewBatch()
		defer b.Close()
		b.GuardObject(obj, []cas.Hash{chunk}, nil) // the chunk found stored
		if err := b.PutManifest(obj, m); err != nil {
			return err
		}
		if err := b.PutMedia(MediaRecord{Server: "s", MediaID: "x", Object: obj, Size: 5}); err != nil {
			return err
		}
		return b.Commit()
	}
	for _, c := range []struct{ objs, chunks []cas.Hash }{{objs: []cas.Hash{obj}}, {chunks: []cas.Hash{chunk}}} {
		if err := gc.Condemn(c.objs, c.chunks); err != nil {
			t.Fatal(err)
		}
		if err := record(); !errors.Is(err, ErrCondemned) {
			t.Fatalf("commit referring to condemned %v: %v, want ErrCondemned", c, err)
		}
		if _, err := node.Media("s", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the refused commit wrote its record: %v", err)
		}
		if err := gc.AbsolveAll(); err != nil {
			t.Fatal(err)
		}
	}
	if err := record(); err != nil {
		t.Fatalf("commit after absolution: %v", err)
	}
	if err := gc.Condemn([]cas.Hash{hashOf("other")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := record(); err != nil {
		t.Fatalf("commit of content not condemned: %v", err)
	}
	if err := gc.Absolve([]cas.Hash{hashOf("other")}, nil); err != nil {
		t.Fatal(err)
	}
	// A chunk GC deleted: a write that found it stored before is refused; one
	// that stored it again itself commits, and lifts the mark.
	if err := gc.Condemn(nil, []cas.Hash{chunk}); err != nil { // as GC leaves a chunk it deleted
		t.Fatal(err)
	}
	if err := record(); !errors.Is(err, ErrCondemned) {
		t.Fatalf("commit of a chunk found stored and since deleted: %v, want ErrCondemned", err)
	}
	b := node.NewBatch()
	b.GuardObject(obj, nil, []cas.Hash{chunk})
	if err := b.PutManifest(obj, m); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("commit of a chunk stored again: %v", err)
	}
	b.Close()
	if err := record(); err != nil {
		t.Fatalf("commit after the chunk was stored again: %v", err)
	}
	n := 0
	if err := gc.scan(prefixCondemned, func(k, v []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("condemnations left after Absolve: %d, %v", n, err)
	}
}
