package media

import (
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// Delete removes the record of m (its ownership and usage with it). The
// content stays until GC finds no other record needs it. Deleting media that
// does not exist is an error wrapping ErrNotFound.
func (s *Store) Delete(m matrix.MXC) error {
	s.claims.wait(m)
	defer s.claims.release(m)
	rec, err := s.Stat(m)
	if err != nil {
		return err
	}
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.DeleteMedia(m.Server(), m.MediaID()); err != nil {
		return err
	}
	if rec.Uploader != "" {
		if err := b.DeleteOwner(rec.Uploader, m.Server(), m.MediaID()); err != nil {
			return err
		}
	}
	if rec.Pending {
		if err := b.DeletePending(rec.Uploader, m.Server(), m.MediaID()); err != nil {
			return err
		}
	} else {
		if err := b.AddUsage(rec.Uploader, m.Server(), index.Usage{Bytes: -rec.Size, Count: -1}); err != nil {
			return err
		}
	}
	s.records.invalidate(m)
	err = b.Commit()
	s.records.invalidate(m)
	return err
}
