package media

import (
	"fmt"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// Delete deletes m. Local media leaves a tombstone: its record stays,
// marked Deleted with no content, so m answers ErrNotFound on every read
// path from now on and its ID is never given out or filled again (Upload
// and Create refuse it with ErrExists, Fill with ErrNotFound). Remote media
// (a cached copy) is removed outright, as PurgeRemote does: a later read
// fetches it again. Either way its ownership goes and the usage counters
// drop; the content stays until a GC finds nothing else refers to it.
// Deleting media that does not exist, or was deleted, is an error wrapping
// ErrNotFound. Safe for concurrent use; it waits for m's claim.
func (s *Store) Delete(m matrix.MXC) error {
	s.claims.wait(m)
	defer s.claims.release(m)
	return retryShared(func() error {
		rec, err := s.Stat(m)
		if err != nil {
			return err
		}
		b := s.idx.NewBatch()
		defer b.Close()
		if err := s.expectRecord(b, rec); err != nil { // another node may change it
			return err
		}
		if err := dropRecord(b, rec); err != nil {
			return err
		}
		return s.commitDrops(b, []Media{rec})
	})
}

// dropRecord adds to b the deletion of rec: a tombstone in its place (a
// local record) or nothing (a remote one), its ownership, its pending
// state, and its share of the usage counters (a placeholder has none). The caller holds rec's
// claim and read rec under it.
func dropRecord(b *index.Batch, rec Media) error {
	m := rec.MXC
	var err error
	if rec.Remote {
		err = b.DeleteMedia(m.Server(), m.MediaID())
	} else {
		// The tombstone keeps only what says when the ID was taken.
		err = b.PutMedia(Media{MXC: m, Created: rec.Created, Deleted: true}.record())
	}
	if err != nil {
		return err
	}
	if rec.Uploader != "" {
		if err := b.DeleteOwner(rec.Uploader, m.Server(), m.MediaID()); err != nil {
			return err
		}
	}
	switch {
	case rec.Pending:
		return b.DeletePending(rec.Uploader, m.Server(), m.MediaID())
	case rec.Placeholder():
		return nil // a quarantined ID without content: never counted
	}
	return b.AddUsage(rec.Uploader, m.Server(), dropUsage(rec))
}

// dropUsage is what dropping rec takes from the usage counters: nothing
// for a pending ID or a quarantine placeholder, which were never counted.
func dropUsage(rec Media) index.Usage {
	if rec.Pending || rec.Placeholder() {
		return index.Usage{}
	}
	return index.Usage{Bytes: -rec.Size, Count: -1}
}

// commitDrops commits b, which drops recs (dropRecord), keeping the record
// cache right, and wakes the reads waiting for any of them (a created ID
// deleted before its content came): they now find it gone. A deletion is
// never refused for want of free space: it is how space is freed.
func (s *Store) commitDrops(b *index.Batch, recs []Media) error {
	for _, r := range recs {
		s.records.invalidate(r.MXC)
	}
	err := noSpace(b.Commit())
	for _, r := range recs {
		s.records.invalidate(r.MXC)
		if r.Pending {
			s.waiters.wake(r.MXC)
		}
	}
	if err != nil {
		return fmt.Errorf("media: delete: %w", err)
	}
	for _, r := range recs {
		s.stats.recordsChanged(dropUsage(r))
	}
	return nil
}
