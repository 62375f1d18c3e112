package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/mxcas/mxcas/index/pgkv"
)

// Copy moves an index from one store to another (Pebble into PostgreSQL or
// back, or between two of a kind): every record of a snapshot of the
// source, written to the destination in batches.
//
// What is not copied: the change log (c/), which is the history of one
// Pebble index, not data (the copy starts a log of its own, empty), and
// the meta records (x/), which describe the index's own place and are the
// caller's to write (CopyOptions.Meta). The usage counters are carried
// over by adding each one to the destination's, which are zero: the
// destination must hold nothing.
//
// An unfinished copy is marked in the destination (x/copying, whose value
// is CopyOptions.Source) from its first batch to its last, which removes
// the mark: a destination with the mark is no index to serve (see
// Copying), and Copy into it again with the same Source starts over,
// first removing what the interrupted run wrote. A destination without the
// mark that holds anything, a finished copy included, is refused.

// ErrCopyDest is returned by Copy (and CheckCopyDest) for a destination
// that holds records and is not an unfinished copy from the same source.
// Nothing was changed in it.
var ErrCopyDest = errors.New("index: copy destination refused")

// copyMark is the meta record of an unfinished copy.
const copyMark = "copying"

// copyBatchKeys is CopyOptions.BatchKeys' default.
const copyBatchKeys = 1000

// CopyOptions say how Copy copies.
type CopyOptions struct {
	// Source names what is copied (media gives the store's ID). It marks
	// the destination while the copy runs: only a copy with the same
	// Source may run again into an interrupted one. Not empty.
	Source string
	// Meta records (name, value; as Meta reads them) are written with the
	// copy's last batch, the one that removes the mark.
	Meta map[string][]byte
	// BatchKeys is how many keys go in one destination batch (1000).
	BatchKeys int
	// Progress, when not nil, is called with the counts so far after each
	// committed batch, by Copy's goroutine.
	Progress func(CopyStats)
}

// CopyStats count what Copy wrote.
type CopyStats struct {
	Records  int `json:"records"`  // keys other than counters
	Counters int `json:"counters"` // usage counters carried over
	Removed  int `json:"removed"`  // keys and counters of an interrupted copy, removed first
}

// Copying returns the Source of the unfinished copy into d, or "" when d
// is not one.
func (d *DB) Copying() (string, error) {
	v, err := d.Meta(copyMark)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// CheckCopyDest reports whether Copy from source may write into dst:
// resume is false for an empty dst, true for an unfinished copy from
// source; anything else is ErrCopyDest. It changes nothing.
func CheckCopyDest(dst *DB, source string) (resume bool, err error) {
	if source == "" {
		return false, fmt.Errorf("%w: no source name", ErrCopyDest)
	}
	marked, err := dst.Copying()
	switch {
	case err != nil:
		return false, err
	case marked == source:
		return true, nil
	case marked != "":
		return false, fmt.Errorf("%w: it holds an unfinished copy of %s, not of %s", ErrCopyDest, marked, source)
	}
	errFound := errors.New("found")
	var found []byte
	err = dst.kv.scan(nil, nil, func(k, _ []byte) error {
		found = append([]byte(nil), k...)
		return errFound
	})
	if errors.Is(err, errFound) {
		return false, fmt.Errorf("%w: it is not empty (it holds %q); nothing was changed", ErrCopyDest, found)
	}
	if err != nil {
		return false, err
	}
	err = dst.kv.scanCounters(nil, nil, func(k []byte, _ Usage) error {
		found = append([]byte(nil), k...)
		return errFound
	})
	if errors.Is(err, errFound) {
		return false, fmt.Errorf("%w: it is not empty (it holds counter %q); nothing was changed", ErrCopyDest, found)
	}
	return false, err
}

// StartCopy marks dst as an unfinished copy from source, when it is empty
// (on condition, with PostgreSQL, that no other copy marked it meanwhile),
// or finds it so marked already: Copy does it first; a caller that must
// keep dst from being used before Copy runs (media copies the chunks
// first) may do it earlier. A dst that CheckCopyDest refuses is refused,
// unchanged.
func StartCopy(ctx context.Context, dst *DB, source string) error {
	resume, err := CheckCopyDest(dst, source)
	if err != nil || resume {
		return err
	}
	b := dst.NewBatch()
	defer b.Close()
	key, v := metaKey(copyMark), []byte(source)
	if b.pg != nil {
		b.pg.b.Insert(key, v)
	} else if err := b.rawSet(key, v); err != nil {
		return err
	}
	err = b.rawCommit(ctx, true)
	if errors.Is(err, pgkv.ErrExists) {
		return fmt.Errorf("%w: another copy into it started meanwhile", ErrCopyDest)
	}
	return err
}

// Copy copies src into dst (see the comment at the top of this file),
// from a snapshot of src taken when it starts: writes to src meanwhile are
// not copied.
func Copy(ctx context.Context, dst, src *DB, opts CopyOptions) (CopyStats, error) {
	var st CopyStats
	if opts.BatchKeys <= 0 {
		opts.BatchKeys = copyBatchKeys
	}
	if err := StartCopy(ctx, dst, opts.Source); err != nil {
		return st, err
	}
	w := &copyWriter{ctx: ctx, dst: dst, opts: opts, st: &st}
	if err := w.clear(); err != nil {
		return st, fmt.Errorf("index: copy: remove what an interrupted copy wrote: %w", err)
	}
	snap := src.Snapshot()
	defer snap.Close()
	// Everything but the change log, which sorts first of what follows it.
	records := func(k, v []byte) error {
		if bytes.HasPrefix(k, prefixMeta) || bytes.HasPrefix(k, prefixUserUse) || bytes.HasPrefix(k, prefixSiteUse) {
			return nil // the caller's; counters, below
		}
		st.Records++
		return w.put(func(b *Batch) error { return b.rawSet(k, v) })
	}
	if err := snap.kv.scan(nil, prefixChange, records); err != nil {
		return st, fmt.Errorf("index: copy: %w", err)
	}
	if err := snap.kv.scan(prefixEnd(prefixChange), nil, records); err != nil {
		return st, fmt.Errorf("index: copy: %w", err)
	}
	for _, p := range [][]byte{prefixUserUse, prefixSiteUse} {
		err := snap.kv.scanCounters(p, prefixEnd(p), func(k []byte, u Usage) error {
			st.Counters++
			return w.put(func(b *Batch) error { return b.rawAdd(k, u) })
		})
		if err != nil {
			return st, fmt.Errorf("index: copy counters: %w", err)
		}
	}
	if err := w.flush(); err != nil {
		return st, fmt.Errorf("index: copy: %w", err)
	}
	// The last batch, synced: the meta records, and the mark goes.
	if err := ctx.Err(); err != nil {
		return st, err
	}
	b := dst.NewBatch()
	defer b.Close()
	for name, v := range opts.Meta {
		if err := b.rawSet(metaKey(name), v); err != nil {
			return st, err
		}
	}
	err := b.rawDelete(metaKey(copyMark))
	if err == nil {
		err = b.rawCommit(ctx, true)
	}
	if err != nil {
		return st, fmt.Errorf("index: copy: %w", err)
	}
	if opts.Progress != nil {
		opts.Progress(st)
	}
	return st, nil
}

// copyWriter fills dst's batches for Copy.
type copyWriter struct {
	ctx  context.Context
	dst  *DB
	opts CopyOptions
	st   *CopyStats
	b    *Batch
	n    int
}

// put adds one write to the current batch, committing it when full.
func (w *copyWriter) put(write func(b *Batch) error) error {
	if w.b == nil {
		w.b = w.dst.NewBatch()
	}
	if err := write(w.b); err != nil {
		return err
	}
	if w.n++; w.n >= w.opts.BatchKeys {
		return w.flush()
	}
	return nil
}

// flush commits the current batch, with Pebble without waiting for the
// disk: Copy's last batch, synced, makes them all durable.
func (w *copyWriter) flush() error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.b == nil {
		return nil
	}
	b := w.b
	w.b, w.n = nil, 0
	defer b.Close()
	if err := b.rawCommit(w.ctx, false); err != nil {
		return err
	}
	if w.opts.Progress != nil {
		w.opts.Progress(*w.st)
	}
	return nil
}

// clear removes every key and counter of dst but the mark: what an
// interrupted copy wrote.
func (w *copyWriter) clear() error {
	mark := metaKey(copyMark)
	// Keys (and, in Pebble, the counters among them) from a snapshot, so
	// that the deletions do not move under the scan.
	snap := w.dst.Snapshot()
	defer snap.Close()
	err := snap.kv.scan(nil, nil, func(k, _ []byte) error {
		if bytes.Equal(k, mark) {
			return nil
		}
		w.st.Removed++
		return w.put(func(b *Batch) error { return b.rawDelete(k) })
	})
	if err != nil {
		return err
	}
	if w.dst.pg != nil {
		err = snap.kv.scanCounters(nil, nil, func(k []byte, _ Usage) error {
			w.st.Removed++
			return w.put(func(b *Batch) error { b.pg.b.DeleteCounter(k); return nil })
		})
	}
	if err == nil {
		err = w.flush()
	}
	return err
}

func metaKey(name string) []byte { return append(append([]byte(nil), prefixMeta...), name...) }

// rawSet, rawAdd and rawDelete write for Copy: not logged (Pebble), not
// announced to other nodes (PostgreSQL).
func (b *Batch) rawSet(key, v []byte) error {
	if b.pg != nil {
		b.pg.b.Set(key, v)
		return nil
	}
	return b.b.Set(key, v, nil)
}

func (b *Batch) rawAdd(key []byte, u Usage) error {
	if b.pg != nil {
		b.pg.b.Add(key, u.Bytes, u.Count)
		return nil
	}
	return b.b.Merge(key, encodeUsage(u), nil)
}

func (b *Batch) rawDelete(key []byte) error {
	if b.pg != nil {
		b.pg.b.Delete(key)
		return nil
	}
	return b.b.Delete(key, nil)
}

// rawCommit commits a batch of raw writes, outside the change log;
// without sync, a Pebble commit does not wait for the disk.
func (b *Batch) rawCommit(ctx context.Context, sync bool) error {
	if err := b.fail.get(); err != nil {
		return err
	}
	if b.pg != nil {
		if err := b.pg.b.Commit(ctx); err != nil {
			if errors.Is(err, pgkv.ErrExists) {
				return err
			}
			return unavailable("commit", err)
		}
		return nil
	}
	o := pebble.NoSync
	if sync {
		o = pebble.Sync
	}
	if err := guarded(func() error { return b.b.Commit(o) }); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	return nil
}
