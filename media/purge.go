package media

import (
	"context"
	"errors"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// dropGroup is how many records a bulk deletion drops per synced batch.
const dropGroup = 256

// DeleteOld deletes, as Delete does (tombstones), the local media of
// server whose last access, or creation when never read, is before before
// (Unix ms) and whose size is over sizeGT bytes: Synapse's delete by date
// and size. Like Synapse it skips quarantined and protected media and
// created IDs still without content. It returns the deleted media in key
// order; on error, those deleted before it. Synapse's keep_profiles needs
// profile and room state this store does not have: callers cannot ask for
// it here.
func (s *Store) DeleteOld(ctx context.Context, server string, before, sizeGT int64) ([]matrix.MXC, error) {
	return s.dropWhere(ctx, func(r Media) bool {
		return r.MXC.Server() == server && !r.Remote && !r.Deleted && !r.Pending && !r.Quarantined &&
			!r.Protected && lastUse(r) < before && r.Size > sizeGT
	})
}

// PurgeRemote removes the cached remote media whose last access, or fetch
// when never read since, is before before (Unix ms): Synapse's
// purge_media_cache. The records go outright, not as tombstones, so a later
// read fetches the media again; the content goes at a GC unless something
// else refers to it. Quarantined remote media is kept, so that it stays
// blocked (Synapse and matrix-media-repo do the same). It returns how many
// were removed; on error, how many before it.
func (s *Store) PurgeRemote(ctx context.Context, before int64) (int, error) {
	purged, err := s.dropWhere(ctx, func(r Media) bool {
		return r.Remote && !r.Deleted && !r.Pending && !r.Quarantined && lastUse(r) < before
	})
	return len(purged), err
}

// dropWhere drops (dropRecord) every record that match selects, in key
// order: it finds the candidates in a scan, then, a group at a time, claims
// each (in key order, so two bulk deletions never wait on each other in a
// cycle), reads it again under its claim and drops it if it still matches,
// and commits the group in one synced batch. It returns what it dropped.
func (s *Store) dropWhere(ctx context.Context, match func(Media) bool) ([]matrix.MXC, error) {
	var cands []matrix.MXC
	err := s.idx.ScanMedia(func(ir index.MediaRecord) error {
		r, err := scannedMedia(ir)
		if err == nil && match(r) {
			cands = append(cands, r.MXC)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	dropped := []matrix.MXC{}
	for len(cands) > 0 {
		n := min(len(cands), dropGroup)
		got, err := s.dropGroup(cands[:n], match)
		dropped = append(dropped, got...)
		if err != nil {
			return dropped, err
		}
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
		cands = cands[n:]
	}
	return dropped, nil
}

// dropGroup drops those of ms that still match, under their claims, in one
// batch.
func (s *Store) dropGroup(ms []matrix.MXC, match func(Media) bool) ([]matrix.MXC, error) {
	for _, m := range ms {
		s.claims.wait(m)
		defer s.claims.release(m)
	}
	var recs []Media
	err := retryShared(func() error { // another node may drop or change them too
		b := s.idx.NewBatch()
		defer b.Close()
		recs = recs[:0]
		for _, m := range ms {
			r, err := s.readMedia(m)
			if errors.Is(err, index.ErrNotFound) || err == nil && !match(r) {
				continue // gone or changed meanwhile
			}
			if err == nil {
				err = s.expectRecord(b, r)
			}
			if err == nil {
				err = dropRecord(b, r)
			}
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		if len(recs) == 0 {
			return nil
		}
		return s.commitDrops(b, recs)
	})
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	out := make([]matrix.MXC, len(recs))
	for i, r := range recs {
		out[i] = r.MXC
	}
	return out, nil
}
