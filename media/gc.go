package media

import (
	"context"
	"errors"
	"fmt"
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
	// ChunksUnknown counts the chunk files to delete that no manifest in the
	// index lists, live or dead: leftovers of failed uploads, or, when it
	// is most of the store, an index that lost track of the chunks.
	ChunksUnknown int
}

// ErrGCRefused: GC found the index suspiciously empty for the chunk store
// and deleted nothing (see GCOptions.Force).
var ErrGCRefused = errors.New("media: gc refused")

// GCOptions tune one GC run.
type GCOptions struct {
	// Force sweeps even when the sanity check refuses. The check: GC refuses
	// when the chunk files it would delete that no manifest in the index
	// lists (live or dead) are more than half of all chunk files in the
	// store. That is what a lost, emptied or replaced index looks like:
	// every chunk unknown to it. A normal GC never trips it, however much
	// was deleted: the manifests of deleted media stay in the index until
	// the GC that removes their chunks, so those chunks are known. Only
	// leftovers of failed uploads are unknown, and they are a small share of
	// a store (and younger than the grace period, until it passes). The
	// rare cases that can trip it in a healthy store: a store holding
	// little but failed uploads, or a GC interrupted after removing the
	// manifests of more than half the store and before removing their
	// chunks; run fsck first, and force GC when that is what happened.
	Force bool
}

// GC is RunGC with default options: it refuses when the index looks lost.
func (s *Store) GC(ctx context.Context) (GCStats, error) { return s.RunGC(ctx, GCOptions{}) }

// RunGC is mark and sweep: it marks every object a media record refers to
// and every chunk of those objects, then removes manifests and chunk files
// that are not marked. Chunk files younger than the grace period and
// anything an upload in flight has pinned are kept, so GC may run while
// uploads go on. Before it deletes anything it checks that the index knows
// the chunks it would delete (see GCOptions.Force); when not, it returns
// ErrGCRefused with the counts it found and changes nothing.
func (s *Store) RunGC(ctx context.Context, opts GCOptions) (GCStats, error) {
	s.maint.Lock()
	defer s.maint.Unlock()
	s.pins.startGC()
	defer s.pins.endGC()

	var st GCStats
	snap := s.idx.Snapshot()
	defer snap.Close()

	liveObj := make(map[cas.Hash]struct{})
	err := snap.ScanMedia(func(rec index.MediaRecord) error {
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
	deadChunk := make(map[cas.Hash]struct{}) // chunks of dead manifests: known to the index
	var deadObj []cas.Hash
	err = snap.ScanManifests(func(h cas.Hash, m index.Manifest, decodeErr error) error {
		if _, ok := liveObj[h]; !ok {
			deadObj = append(deadObj, h)
			if decodeErr == nil {
				for _, c := range m.Chunks {
					deadChunk[c.Hash] = struct{}{}
				}
			}
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

	// Find the candidates before deleting anything, so the sanity check can
	// refuse with the store untouched.
	type candidate struct {
		h    cas.Hash
		size int64
	}
	var cands []candidate
	total := 0
	cutoff := s.opts.Now().Add(-s.opts.GCGrace)
	err = s.cas.Walk(func(h cas.Hash, info fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		total++
		if _, ok := liveChunk[h]; ok {
			st.Chunks++
			return nil
		}
		if info.ModTime().After(cutoff) {
			st.ChunksYoung++
			return nil
		}
		cands = append(cands, candidate{h, info.Size()})
		return nil
	})
	if err != nil {
		return st, err
	}
	// Unknown chunks an upload in flight protects are not counted: they
	// are its own, about to be listed by its manifest, and are kept anyway.
	s.pins.whileLocked(func(pinned func(cas.Hash) bool) error {
		for _, c := range cands {
			if _, known := deadChunk[c.h]; !known && !pinned(c.h) {
				st.ChunksUnknown++
			}
		}
		return nil
	})
	if !opts.Force && 2*st.ChunksUnknown > total {
		s.opts.Logger.Error("gc refused: the index does not know most chunks", "chunks", total,
			"unknown_to_delete", st.ChunksUnknown, "live_objects", len(liveObj))
		return st, fmt.Errorf("%w: it would delete %d of the %d chunk files, and the index lists %d of them in no manifest: "+
			"the index may be lost, emptied or replaced; nothing was deleted. Check the index and run fsck; "+
			"force GC (mxcas gc -force) only if this is expected",
			ErrGCRefused, len(cands), total, st.ChunksUnknown)
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

	for _, c := range cands {
		if err = ctx.Err(); err != nil {
			break
		}
		var deleted bool
		deleted, err = s.pins.ifUnpinned(c.h, func() error { return s.cas.Delete(c.h) })
		if err != nil {
			break
		}
		if deleted {
			st.ChunksDeleted++
			st.BytesDeleted += c.size
		} else {
			st.Chunks++
		}
	}
	if err == nil {
		err = s.dropDeadDamage(liveChunk)
	}
	if err == nil {
		s.opts.Logger.Info("gc done", "objects", st.Objects, "objects_deleted", st.ObjectsDeleted,
			"chunks", st.Chunks, "chunks_deleted", st.ChunksDeleted, "bytes_deleted", st.BytesDeleted,
			"chunks_young", st.ChunksYoung)
	}
	return st, err
}
