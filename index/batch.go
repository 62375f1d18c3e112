package index

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/mxcas/mxcas/cas"
)

// Batch is a set of changes committed atomically and durably. Not safe for
// concurrent use. Close it when done (Commit does not).
type Batch struct {
	b    *pebble.Batch
	d    *DB
	fail *failure
}

// NewBatch starts a batch.
func (d *DB) NewBatch() *Batch { return &Batch{b: d.db.NewBatch(), d: d, fail: d.fail} }

// setJSON sets key to v as JSON.
func (b *Batch) setJSON(key []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.b.Set(key, j, nil)
}

// PutMedia writes a media record (insert or replace).
func (b *Batch) PutMedia(rec MediaRecord) error {
	return b.setJSON(mediaKey(rec.Server, rec.MediaID), rec)
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
	return b.setJSON(thumbKey(src, spec), tr)
}

// DeleteThumbnail forgets a thumbnail record.
func (b *Batch) DeleteThumbnail(src cas.Hash, spec string) error {
	return b.b.Delete(thumbKey(src, spec), nil)
}

// PutDamaged records that chunk h was found damaged.
func (b *Batch) PutDamaged(h cas.Hash, d DamageRecord) error {
	return b.setJSON(damagedKey(h), d)
}

// DeleteDamaged forgets the damage record of chunk h (it was repaired).
func (b *Batch) DeleteDamaged(h cas.Hash) error {
	return b.b.Delete(damagedKey(h), nil)
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
	commit := func() error { return b.b.Commit(o) }
	if o.Sync {
		commit = b.commitLogged
	}
	if err := guarded(commit); err != nil {
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
