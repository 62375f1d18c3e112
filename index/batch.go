package index

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/mxcas/mxcas/cas"
)

// Batch is a set of changes committed atomically and durably. Not safe for
// concurrent use. Close it when done (Commit does not).
type Batch struct {
	b    *pebble.Batch // the Pebble index's
	pg   *pgBatch      // the PostgreSQL index's
	d    *DB
	fail *failure
	// conds are the conditions of InsertMedia and FillPending, checked by
	// a Pebble commit (PostgreSQL checks them in its transaction).
	conds []cond
}

// cond is a condition a Pebble batch commits under: key is present
// (exists) or absent, after the batch's first at operations (as
// PostgreSQL, which applies a batch in order, sees it).
type cond struct {
	key    []byte
	exists bool
	value  []byte // with exists: the value key must hold (nil: any)
	at     uint32
}

// ErrConflict fails the commit of a batch whose condition did not hold:
// InsertMedia found a record, FillPending found no pending entry. Nothing
// of the batch is applied. Across nodes sharing a PostgreSQL index, of two
// batches racing on one media ID exactly one commits.
var ErrConflict = errors.New("index: conflicting change")

// NewBatch starts a batch.
func (d *DB) NewBatch() *Batch {
	if d.pg != nil {
		return &Batch{pg: d.pg.newBatch(), d: d, fail: d.fail}
	}
	return &Batch{b: d.db.NewBatch(), d: d, fail: d.fail}
}

func (b *Batch) set(key, v []byte) error {
	if b.pg != nil {
		b.pg.set(key, v)
		return nil
	}
	return b.b.Set(key, v, nil)
}

func (b *Batch) delete(key []byte) error {
	if b.pg != nil {
		b.pg.delete(key)
		return nil
	}
	return b.b.Delete(key, nil)
}

// setJSON sets key to v as JSON.
func (b *Batch) setJSON(key []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.set(key, j)
}

// PutMedia writes a media record (insert or replace).
func (b *Batch) PutMedia(rec MediaRecord) error {
	return b.setJSON(mediaKey(rec.Server, rec.MediaID), rec)
}

// InsertMedia writes a media record that must not exist yet: when one
// does (written by any node, or earlier in this batch), Commit fails with
// ErrConflict and applies nothing.
func (b *Batch) InsertMedia(rec MediaRecord) error {
	key := mediaKey(rec.Server, rec.MediaID)
	j, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if b.pg != nil {
		b.pg.insert(key, j)
		return nil
	}
	b.conds = append(b.conds, cond{key: key, exists: false, at: b.b.Count()})
	return b.b.Set(key, j, nil)
}

// ExpectMedia makes the commit fail with ErrConflict unless the record of
// server/id is still stored as read (MediaStored's bytes): for changes that
// read a record and write it back, so that a change another node made
// meanwhile is not undone. A shared index checks it in the transaction,
// holding the row until the commit.
func (b *Batch) ExpectMedia(server, id string, stored []byte) error {
	if len(stored) == 0 {
		return fmt.Errorf("index: ExpectMedia %s/%s: no stored record given", server, id)
	}
	key := mediaKey(server, id)
	if b.pg != nil {
		b.pg.b.Expect(key, stored)
		return nil
	}
	b.conds = append(b.conds, cond{key: key, exists: true, value: bytes.Clone(stored), at: b.b.Count()})
	return nil
}

// FillPending forgets the pending entry of a created ID (as
// DeletePending) on condition that it is there: when another batch (on
// any node) took it away first, Commit fails with ErrConflict. It is how
// one of two uploads filling one created ID wins.
func (b *Batch) FillPending(user, server, id string) error {
	key := pendingKey(user, server, id)
	if b.pg != nil {
		b.pg.deleteExisting(key)
		return nil
	}
	b.conds = append(b.conds, cond{key: key, exists: true, at: b.b.Count()})
	return b.b.Delete(key, nil)
}

// DeleteMedia removes a media record.
func (b *Batch) DeleteMedia(server, id string) error {
	return b.delete(mediaKey(server, id))
}

// PutManifest writes the manifest of object h and, when its last chunk is
// inline, that chunk's bytes (m.Tail, which must hold it).
func (b *Batch) PutManifest(h cas.Hash, m Manifest) error {
	if ref, ok := m.InlineRef(); ok {
		if len(m.Tail) != int(ref.Len) {
			return fmt.Errorf("index: manifest of %s: inline chunk of %d bytes given %d", h.Short(), ref.Len, len(m.Tail))
		}
		if err := b.set(inlineKey(h), m.Tail); err != nil {
			return err
		}
	}
	return b.set(objectKey(h), m.encode())
}

// DeleteManifest removes the manifest of object h, with its inline chunk.
func (b *Batch) DeleteManifest(h cas.Hash) error {
	if err := b.delete(inlineKey(h)); err != nil {
		return err
	}
	return b.delete(objectKey(h))
}

// PutOwner records that user owns server/id.
func (b *Batch) PutOwner(user, server, id string) error {
	return b.set(ownerKey(user, server, id), nil)
}

// DeleteOwner forgets that user owns server/id.
func (b *Batch) DeleteOwner(user, server, id string) error {
	return b.delete(ownerKey(user, server, id))
}

// AddUsage adds delta to the counters of user (when not empty) and server.
func (b *Batch) AddUsage(user, server string, delta Usage) error {
	keys := [][]byte{serverUsageKey(server)}
	if user != "" {
		keys = [][]byte{userUsageKey(user), keys[0]}
	}
	for _, k := range keys {
		if b.pg != nil {
			b.pg.add(k, delta)
			continue
		}
		if err := b.b.Merge(k, encodeUsage(delta), nil); err != nil {
			return err
		}
	}
	return nil
}

// PutPending records that user created server/id, lapsing at expires (Unix
// ms), so CountPending can cap a user's created IDs.
func (b *Batch) PutPending(user, server, id string, expires int64) error {
	var v [8]byte
	binary.LittleEndian.PutUint64(v[:], uint64(expires))
	return b.set(pendingKey(user, server, id), v[:])
}

// DeletePending forgets a created ID (its content arrived, or it was purged).
func (b *Batch) DeletePending(user, server, id string) error {
	return b.delete(pendingKey(user, server, id))
}

// PutThumbnail records a thumbnail of source object src.
func (b *Batch) PutThumbnail(src cas.Hash, spec string, tr ThumbRecord) error {
	return b.setJSON(thumbKey(src, spec), tr)
}

// DeleteThumbnail forgets a thumbnail record.
func (b *Batch) DeleteThumbnail(src cas.Hash, spec string) error {
	return b.delete(thumbKey(src, spec))
}

// PutDamaged records that chunk h was found damaged.
func (b *Batch) PutDamaged(h cas.Hash, d DamageRecord) error {
	return b.setJSON(damagedKey(h), d)
}

// DeleteDamaged forgets the damage record of chunk h (it was repaired).
func (b *Batch) DeleteDamaged(h cas.Hash) error {
	return b.delete(damagedKey(h))
}

// Commit applies the batch and syncs it to disk before returning; a batch
// that changes replicated keys becomes the next change of the log (see
// changes.go). Once the index has failed it returns an error wrapping
// ErrFailed, without trying.
func (b *Batch) Commit() error { return b.commit(pebble.Sync) }

// CommitNoSync is Commit without waiting for the batch to reach the disk:
// for changes a crash may lose (a last-access time). It is never logged:
// such changes do not replicate.
func (b *Batch) CommitNoSync() error { return b.commit(pebble.NoSync) }

func (b *Batch) commit(o *pebble.WriteOptions) error {
	if err := b.fail.get(); err != nil {
		return err
	}
	if b.pg != nil {
		return b.pg.commit()
	}
	applied := func() {}
	if len(b.conds) > 0 {
		// The conditions are checked and the batch applied under one
		// lock, so no other conditional batch comes between; the wait
		// for the disk comes after, so such commits still share syncs.
		b.d.condMu.Lock()
		var once sync.Once
		applied = func() { once.Do(b.d.condMu.Unlock) }
		defer applied()
		if err := b.check(); err != nil {
			return err
		}
	}
	commit := func() error { return b.b.Commit(o) }
	if o.Sync {
		commit = func() error { return b.commitLogged(applied) }
	}
	if err := guarded(commit); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	return nil
}

// check returns ErrConflict when one of b's conditions does not hold in
// the Pebble index with the batch's operations before it applied.
func (b *Batch) check() error {
	for _, c := range b.conds {
		same := true
		written, present, err := b.writtenBefore(c)
		switch {
		case err != nil:
			return err
		case written && !present:
			err = ErrNotFound
		case written:
			same = c.value == nil // a value condition is on the stored value
		default:
			err = b.d.get(c.key, func(v []byte) error {
				same = c.value == nil || bytes.Equal(v, c.value)
				return nil
			})
		}
		switch {
		case err == nil && c.exists && !same:
			return fmt.Errorf("%w: %q changed", ErrConflict, c.key)
		case err == nil && !c.exists:
			return fmt.Errorf("%w: %q exists", ErrConflict, c.key)
		case errors.Is(err, ErrNotFound) && c.exists:
			return fmt.Errorf("%w: %q is gone", ErrConflict, c.key)
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
	}
	return nil
}

// writtenBefore reports whether one of the batch's operations before c
// writes c's key and, if so, whether the last of them leaves it present.
func (b *Batch) writtenBefore(c cond) (written, present bool, err error) {
	r := b.b.Reader()
	for n := uint32(0); n < c.at; {
		kind, k, _, ok, err := r.Next()
		if err != nil {
			return false, false, fmt.Errorf("index: read batch: %w", err)
		}
		if !ok {
			break
		}
		if kind == pebble.InternalKeyKindLogData {
			continue // not counted by Count
		}
		n++
		if bytes.Equal(k, c.key) {
			written, present = true, kind != pebble.InternalKeyKindDelete
		}
	}
	return written, present, nil
}

// Close releases the batch. Once the index has failed the batch is left
// to the garbage collector: Pebble's wedged commit pipeline may still hold it.
func (b *Batch) Close() error {
	if b.pg != nil || b.fail.get() != nil {
		return nil
	}
	return b.b.Close()
}
