package media

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/mxcas/mxcas/cas"
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
	// PreviewsExpired counts the URL preview records removed for being
	// older than Options.PreviewCacheFor (their images stay).
	PreviewsExpired int
	// ExportsExpired counts the self-service exports removed for having
	// expired (selfexport.go).
	ExportsExpired int
	// ChangesTrimmed counts the change log entries removed: all but the
	// last Options.KeepChanges.
	ChangesTrimmed uint64
	// Busy: another node sharing the index was running GC, so this run
	// did nothing (a shared index runs one GC at a time across nodes).
	Busy bool `json:",omitempty"`
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

// gcLock is the cluster-wide lock of GC with a shared index.
const gcLock = "mxcas-gc"

// GC is RunGC with default options: it refuses when the index looks lost.
func (s *Store) GC(ctx context.Context) (GCStats, error) { return s.RunGC(ctx, GCOptions{}) }

// RunGC is mark and sweep: it marks every object a media record refers to
// and every chunk of those objects, then removes manifests and chunk files
// that are not marked, and the URL preview records that have expired (see
// Options.PreviewCacheFor) and the self-service exports that have expired
// (selfexport.go). Chunk files younger than the grace period and
// anything an upload in flight has pinned are kept, so GC may run while
// uploads go on. Before it deletes anything it checks that the index knows
// the chunks it would delete (see GCOptions.Force); when not, it returns
// ErrGCRefused with the counts it found and changes nothing.
func (s *Store) RunGC(ctx context.Context, opts GCOptions) (GCStats, error) {
	s.maint.Lock()
	defer s.maint.Unlock()
	var st GCStats
	if s.idx.Shared() {
		unlock, ok, err := s.idx.TryLock(ctx, gcLock)
		if err != nil {
			return st, err
		}
		if !ok {
			st.Busy = true
			return st, nil
		}
		defer unlock()
		// Condemnations left by a GC that did not finish (we hold the lock).
		if err := s.idx.AbsolveAll(); err != nil {
			return st, err
		}
	}
	s.pins.startGC()
	defer s.pins.endGC()

	snap := s.idx.Snapshot()
	defer snap.Close()
	live := newLiveObjects(ctx, snap)
	// Find the candidates before deleting anything, so the sanity check can
	// refuse with the store untouched.
	mark, cands, total, err := s.markAndFind(ctx, live, &st)
	st.Objects = mark.objects
	if err != nil {
		return st, err
	}
	if s.idx.Follower() {
		mark.followPrimary()
	}
	if s.gcHook != nil {
		s.gcHook()
	}
	if err := s.checkIndexKnowsChunks(opts, cands, total, &st); err != nil {
		return st, err
	}
	var gone *[]cas.Hash // the chunks deleted, with a shared index
	if s.idx.Shared() {
		finish, err := s.condemn(ctx, &mark, &cands, &st)
		if err != nil {
			return st, err
		}
		gone = new([]cas.Hash)
		defer func() { finish(*gone) }()
	}
	if err := s.sweepIndex(mark, &st); err != nil {
		return st, err
	}
	if err := s.expirePreviews(ctx, snap, &st); err != nil {
		return st, err
	}
	st.ExportsExpired = s.expireUserExports(false)
	if err := s.trimChanges(&st); err != nil {
		return st, err
	}
	err = s.sweepChunks(ctx, cands, &st, gone)
	if err == nil {
		err = s.dropDeadDamage(live)
	}
	if err == nil {
		s.stats.gcRuns.Add(1)
		s.opts.Logger.Info("gc done", "objects", st.Objects, "objects_deleted", st.ObjectsDeleted,
			"chunks", st.Chunks, "chunks_deleted", st.ChunksDeleted, "bytes_deleted", st.BytesDeleted,
			"chunks_young", st.ChunksYoung, "previews_expired", st.PreviewsExpired,
			"exports_expired", st.ExportsExpired, "changes_trimmed", st.ChangesTrimmed)
	}
	return st, err
}

// thumbKey names one thumbnail record: its source object and its spec.
type thumbKey struct {
	src  cas.Hash
	spec string
}

// gcMark is what GC's mark phase found of the index besides the chunks:
// its dead manifests and thumbnails (garbage, not the whole store).
type gcMark struct {
	deadObj    []cas.Hash         // manifests of objects not live, sorted
	deadInline map[cas.Hash]int64 // the inline chunk's length of each of deadObj that has one
	deadThumbs []thumbKey         // thumbnails of sources no media record refers to
	objects    int                // live manifests
}

// followPrimary makes a standby's mark keep every manifest and thumbnail
// record (their chunks are kept by markAndFind): a standby drops those
// only when the primary's GC does (a replicated deletion). A primary's
// later upload of content it still knows names the manifest without
// writing it again, so a standby that had dropped it on its own would hold
// a record without content. Chunks of no manifest are still collected.
func (m *gcMark) followPrimary() {
	m.objects += len(m.deadObj)
	m.deadObj, m.deadInline, m.deadThumbs = nil, nil, nil
}

// gcCandidate is a chunk file GC may delete.
type gcCandidate struct {
	h     cas.Hash
	size  int64
	known bool // a dead manifest lists it
}

// gcChunk is a chunk file GC's walk found.
type gcChunk struct {
	h     cas.Hash
	size  int64
	young bool // within the grace period
}

// markAndFind is GC's mark and its walk of the chunk store, in passes
// over ranges of chunk hashes (passes.go): each pass collects the chunk
// files of its range and marks them from the manifests. It returns the
// chunk files that are neither live nor younger than the grace period,
// sorted, how many chunk files there are in all, and what the first pass
// found of the index (a follower's known chunks count as live: see
// followPrimary). It counts the kept ones in st and deletes nothing. An
// unreadable thumbnail record of a live source or manifest of a live object
// is an error: GC must not sweep what it may need.
func (s *Store) markAndFind(ctx context.Context, live *liveObjects, st *GCStats) (gcMark, []gcCandidate, int, error) {
	var mark gcMark
	var cands []gcCandidate
	total := 0
	cutoff := s.opts.Now().Add(-s.opts.GCGrace)
	follower := s.idx.Follower()
	for r, first, more := whole, true, true; more; r, more = r.next() {
		set := newRangeSet(r.lo, func(c gcChunk) cas.Hash { return c.h })
		err := s.cas.Walk(func(h cas.Hash, info fs.FileInfo) error {
			set.add(gcChunk{h, info.Size(), info.ModTime().After(cutoff)})
			return ctx.Err()
		})
		if err != nil {
			return mark, nil, 0, err
		}
		var chunks []gcChunk
		r, chunks = set.done()
		passesRun.Add(1)
		marks := make([]chunkMark, len(chunks))
		m := &mark
		if !first {
			m = nil // the index's garbage was listed by the first pass
		}
		find := func(h cas.Hash) (int, bool) {
			return slices.BinarySearchFunc(chunks, h, func(c gcChunk, h cas.Hash) int { return compareHash(c.h, h) })
		}
		if err := live.markChunks(find, marks, m); err != nil {
			return mark, nil, 0, err
		}
		for i, c := range chunks {
			total++
			k := marks[i]
			if follower && k == chunkKnown {
				k = chunkLive
			}
			switch {
			case k == chunkLive:
				st.Chunks++
			case c.young:
				st.ChunksYoung++
			default:
				cands = append(cands, gcCandidate{c.h, c.size, k == chunkKnown})
			}
		}
		first = false
	}
	return mark, cands, total, nil
}

// checkIndexKnowsChunks is GC's sanity check (see GCOptions.Force): it
// counts in st the candidates no manifest lists, and returns ErrGCRefused
// when they are more than half of the total chunk files, unless forced.
func (s *Store) checkIndexKnowsChunks(opts GCOptions, cands []gcCandidate, total int, st *GCStats) error {
	// Unknown chunks an upload in flight protects are not counted: they
	// are its own, about to be listed by its manifest, and are kept anyway.
	s.pins.whileLocked(func(pinned func(cas.Hash) bool) error {
		for _, c := range cands {
			if !c.known && !pinned(c.h) {
				st.ChunksUnknown++
			}
		}
		return nil
	})
	if opts.Force || 2*st.ChunksUnknown <= total {
		return nil
	}
	s.opts.Logger.Error("gc refused: the index does not know most chunks", "chunks", total,
		"unknown_to_delete", st.ChunksUnknown, "live_objects", st.Objects)
	return fmt.Errorf("%w: it would delete %d of the %d chunk files, and the index lists %d of them in no manifest: "+
		"the index may be lost, emptied or replaced; nothing was deleted. Check the index and run fsck; "+
		"force GC (mxcas gc -force) only if this is expected",
		ErrGCRefused, len(cands), total, st.ChunksUnknown)
}

// sweepIndex removes the dead thumbnail records and the dead manifests in
// one batch, decided and committed while no upload can pin one of them; a
// manifest an upload pinned is kept.
func (s *Store) sweepIndex(mark gcMark, st *GCStats) error {
	if len(mark.deadObj) == 0 && len(mark.deadThumbs) == 0 {
		return nil
	}
	return s.pins.whileLocked(func(pinned func(cas.Hash) bool) error {
		b := s.idx.NewBatch()
		defer b.Close()
		for _, k := range mark.deadThumbs {
			if err := b.DeleteThumbnail(k.src, k.spec); err != nil {
				return err
			}
		}
		var inline int64 // bytes of the inline chunks deleted with their manifests
		for _, h := range mark.deadObj {
			if pinned(h) {
				st.Objects++
				continue
			}
			inline += mark.deadInline[h]
			if err := b.DeleteManifest(h); err != nil {
				return err
			}
			st.ObjectsDeleted++
		}
		if err := b.Commit(); err != nil {
			return err
		}
		s.stats.chunksChanged(0, -inline)
		return nil
	})
}

// sweepChunks deletes the candidate chunk files no upload has pinned,
// counting in st what it deleted and what it kept.
// gone, when not nil, receives the hashes deleted.
func (s *Store) sweepChunks(ctx context.Context, cands []gcCandidate, st *GCStats, gone *[]cas.Hash) error {
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return err
		}
		deleted, err := s.pins.ifUnpinned(c.h, func() error { return s.cas.Delete(c.h) })
		if err != nil {
			return err
		}
		if deleted && gone != nil {
			*gone = append(*gone, c.h)
		}
		if deleted {
			st.ChunksDeleted++
			st.BytesDeleted += c.size
			s.stats.gcChunks.Add(1)
			s.stats.gcBytes.Add(c.size)
			s.stats.chunksChanged(-1, -c.size)
		} else {
			st.Chunks++
		}
	}
	return nil
}
