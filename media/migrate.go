package media

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// ErrMigrateDest: the migration's destination is neither new nor an
// unfinished migration of this store; Migrate changed nothing in it.
var ErrMigrateDest = errors.New("media: migration destination refused")

// MigrateOptions name where Migrate copies a store.
type MigrateOptions struct {
	// Dir is the destination's data directory: it receives FORMAT and the
	// index.
	Dir string
	// Chunks is the destination's chunk storage (an s3store, say), which
	// the caller opens and closes. nil: the filesystem store under Dir,
	// opened and closed by Migrate.
	Chunks cas.Storage
	// ChunksAt names where Chunks keeps the chunks, as FORMAT records it
	// (Options.ChunksAt): "" for Dir's own cas/. When it names the place
	// the store keeps its chunks already (a store in a bucket moving its
	// index only), no chunk is copied: the two then share the chunks, and
	// the source must not be used again (its GC would remove chunks the
	// destination wrote).
	ChunksAt string
	// IndexDSN, when set, puts the destination's index in that PostgreSQL
	// database (Options.IndexDSN) instead of Pebble under Dir: it must be
	// empty, or an unfinished migration of this store (index.Copy).
	IndexDSN string
	// BatchChunks is how many chunks go in one destination batch (512):
	// an interrupted migration keeps every batch it committed.
	BatchChunks int
	// Progress, when not nil, is called with the counts so far after each
	// committed batch, by one goroutine (not the caller's) at a time.
	Progress func(BackupStats)
}

const migrateBatchChunks = 512

// Migrate copies the store (index and chunks) to another data directory,
// chunk storage and index: local disk to an object store or back, Pebble
// to PostgreSQL or back. The store must be one no server is serving (the
// caller checks; the store's own lock keeps one from starting meanwhile;
// with a PostgreSQL index, every node must be stopped). A migrated store
// is the same store: the destination's FORMAT has this store's chunker
// parameters and ID.
//
// Every chunk is verified against its hash as it is read. The index goes
// in last, after every chunk: a destination with an index has all its
// chunks, and one without is refused by Open (ErrIndexMissing; a
// PostgreSQL destination is marked as an unfinished copy until its last
// batch). Migrate is resumable: run again after an interruption, it skips
// the chunks the destination already holds (and copies the index again).
// A chunk corrupt in the source is not copied, and then the index is not
// placed either: repair the source (fsck) and run Migrate again.
//
// The index of a Pebble store going to Pebble is a checkpoint (with its
// change log); otherwise it is an index.Copy, records and usage counters,
// without the change log (a standby of the source must be seeded again).
//
// opts.Dir must be missing, empty, or an unfinished migration of this
// store (FORMAT with this store's ID, no index); with a fresh Dir, the
// destination chunk storage must hold no chunks (it could be another
// store's), unless it is the store's own; a PostgreSQL destination must be
// empty or an unfinished migration of this store. Anything else is
// ErrMigrateDest, checked before anything is written.
func (s *Store) Migrate(ctx context.Context, opts MigrateOptions) (BackupStats, error) {
	s.maint.Lock()
	defer s.maint.Unlock()
	var st BackupStats
	if opts.BatchChunks <= 0 {
		opts.BatchChunks = migrateBatchChunks
	}
	// The destination's FORMAT: this store's, parameters and ID.
	want := s.format
	want.Chunks, want.Index = opts.ChunksAt, ""
	if opts.IndexDSN != "" {
		want.Index = indexPostgres
	}
	fresh, err := checkMigrateDest(s, opts.Dir, want)
	if err != nil {
		return st, err
	}
	sameChunks := opts.Chunks != nil && opts.ChunksAt != "" && opts.ChunksAt == s.format.Chunks
	if fresh && opts.Chunks != nil && !sameChunks {
		if err := checkNoChunks(opts.Chunks); err != nil {
			return st, err
		}
	}
	unlock, err := s.lockGC(ctx)
	if err != nil {
		return st, err
	}
	defer unlock()
	var dstIdx *index.DB
	if opts.IndexDSN != "" {
		if dstIdx, err = s.openMigrateIndex(ctx, opts.IndexDSN); err != nil {
			return st, err
		}
		defer dstIdx.Close()
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return st, fmt.Errorf("media: migrate: %w", err)
	}
	// FORMAT first: it marks the directory as this store's (a rerun
	// resumes into it), and without an index Open refuses it.
	if _, err := checkFormat(opts.Dir, want); err != nil {
		return st, fmt.Errorf("media: migrate to %s: %w", opts.Dir, err)
	}
	dst := opts.Chunks
	if dst == nil {
		cs, err := cas.OpenLayout(opts.Dir, casLayout(want.Layout), false)
		if err != nil {
			return st, fmt.Errorf("media: migrate to %s: %w", opts.Dir, err)
		}
		defer cs.Close()
		dst = cs
	}
	var progress func()
	if opts.Progress != nil {
		progress = func() { opts.Progress(st) }
	}
	if sameChunks {
		s.opts.Logger.Warn("the destination keeps its chunks where this store does: none is copied, and the two "+
			"share them; do not use this store again (its GC would remove chunks the destination writes)",
			"chunks", opts.ChunksAt)
	} else if err := s.copyChunks(ctx, dst, opts.BatchChunks, &st, progress); err != nil {
		return st, fmt.Errorf("media: migrate chunks: %w", err)
	}
	if st.ChunksCorrupt > 0 {
		return st, fmt.Errorf("media: migrate: %d corrupt chunks in the source were not copied, so the index was not; "+
			"repair the source (mxcas fsck) and migrate again", st.ChunksCorrupt)
	}
	if dstIdx != nil {
		ist, err := index.Copy(ctx, dstIdx, s.idx, index.CopyOptions{Source: s.copySource(),
			Meta: map[string][]byte{"format": want.shared().encode()}})
		if err != nil {
			return st, fmt.Errorf("media: migrate index: %w", err)
		}
		s.opts.Logger.Info("index copied to PostgreSQL", "records", ist.Records, "counters", ist.Counters)
	} else {
		ckpt := filepath.Join(opts.Dir, "index-migrating")
		if err := os.RemoveAll(ckpt); err != nil { // an interrupted run's
			return st, fmt.Errorf("media: migrate: %w", err)
		}
		if err := s.pebbleIndexCopy(ctx, ckpt); err != nil {
			return st, err
		}
		if err := placeIndex(ckpt, opts.Dir); err != nil {
			return st, err
		}
	}
	s.opts.Logger.Info("migration done", "dest", opts.Dir, "chunks_copied", st.ChunksCopied,
		"bytes_copied", st.BytesCopied, "chunks_present", st.ChunksPresent)
	return st, nil
}

// openMigrateIndex opens the PostgreSQL index a migration writes and marks
// it as this store's unfinished copy (refusing one that is neither empty
// nor that already), so that no node serves it before it is complete.
func (s *Store) openMigrateIndex(ctx context.Context, dsn string) (*index.DB, error) {
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	idx, err := index.OpenPostgres(octx, dsn, index.Options{Logger: s.opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("media: migrate: %w", err)
	}
	if err := index.StartCopy(octx, idx, s.copySource()); err != nil {
		idx.Close()
		if errors.Is(err, index.ErrCopyDest) {
			return nil, fmt.Errorf("%w: the destination's PostgreSQL database: %w", ErrMigrateDest, err)
		}
		return nil, fmt.Errorf("media: migrate: %w", err)
	}
	return idx, nil
}

// copySource names this store to index.Copy.
func (s *Store) copySource() string {
	if s.format.ID == "" {
		return "mxcas store" // a read-only open of a store made before IDs
	}
	return s.format.ID
}

// pebbleIndexCopy writes the store's index as a new Pebble index in dir,
// which must not exist: a checkpoint of a Pebble index, an index.Copy of
// a PostgreSQL one.
func (s *Store) pebbleIndexCopy(ctx context.Context, dir string) error {
	if !s.idx.Shared() {
		return s.idx.Checkpoint(dir)
	}
	dst, err := index.Open(dir, index.Options{Logger: s.opts.Logger})
	if err != nil {
		return err
	}
	ist, err := index.Copy(ctx, dst, s.idx, index.CopyOptions{Source: s.copySource()})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("media: copy the index: %w", err)
	}
	s.opts.Logger.Info("index copied from PostgreSQL", "records", ist.Records, "counters", ist.Counters)
	return nil
}

// lockGC keeps GC on every node sharing the index from running until
// unlock (with Pebble, s.maint does that): a backup or migration copies
// the chunks its index copy refers to.
func (s *Store) lockGC(ctx context.Context) (unlock func(), err error) {
	unlock, err = s.idx.Lock(ctx, gcLock)
	if err != nil {
		return nil, fmt.Errorf("media: wait for GC on other nodes: %w", err)
	}
	return unlock, nil
}

// checkMigrateDest refuses a destination directory of s that Migrate must
// not write into, given the FORMAT it is to have, and reports whether it
// is fresh (missing or empty). It changes nothing.
func checkMigrateDest(s *Store, dest string, want storeFormat) (fresh bool, err error) {
	if dest == "" {
		return false, fmt.Errorf("%w: no destination directory", ErrMigrateDest)
	}
	if err := s.checkOutside(dest); err != nil {
		return false, fmt.Errorf("%w: %w", ErrMigrateDest, err)
	}
	state, what, err := storeDirState(dest)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrMigrateDest, err)
	}
	switch state {
	case dirMissing, dirFresh:
		return true, nil
	case dirStore:
		f, err := compareFormat(dest, want)
		if err != nil {
			return false, fmt.Errorf("%w: %s is an mxcas store this one cannot migrate into: %w", ErrMigrateDest, dest, err)
		}
		if f.ID != want.ID {
			return false, fmt.Errorf("%w: %s is another mxcas store, not a migration of this one (store %s); nothing was changed",
				ErrMigrateDest, dest, want.ID)
		}
		if _, err := os.Stat(filepath.Join(dest, "index")); !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("%w: %s already has an index: the migration finished (and the copy may have been "+
				"served since); nothing was changed", ErrMigrateDest, dest)
		}
		return false, nil
	default:
		return false, fmt.Errorf("%w: %s has %s; migrate into a missing or empty directory; nothing was changed",
			ErrMigrateDest, dest, what)
	}
}

// checkNoChunks refuses a chunk storage that holds any chunk.
func checkNoChunks(cs cas.Walker) error {
	errFound := errors.New("found")
	err := cs.Walk(func(cas.Hash, fs.FileInfo) error { return errFound })
	switch {
	case errors.Is(err, errFound):
		return fmt.Errorf("%w: the destination chunk storage already holds chunks, but the destination directory "+
			"is new: they may be another store's (use another bucket or prefix); nothing was changed", ErrMigrateDest)
	case err != nil:
		return fmt.Errorf("media: migrate: list destination chunks: %w", err)
	}
	return nil
}
