package media

import (
	"context"
	"io/fs"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// GCStats says what a GC run found and removed.
type GCStats struct {
	Objects        int   // manifests kept
	ObjectsDeleted int   // manifests no record refers to, removed
	Chunks         int   // chunk files kept
	ChunksDeleted  int   // chunk files removed
	BytesDeleted   int64 // their size
	ChunksYoung    int   // unreferenced but within the grace period, kept
}

// GC is mark and sweep: it marks every object a media record refers to and
// every chunk of those objects, then removes manifests and chunk files that
// are not marked. Chunk files younger than the grace period and anything an
// upload in flight has pinned are kept, so GC may run while uploads go on.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	s.maint.Lock()
	defer s.maint.Unlock()
	s.pins.startGC()
	defer s.pins.endGC()

	var st GCStats
	snap := s.idx.Snapshot()
	defer snap.Close()

	liveObj := make(map[cas.Hash]struct{})
	err := snap.ScanMedia(func(rec Record) error {
		if !rec.Object.IsZero() {
			liveObj[rec.Object] = struct{}{}
		}
		return ctx.Err()
	})
	if err != nil {
		return st, err
	}
	// Thumbnails of live sources are live; those of dead sources go.
	type thumbKey struct {
		src  cas.Hash
		spec string
	}
	var deadThumbs []thumbKey
	err = snap.ScanThumbnails(func(src cas.Hash, spec string, tr index.ThumbRecord, decodeErr error) error {
		if _, ok := liveObj[src]; !ok {
			deadThumbs = append(deadThumbs, thumbKey{src, spec})
			return nil
		}
		if decodeErr != nil {
			return decodeErr
		}
		liveObj[tr.Object] = struct{}{}
		return ctx.Err()
	})
	if err != nil {
		return st, err
	}
	liveChunk := make(map[cas.Hash]struct{})
	var deadObj []cas.Hash
	err = snap.ScanManifests(func(h cas.Hash, m index.Manifest, decodeErr error) error {
		if _, ok := liveObj[h]; !ok {
			deadObj = append(deadObj, h)
			return nil
		}
		if decodeErr != nil {
			return decodeErr // never sweep what an unreadable manifest may need
		}
		st.Objects++
		for _, c := range m.Chunks {
			liveChunk[c.Hash] = struct{}{}
		}
		return ctx.Err()
	})
	if err != nil {
		return st, err
	}

	if s.gcHook != nil {
		s.gcHook()
	}

	// Unreferenced manifests go in one batch, decided and committed while
	// no upload can pin one of them.
	if len(deadObj) > 0 || len(deadThumbs) > 0 {
		err := s.pins.whileLocked(func(pinned func(cas.Hash) bool) error {
			b := s.idx.NewBatch()
			defer b.Close()
			for _, k := range deadThumbs {
				if err := b.DeleteThumbnail(k.src, k.spec); err != nil {
					return err
				}
			}
			for _, h := range deadObj {
				if pinned(h) {
					st.Objects++
					continue
				}
				if err := b.DeleteManifest(h); err != nil {
					return err
				}
				st.ObjectsDeleted++
			}
			return b.Commit()
		})
		if err != nil {
			return st, err
		}
	}

	cutoff := s.opts.Now().Add(-s.opts.GCGrace)
	err = s.cas.Walk(func(h cas.Hash, info fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, ok := liveChunk[h]; ok {
			st.Chunks++
			return nil
		}
		if info.ModTime().After(cutoff) {
			st.ChunksYoung++
			return nil
		}
		deleted, err := s.pins.ifUnpinned(h, func() error { return s.cas.Delete(h) })
		if err != nil {
			return err
		}
		if deleted {
			st.ChunksDeleted++
			st.BytesDeleted += info.Size()
		} else {
			st.Chunks++
		}
		return nil
	})
	if err == nil {
		s.opts.Logger.Info("gc done", "objects", st.Objects, "objects_deleted", st.ObjectsDeleted,
			"chunks", st.Chunks, "chunks_deleted", st.ChunksDeleted, "bytes_deleted", st.BytesDeleted,
			"chunks_young", st.ChunksYoung)
	}
	return st, err
}
