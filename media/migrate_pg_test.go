package media_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// indexState is what a migration must carry over besides the media and
// thumbnails: the usage counters (by user, and the server's), the usage
// of the media each user owns, the quarantine of "q" by ID, and that of
// m2's content.
type indexState struct {
	counters map[string]index.Usage
	owned    map[string]media.Usage
	qBy      string
	m2Err    error
}

func readIndexState(t *testing.T, s *media.Store) indexState {
	t.Helper()
	st := indexState{counters: make(map[string]index.Usage), owned: make(map[string]media.Usage)}
	for _, user := range []string{"@u:server", "@v:server"} {
		u, err := s.UserCounters(user)
		if err != nil {
			t.Fatal(err)
		}
		st.counters[user] = u
		if st.owned[user], err = s.UserUsage(context.Background(), user); err != nil {
			t.Fatal(err)
		}
	}
	b, n, err := s.UsageCounters(server)
	if err != nil {
		t.Fatal(err)
	}
	st.counters[server] = index.Usage{Bytes: b, Count: n}
	rec, err := s.Stat(mxc("q"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Quarantined {
		st.qBy = rec.QuarantinedBy
	}
	_, st.m2Err = s.Resolve(context.Background(), mxc("m2"), media.ReadOptions{})
	return st
}

// contentQuarantined reports whether err is Resolve's refusal of
// quarantined content.
func contentQuarantined(err error) bool {
	return errors.Is(err, media.ErrNotFound) && strings.Contains(err.Error(), "content is quarantined")
}

// checkIndexState fails unless s's indexState is want.
func checkIndexState(t *testing.T, what string, s *media.Store, want indexState) {
	t.Helper()
	got := readIndexState(t, s)
	if !maps.Equal(got.counters, want.counters) || !maps.Equal(got.owned, want.owned) {
		t.Errorf("%s: counters %v, owned %v; want %v, %v", what, got.counters, got.owned, want.counters, want.owned)
	}
	if got.qBy != want.qBy || !contentQuarantined(got.m2Err) {
		t.Errorf("%s: q quarantined by %q, m2 read: %v; want by %q, and its content quarantined", what, got.qBy, got.m2Err, want.qBy)
	}
}

// TestMigrateIndexToPostgresAndBack: a local store moves to S3 with its
// index in PostgreSQL (an interrupted run is resumed, and the database
// is no store meanwhile), then back to a local store, and is backed up:
// each time every media, the thumbnail, the counters, ownership and
// quarantines come along. A database that is not empty is refused.
func TestMigrateIndexToPostgresAndBack(t *testing.T) {
	ctx := context.Background()
	srv := testkit.StartS3(t)
	pg := testkit.SharedPG(t, "mxcas")
	srcDir := filepath.Join(t.TempDir(), "data")
	src := openStore(t, media.Options{Create: true, Dir: srcDir, Chunker: smallParams, Thumbnails: noThumbs})
	want, thumb := migrateFixture(t, src)
	upload(t, src, "q", "@u:server", randBytes(77, 3000))
	if err := src.Quarantine(mxc("q"), "@admin:server"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.QuarantineContent(mxc("m2"), server, "@admin:server"); err != nil {
		t.Fatal(err)
	}
	delete(want, "m2")
	state := readIndexState(t, src)
	if state.counters[server].Count == 0 || state.qBy == "" || !contentQuarantined(state.m2Err) {
		t.Fatalf("fixture: %+v", state)
	}
	srcRep := fsck(t, src)

	// A database another store uses: refused, nothing written anywhere.
	busy := pg.DSN(pg.CreateDB(t, "busy"))
	otherOpts := media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "other"), ChunksAt: "s3 other", IndexDSN: busy,
		Thumbnails: noThumbs}
	otherOpts.Chunks = bucketChunks(t, srv, "other")
	other := openStore(t, otherOpts)
	upload(t, other, "theirs", "@w:server", []byte("theirs"))
	closeStore(t, other)
	objects := len(srv.Objects())
	cs := bucketChunks(t, srv, "store")
	defer cs.Close()
	pgDir := filepath.Join(t.TempDir(), "pgdata")
	if _, err := src.Migrate(ctx, media.MigrateOptions{Dir: pgDir, Chunks: cs, ChunksAt: "s3 store", IndexDSN: busy}); !errors.Is(err, media.ErrMigrateDest) {
		t.Fatalf("Migrate into a database in use: %v, want ErrMigrateDest", err)
	}
	if _, err := os.Stat(pgDir); !errors.Is(err, os.ErrNotExist) || len(srv.Objects()) != objects {
		t.Errorf("the refused migration made %s (%v) or wrote %d objects", pgDir, err, len(srv.Objects())-objects)
	}
	otherOpts.Chunks = bucketChunks(t, srv, "other")
	other = openStore(t, otherOpts)
	checkContent(t, other, "theirs", []byte("theirs"))
	checkNotFound(t, other, "m0")
	closeStore(t, other)

	// Interrupted in the chunks: the database is marked, and no store.
	dsn := pg.DSN(pg.CreateDB(t, "migrated"))
	into := media.MigrateOptions{Dir: pgDir, Chunks: cs, ChunksAt: "s3 store", IndexDSN: dsn, BatchChunks: 4}
	failing := into
	failing.Chunks = &failingChunks{Storage: cs, n: 8}
	if _, err := src.Migrate(ctx, failing); !errors.Is(err, errInjected) {
		t.Fatalf("interrupted Migrate: %v, want the injected failure", err)
	}
	pgOpts := media.Options{Dir: pgDir, ChunksAt: "s3 store", IndexDSN: dsn, Thumbnails: noThumbs, Logger: quietLogger()}
	pgOpts.Chunks = bucketChunks(t, srv, "store")
	if _, err := media.Open(pgOpts); !errors.Is(err, media.ErrIndexMissing) {
		t.Fatalf("Open of an interrupted migration to PostgreSQL: %v, want ErrIndexMissing", err)
	}
	st, err := src.Migrate(ctx, into)
	if err != nil {
		t.Fatalf("resumed Migrate to PostgreSQL: %v", err)
	}
	if st.ChunksPresent != 8 || st.ChunksCopied != srcRep.Chunks-8 {
		t.Errorf("resumed Migrate = %+v; want 8 present, %d copied", st, srcRep.Chunks-8)
	}
	if _, err := src.Migrate(ctx, into); !errors.Is(err, media.ErrMigrateDest) {
		t.Errorf("Migrate into a finished migration to PostgreSQL: %v, want ErrMigrateDest", err)
	}
	closeStore(t, src)

	pgOpts.Chunks = bucketChunks(t, srv, "store")
	onPG := openStore(t, pgOpts)
	checkMigratedIndex(t, "on PostgreSQL", onPG, pgDir, want, thumb, state, srcRep)
	if f, err := os.ReadFile(filepath.Join(pgDir, "FORMAT")); err != nil || !strings.Contains(string(f), "index postgres\n") {
		t.Errorf("FORMAT of the migrated store: %q, %v; want an index postgres line", f, err)
	}

	// Back to a local Pebble store, and a backup of the PostgreSQL one.
	backDir := filepath.Join(t.TempDir(), "back")
	if _, err := onPG.Migrate(ctx, media.MigrateOptions{Dir: backDir}); err != nil {
		t.Fatalf("Migrate from PostgreSQL: %v", err)
	}
	bakDir := filepath.Join(t.TempDir(), "backup")
	backup(t, onPG, bakDir)
	closeStore(t, onPG)
	for _, dir := range []string{backDir, bakDir} {
		s := openStore(t, media.Options{Dir: dir, Thumbnails: noThumbs})
		checkMigratedIndex(t, dir, s, dir, want, thumb, state, srcRep)
		closeStore(t, s)
		if f, err := os.ReadFile(filepath.Join(dir, "FORMAT")); err != nil || strings.Contains(string(f), "index") ||
			strings.Contains(string(f), "chunks") {
			t.Errorf("FORMAT of %s: %q, %v; want a local store's", dir, f, err)
		}
	}
}

// checkMigratedIndex is checkMigrated (but FORMAT) with the index state.
func checkMigratedIndex(t *testing.T, what string, s *media.Store, dir string, want map[string][]byte, thumb []byte, state indexState, src media.FsckReport) {
	t.Helper()
	checkMigrated(t, s, dir, want, thumb, nil, src)
	checkIndexState(t, what, s, state)
}

// TestMigrateIndexOnly: a store in a bucket moves its index to PostgreSQL
// and keeps its chunks where they are: none is copied.
func TestMigrateIndexOnly(t *testing.T) {
	srv := testkit.StartS3(t)
	pg := testkit.SharedPG(t, "mxcas")
	dir := filepath.Join(t.TempDir(), "data")
	src := openStore(t, media.Options{Create: true, Dir: dir, Chunks: bucketChunks(t, srv, "p"), ChunksAt: "s3 p", Chunker: smallParams})
	want := map[string][]byte{"a": randBytes(31, 100_000), "b": randBytes(32, 10)}
	for id, data := range want {
		upload(t, src, id, "@u:server", data)
	}
	objects := len(srv.Objects())
	dsn := pg.DSN(pg.CreateDB(t, "indexonly"))
	cs := bucketChunks(t, srv, "p")
	defer cs.Close()
	pgDir := filepath.Join(t.TempDir(), "node")
	st, err := src.Migrate(context.Background(), media.MigrateOptions{Dir: pgDir, Chunks: cs, ChunksAt: "s3 p", IndexDSN: dsn})
	if err != nil {
		t.Fatalf("Migrate of the index only: %v", err)
	}
	if st != (media.BackupStats{}) || len(srv.Objects()) != objects {
		t.Errorf("Migrate = %+v, bucket %d objects (was %d); want nothing copied", st, len(srv.Objects()), objects)
	}
	closeStore(t, src)
	d := openStore(t, media.Options{Dir: pgDir, Chunks: bucketChunks(t, srv, "p"), ChunksAt: "s3 p", IndexDSN: dsn})
	for id, data := range want {
		checkContent(t, d, id, data)
	}
}
