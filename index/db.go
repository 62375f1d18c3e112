package index

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mxcas/mxcas/index/pgkv"
	"golang.org/x/sys/unix"
)

// ErrNotFound is returned for a record that does not exist.
var ErrNotFound = errors.New("index: not found")

// ErrMissing means Open was told the index must exist and found no Pebble
// database in its directory (the directory is missing or holds no data).
var ErrMissing = errors.New("index: no index database")

// Options configure the index.
type Options struct {
	// Logger receives Pebble's own messages at debug level. Nil means
	// slog.Default().
	Logger *slog.Logger
	// ReadOnly opens without writing (fsck of a backup, say).
	ReadOnly bool
	// MustExist refuses to create the database: a missing directory, or one
	// without a Pebble database in it (an empty mount point, say), is
	// ErrMissing, and nothing is created.
	MustExist bool
	// OnDiskFull, when set, is called when a write of the index (a commit,
	// a flush, opening) finds the disk full: it should free space (release
	// a ballast file). Pebble's writes wait while it runs and are retried
	// once after it returns. It must not use the index.
	OnDiskFull func()
	// CacheBytes is the block cache's size (0: 8 MiB: an offline check or
	// GC reads each block about once, and a bigger cache only adds to its
	// memory).
	CacheBytes int64
}

// DB is the index of one store. Safe for concurrent use.
type DB struct {
	reader
	db   *pebble.DB // nil for the PostgreSQL index
	pg   *pgIndex   // nil for the Pebble index (pgindex.go)
	fail *failure
	// readOnly: opened with Options.ReadOnly.
	readOnly bool
	log      changeLog
	// condMu makes checking a batch's conditions and applying it one step
	// (Pebble).
	condMu sync.Mutex
	// locks are TryLock's, for the Pebble index.
	locksMu sync.Mutex
	locks   map[string]bool
}

// Open opens the Pebble index in dir, creating it when needed unless
// opts.MustExist.
func Open(dir string, opts Options) (*DB, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if opts.MustExist {
		// Look before Pebble opens: with ErrorIfNotExists it would still
		// create the directory and its lock file before refusing.
		desc, err := pebble.Peek(dir, vfs.Default)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && !desc.Exists) {
			return nil, fmt.Errorf("%w in %s", ErrMissing, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("index: open %s: %w", dir, err)
		}
	}
	fail := newFailure()
	po := &pebble.Options{
		Merger:             usageMerger,
		Logger:             pebbleLogger{l: lg, fail: fail},
		ReadOnly:           opts.ReadOnly,
		ErrorIfNotExists:   opts.MustExist,
		FormatMajorVersion: pebble.FormatNewest,
	}
	// Inline chunks (up to 16 KiB each, most of the index's bytes in a
	// store of small media) go to blob files that compactions do not
	// rewrite: the sstables keep keys, records and manifests, and the
	// media bytes are written about once (the WAL aside) instead of once
	// per level. Blob files are rewritten once a fifth of their values is
	// garbage (deleted media).
	// Memtables of 64 MiB (Pebble's default is 4): with inline chunks
	// an upload writes kilobytes, and small memtables flushed several
	// times a second made as many tiny sstables and blob files to compact.
	// The block cache holds the sstables' hot blocks (records, manifests):
	// Options.CacheBytes.
	po.CacheSize = 8 << 20
	if opts.CacheBytes > 0 {
		po.CacheSize = opts.CacheBytes
	}
	// Bloom filters (10 bits a key, every level): an upload looks up keys
	// that are mostly absent (its new media ID, a new object's manifest),
	// and without a filter each such Get read a data block of every level:
	// 42% of the server's CPU at 700,000 media (bench/scale, perf).
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	if !opts.ReadOnly {
		po.MemTableSize = 64 << 20
	}
	po.MaxOpenFiles = maxOpenFiles()
	po.Experimental.EnableColumnarBlocks = func() bool { return true }
	po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:     true,
			MinimumSize: 1024,
			// Keys are hashes: every sstable overlaps every blob file,
			// and a low depth would make compactions copy the values
			// out again. A read follows one value's handle whatever the
			// depth.
			MaxBlobReferenceDepth: 64,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
	if opts.OnDiskFull != nil && !opts.ReadOnly {
		po.FS = vfs.OnDiskFull(vfs.Default, opts.OnDiskFull)
	}
	if opts.ReadOnly {
		po.FS = readOnlyFS{vfs.Default}
	}
	var db *pebble.DB
	err := guarded(func() (err error) {
		db, err = pebble.Open(dir, po)
		return err
	})
	if errors.Is(err, pebble.ErrDBDoesNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrMissing, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	d := &DB{reader: reader{kv: pebbleReader{db}}, db: db, fail: fail, readOnly: opts.ReadOnly}
	if err := d.loadChangeLog(); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	return d, nil
}

// maxOpenFiles is how many files Pebble may hold open: half of the
// process's limit (Go raises the soft limit to the hard one at start), at
// least Pebble's default of 1,000, at most 65,536. Pebble keeps a reader
// open for each sstable and blob file it reads, up to this many; past it
// it closes one and opens another, reading its footer, index and filter
// blocks again. A store of a million media has some 1,500 such files, and
// with the default the server's lookups reopened tables all the time:
// from 550,000 media on, reading filter and index blocks was a fifth of
// its CPU during uploads (bench/scale, perf).
func maxOpenFiles() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1000
	}
	return int(min(max(rl.Cur/2, 1000), 1<<16))
}

// Close closes the index. A failed index (see Failed) is not closed, only
// dropped: Pebble's state is unusable, its files are as a crash would leave
// them, and the next open recovers from them; Close returns the failure.
func (d *DB) Close() error {
	if d.pg != nil {
		d.pg.close()
		return nil
	}
	if err := d.fail.get(); err != nil {
		return err
	}
	if !d.readOnly {
		// Flush the memtables (up to 64 MiB each) to sstables first: the
		// next open, an offline fsck's among them, need not replay the
		// write-ahead log into memory.
		if err := guarded(d.db.Flush); err != nil {
			d.db.Close()
			return err
		}
	}
	return guarded(d.db.Close)
}

// Failed is closed when the index has failed: a write could not be made
// durable (the disk full, an I/O error) and Pebble cannot go on. Every
// later write returns an error wrapping ErrFailed; reads may still work.
// The process should end; reopening recovers every acknowledged commit.
func (d *DB) Failed() <-chan struct{} { return d.fail.done }

// Err returns the failure (wrapping ErrFailed), or nil.
func (d *DB) Err() error { return d.fail.get() }

// Checkpoint writes a consistent copy of the index to dest, which must not
// exist. Writes may go on meanwhile; the copy holds every batch committed
// before the call.
func (d *DB) Checkpoint(dest string) error {
	if d.pg != nil {
		return fmt.Errorf("%w: checkpoint (use pg_dump, or mxcas migrate to a Pebble index)", ErrUnsupported)
	}
	if err := d.fail.get(); err != nil {
		return err
	}
	if err := guarded(func() error { return d.db.Checkpoint(dest, pebble.WithFlushedWAL()) }); err != nil {
		return fmt.Errorf("index: checkpoint to %s: %w", dest, err)
	}
	return nil
}

// Snapshot is a frozen view of the index; Close it when done.
type Snapshot struct {
	reader
	s  *pebble.Snapshot
	pg *pgkv.Snapshot
}

// Snapshot returns a point-in-time view. With PostgreSQL it holds a
// transaction (and a connection) until Close; when it cannot be taken,
// every read of it returns the error.
func (d *DB) Snapshot() *Snapshot {
	if d.pg != nil {
		sn, err := d.pg.s.Snapshot(context.Background())
		if err != nil {
			return &Snapshot{reader: reader{kv: errReader{fmt.Errorf("index: %w", err)}}}
		}
		return &Snapshot{reader: reader{kv: pgReader{sn}}, pg: sn}
	}
	s := d.db.NewSnapshot()
	return &Snapshot{reader: reader{kv: pebbleReader{s}}, s: s}
}

// Close releases the snapshot.
func (s *Snapshot) Close() error {
	switch {
	case s.pg != nil:
		s.pg.Close()
	case s.s != nil:
		return s.s.Close()
	}
	return nil
}

// Empty reports whether the Pebble index in dir holds no key, looking
// without writing (opened read-only): a store whose creation was
// interrupted has an empty index, one that lost its FORMAT does not.
func Empty(dir string) (bool, error) {
	d, err := Open(dir, Options{ReadOnly: true, MustExist: true, Logger: slog.New(slog.DiscardHandler)})
	if errors.Is(err, ErrMissing) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	it, err := d.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, errors.Join(it.Close())
}

// InlineBytes returns how many inline chunks the index holds and their
// length in all, from their keys and the lengths Pebble keeps beside
// them: the chunks' bytes are not read. Not for a shared index
// (ErrUnsupported).
func (d *DB) InlineBytes() (n, bytes int64, err error) {
	if d.pg != nil {
		return 0, 0, fmt.Errorf("index: InlineBytes: %w", errors.ErrUnsupported)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefixInline, UpperBound: prefixEnd(prefixInline)})
	if err != nil {
		return 0, 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		lv := it.LazyValue()
		n, bytes = n+1, bytes+int64(lv.Len())
	}
	return n, bytes, it.Close()
}
