package index

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mxcas/mxcas/cas"
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
}

// DB is the index of one store. Safe for concurrent use.
type DB struct {
	reader
	db   *pebble.DB
	fail *failure
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
	if opts.OnDiskFull != nil && !opts.ReadOnly {
		po.FS = vfs.OnDiskFull(vfs.Default, opts.OnDiskFull)
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
	return &DB{reader: reader{r: db}, db: db, fail: fail}, nil
}

// Close closes the index. A failed index (see Failed) is not closed, only
// dropped: Pebble's state is unusable, its files are as a crash would leave
// them, and the next open recovers from them; Close returns the failure.
func (d *DB) Close() error {
	if err := d.fail.get(); err != nil {
		return err
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
	s *pebble.Snapshot
}

// Snapshot returns a point-in-time view.
func (d *DB) Snapshot() *Snapshot {
	s := d.db.NewSnapshot()
	return &Snapshot{reader: reader{r: s}, s: s}
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.s.Close() }

// reader holds the lookups and scans shared by DB and Snapshot.
type reader struct{ r pebble.Reader }

func (r reader) get(key []byte, fn func(v []byte) error) error {
	v, closer, err := r.r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("index: get: %w", err)
	}
	defer closer.Close()
	return fn(v)
}

// Media returns the record of server/id, or ErrNotFound.
func (r reader) Media(server, id string) (MediaRecord, error) {
	var rec MediaRecord
	err := r.get(mediaKey(server, id), func(v []byte) error { return decodeMedia(v, &rec) })
	if errors.Is(err, ErrNotFound) {
		return rec, fmt.Errorf("%w: media %s/%s", ErrNotFound, server, id)
	}
	rec.Server, rec.MediaID = server, id
	return rec, err
}

func decodeMedia(v []byte, rec *MediaRecord) error {
	if err := json.Unmarshal(v, rec); err != nil {
		return fmt.Errorf("%w: media: %v", ErrCorruptRecord, err)
	}
	return nil
}

// Manifest returns the manifest of object h, or ErrNotFound.
func (r reader) Manifest(h cas.Hash) (Manifest, error) {
	var m Manifest
	err := r.get(objectKey(h), func(v []byte) (err error) {
		m, err = decodeManifest(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return m, fmt.Errorf("%w: object %s", ErrNotFound, h.Short())
	}
	return m, err
}

// HasManifest reports whether object h has a manifest.
func (r reader) HasManifest(h cas.Hash) (bool, error) {
	err := r.get(objectKey(h), func([]byte) error { return nil })
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// UserUsage returns the counters of a user (zero when none).
func (r reader) UserUsage(user string) (Usage, error) { return r.usage(userUsageKey(user)) }

// ServerUsage returns the counters of a server name (zero when none).
func (r reader) ServerUsage(server string) (Usage, error) { return r.usage(serverUsageKey(server)) }

func (r reader) usage(key []byte) (Usage, error) {
	var u Usage
	err := r.get(key, func(v []byte) error {
		var err error
		u, err = decodeUsage(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return Usage{}, nil
	}
	return u, err
}

// scan calls fn for every key with prefix, in key order.
func (r reader) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := r.r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("index: scan: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), v)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("index: scan: %w", err)
	}
	return nil
}

// ScanMedia calls fn for every media record (all servers), in key order. An
// error from fn, or a record that cannot be decoded, stops the scan and is
// returned.
func (r reader) ScanMedia(fn func(MediaRecord) error) error {
	return r.ScanMediaChecked(func(rec MediaRecord, decodeErr error) error {
		if decodeErr != nil {
			return decodeErr
		}
		return fn(rec)
	})
}

// ScanMediaChecked is ScanMedia for fsck: a record that cannot be decoded is
// passed with a non-nil decodeErr (and its Server and MediaID filled in
// when the key is readable) instead of stopping the scan.
func (r reader) ScanMediaChecked(fn func(rec MediaRecord, decodeErr error) error) error {
	return r.scan(prefixMedia, func(k, v []byte) error {
		var rec MediaRecord
		server, id, err := parseMediaKey(k)
		if err != nil {
			return fn(rec, err)
		}
		err = decodeMedia(v, &rec)
		rec.Server, rec.MediaID = server, id
		if err != nil {
			return fn(rec, fmt.Errorf("%s/%s: %w", server, id, err))
		}
		return fn(rec, nil)
	})
}

// ScanManifests calls fn for every object manifest. A manifest that cannot
// be decoded is passed with a non-nil decodeErr so fsck can report it.
func (r reader) ScanManifests(fn func(h cas.Hash, m Manifest, decodeErr error) error) error {
	return r.scan(prefixObject, func(k, v []byte) error {
		var h cas.Hash
		if len(k) != len(prefixObject)+cas.HashSize {
			return fmt.Errorf("%w: object key %q", ErrCorruptRecord, k)
		}
		copy(h[:], k[len(prefixObject):])
		m, err := decodeManifest(v)
		return fn(h, m, err)
	})
}

// ScanOwned calls fn with the server and media ID of every media owned by user.
func (r reader) ScanOwned(user string, fn func(server, id string) error) error {
	p := ownerPrefix(user)
	return r.scan(p, func(k, _ []byte) error {
		server, id, err := parseMediaKey(append(append([]byte(nil), prefixMedia...), k[len(p):]...))
		if err != nil {
			return err
		}
		return fn(server, id)
	})
}

// CountPending counts user's created IDs without content that have not
// lapsed at now (Unix ms).
func (r reader) CountPending(user string, now int64) (int, error) {
	n := 0
	err := r.scan(pendingPrefix(user), func(_, v []byte) error {
		if len(v) == 8 && int64(binary.LittleEndian.Uint64(v)) > now {
			n++
		}
		return nil
	})
	return n, err
}

// Thumbnail returns the thumbnail of source object src for spec, or
// ErrNotFound.
func (r reader) Thumbnail(src cas.Hash, spec string) (ThumbRecord, error) {
	var tr ThumbRecord
	err := r.get(thumbKey(src, spec), func(v []byte) error {
		if err := json.Unmarshal(v, &tr); err != nil {
			return fmt.Errorf("%w: thumbnail: %v", ErrCorruptRecord, err)
		}
		return nil
	})
	return tr, err
}

// ScanThumbnails calls fn for every thumbnail record; one that cannot be
// decoded comes with a non-nil decodeErr.
func (r reader) ScanThumbnails(fn func(src cas.Hash, spec string, tr ThumbRecord, decodeErr error) error) error {
	return r.scan(prefixThumb, func(k, v []byte) error {
		rest := k[len(prefixThumb):]
		if len(rest) < cas.HashSize+1 {
			return fn(cas.Hash{}, "", ThumbRecord{}, fmt.Errorf("%w: thumbnail key %q", ErrCorruptRecord, k))
		}
		var src cas.Hash
		copy(src[:], rest)
		var tr ThumbRecord
		err := json.Unmarshal(v, &tr)
		if err != nil {
			err = fmt.Errorf("%w: thumbnail: %v", ErrCorruptRecord, err)
		}
		return fn(src, string(rest[cas.HashSize+1:]), tr, err)
	})
}

// ScanDamaged calls fn for every chunk recorded as damaged; a record that
// cannot be decoded comes with a non-nil decodeErr.
func (r reader) ScanDamaged(fn func(h cas.Hash, d DamageRecord, decodeErr error) error) error {
	return r.scan(prefixDamaged, func(k, v []byte) error {
		var h cas.Hash
		if len(k) != len(prefixDamaged)+cas.HashSize {
			return fn(h, DamageRecord{}, fmt.Errorf("%w: damage key %q", ErrCorruptRecord, k))
		}
		copy(h[:], k[len(prefixDamaged):])
		var d DamageRecord
		err := json.Unmarshal(v, &d)
		if err != nil {
			err = fmt.Errorf("%w: damage record: %v", ErrCorruptRecord, err)
		}
		return fn(h, d, err)
	})
}

// Batch is a set of changes committed atomically and durably. Not safe for
// concurrent use. Close it when done (Commit does not).
type Batch struct {
	b    *pebble.Batch
	fail *failure
}

// NewBatch starts a batch.
func (d *DB) NewBatch() *Batch { return &Batch{b: d.db.NewBatch(), fail: d.fail} }

// PutMedia writes a media record (insert or replace).
func (b *Batch) PutMedia(rec MediaRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return b.b.Set(mediaKey(rec.Server, rec.MediaID), v, nil)
}

// DeleteMedia removes a media record.
func (b *Batch) DeleteMedia(server, id string) error {
	return b.b.Delete(mediaKey(server, id), nil)
}

// PutManifest writes the manifest of object h.
func (b *Batch) PutManifest(h cas.Hash, m Manifest) error {
	return b.b.Set(objectKey(h), m.encode(), nil)
}

// DeleteManifest removes the manifest of object h.
func (b *Batch) DeleteManifest(h cas.Hash) error {
	return b.b.Delete(objectKey(h), nil)
}

// PutOwner records that user owns server/id.
func (b *Batch) PutOwner(user, server, id string) error {
	return b.b.Set(ownerKey(user, server, id), nil, nil)
}

// DeleteOwner forgets that user owns server/id.
func (b *Batch) DeleteOwner(user, server, id string) error {
	return b.b.Delete(ownerKey(user, server, id), nil)
}

// AddUsage adds delta to the counters of user (when not empty) and server.
func (b *Batch) AddUsage(user, server string, delta Usage) error {
	v := encodeUsage(delta)
	if user != "" {
		if err := b.b.Merge(userUsageKey(user), v, nil); err != nil {
			return err
		}
	}
	return b.b.Merge(serverUsageKey(server), v, nil)
}

// PutPending records that user created server/id, lapsing at expires (Unix
// ms), so CountPending can cap a user's created IDs.
func (b *Batch) PutPending(user, server, id string, expires int64) error {
	var v [8]byte
	binary.LittleEndian.PutUint64(v[:], uint64(expires))
	return b.b.Set(pendingKey(user, server, id), v[:], nil)
}

// DeletePending forgets a created ID (its content arrived, or it was purged).
func (b *Batch) DeletePending(user, server, id string) error {
	return b.b.Delete(pendingKey(user, server, id), nil)
}

// PutThumbnail records a thumbnail of source object src.
func (b *Batch) PutThumbnail(src cas.Hash, spec string, tr ThumbRecord) error {
	v, err := json.Marshal(tr)
	if err != nil {
		return err
	}
	return b.b.Set(thumbKey(src, spec), v, nil)
}

// DeleteThumbnail forgets a thumbnail record.
func (b *Batch) DeleteThumbnail(src cas.Hash, spec string) error {
	return b.b.Delete(thumbKey(src, spec), nil)
}

// PutDamaged records that chunk h was found damaged.
func (b *Batch) PutDamaged(h cas.Hash, d DamageRecord) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return b.b.Set(damagedKey(h), v, nil)
}

// DeleteDamaged forgets the damage record of chunk h (it was repaired).
func (b *Batch) DeleteDamaged(h cas.Hash) error {
	return b.b.Delete(damagedKey(h), nil)
}

// Commit applies the batch and syncs it to disk before returning. Once the
// index has failed it returns an error wrapping ErrFailed, without trying.
func (b *Batch) Commit() error {
	if err := b.fail.get(); err != nil {
		return err
	}
	if err := guarded(func() error { return b.b.Commit(pebble.Sync) }); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	return nil
}

// Close releases the batch. Once the index has failed the batch is left
// to the garbage collector: Pebble's wedged commit pipeline may still hold it.
func (b *Batch) Close() error {
	if b.fail.get() != nil {
		return nil
	}
	return b.b.Close()
}

func encodeUsage(u Usage) []byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(u.Bytes))
	binary.LittleEndian.PutUint64(b[8:], uint64(u.Count))
	return b[:]
}

func decodeUsage(v []byte) (Usage, error) {
	if len(v) != 16 {
		return Usage{}, fmt.Errorf("%w: usage of %d bytes", ErrCorruptRecord, len(v))
	}
	return Usage{
		Bytes: int64(binary.LittleEndian.Uint64(v[0:])),
		Count: int64(binary.LittleEndian.Uint64(v[8:])),
	}, nil
}

// usageMerger adds Usage counters. Its name is stored by Pebble and must
// never change.
var usageMerger = &pebble.Merger{
	Name: "mxcas.usage.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &usageValueMerger{}
		return m, m.MergeNewer(value)
	},
}

type usageValueMerger struct{ sum Usage }

func (m *usageValueMerger) MergeNewer(v []byte) error {
	u, err := decodeUsage(v)
	m.sum.Bytes += u.Bytes
	m.sum.Count += u.Count
	return err
}

func (m *usageValueMerger) MergeOlder(v []byte) error { return m.MergeNewer(v) }

func (m *usageValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	return encodeUsage(m.sum), nil, nil
}

// pebbleLogger sends Pebble's messages to slog. Fatalf marks the index
// failed (see fatal.go).
type pebbleLogger struct {
	l    *slog.Logger
	fail *failure
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	p.fail.fatal(msg)
}
