package media

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// A store whose index is in PostgreSQL (Options.IndexDSN) is shared by
// several processes, the nodes, each with a data directory of its own and
// the chunks in one object store. What one process settles in memory for
// a Pebble store is settled in the index for a shared one:
//
//   - two uploads to one media ID: the record is inserted on condition
//     that none exists (index.Batch.InsertMedia), a created ID filled on
//     condition that its pending entry is still there (FillPending); the
//     loser is ErrExists;
//   - records are not cached (a quarantine or deletion on one node holds on
//     every node at once), and the content quarantine is read from the
//     index for the object at hand;
//   - a download waiting for a created ID wakes when any node fills it,
//     and the other in-memory sets follow (index.DB.Watch);
//   - a thumbnail is made under a cluster-wide lock of its source, so one
//     node makes it and the others read it;
//   - GC takes a cluster-wide lock: one run at a time across the nodes.

// openTimeout bounds connecting to PostgreSQL at Open.
const openTimeout = 30 * time.Second

// openShared opens the PostgreSQL index and checks that the store it holds
// is the one format describes (hash, chunker, chunk place), recording them
// when the index is new.
func openShared(opts Options, iopts index.Options, format storeFormat) (*index.DB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	idx, err := index.OpenPostgres(ctx, opts.IndexDSN, iopts)
	if err != nil {
		return nil, err
	}
	want := format.shared()
	copying, err := idx.Copying()
	var got []byte
	switch {
	case err != nil:
	case copying != "":
		err = fmt.Errorf("%w: the PostgreSQL index is an unfinished copy of store %s (mxcas migrate has not "+
			"finished): run the migration again", ErrIndexMissing, copying)
	case opts.ReadOnly:
		got, err = idx.Meta("format") // nothing is written
	default:
		got, err = idx.EnsureMeta("format", want.encode())
	}
	if err == nil && string(got) != string(want.encode()) {
		err = fmt.Errorf("%w: the PostgreSQL index describes its store as %q, this node opens it as %q; "+
			"every node must have the same [storage] and chunk size", ErrFormat, got, want.encode())
	}
	if err != nil {
		idx.Close()
		return nil, err
	}
	return idx, nil
}

// shared is the description of the store a PostgreSQL index records
// (x/format): FORMAT's, less the ID and the layout, which each node's
// FORMAT carries (a node reads inline chunks whatever its own layout).
func (f storeFormat) shared() storeFormat {
	f.ID, f.Layout = "", 0
	return f
}

// watchShared follows the changes other nodes make to a shared index:
// downloads waiting for a created ID wake when a node fills it.
func (s *Store) watchShared() error {
	if !s.idx.Shared() {
		return nil
	}
	return s.idx.Watch(func(ops []index.Op, all bool) {
		if all {
			s.waiters.wakeAll()
			return
		}
		for _, op := range ops {
			if server, id, ok := op.MediaOf(); ok {
				if m, err := matrix.NewMXC(server, id); err == nil {
					s.waiters.wake(m)
				}
			}
		}
	})
}

// lockThumbnails takes the lock under which thumbnails of source object
// src are made: with a shared index a cluster-wide lock, so that of two
// nodes asked for one thumbnail one makes it and the other, once it has
// the lock, finds it stored; with Pebble nothing (the process's own
// single flight and jobs do it).
func (s *Store) lockThumbnails(ctx context.Context, src cas.Hash) (unlock func(), err error) {
	unlock, err = s.idx.Lock(ctx, "mxcas-thumbnails/"+src.String())
	if err != nil {
		return nil, fmt.Errorf("media: thumbnails of %s: %w", src.Short(), err)
	}
	return unlock, nil
}

// condemned maps index.ErrCondemned, a commit that referred to content
// another node's GC is removing, to ErrStorageUnavailable: nothing was
// recorded, and the same request, made again, stores the content anew.
func condemned(err error) error {
	if errors.Is(err, index.ErrCondemned) {
		return fmt.Errorf("%w: its content is being removed by GC on another node; try again: %w", ErrStorageUnavailable, err)
	}
	return err
}

// condemn is GC's second look on a shared index (see index/pgindex.go):
// it condemns the dead objects and candidate chunks, so that no node
// commits a new reference to them from now on, then marks again in a
// snapshot taken after that and spares (absolves at once) whatever a
// commit of another node made live meanwhile, dropping it from mark and
// cands. finish, called with the chunks the sweep deleted, absolves the
// rest; the deleted ones stay condemned until the next GC (a write that
// found one stored before must not record it).
func (s *Store) condemn(ctx context.Context, mark *gcMark, cands *[]gcCandidate, st *GCStats) (finish func(gone []cas.Hash), err error) {
	objs := mark.deadObj
	chunks := make([]cas.Hash, len(*cands))
	for i, c := range *cands {
		chunks[i] = c.h
	}
	if len(objs)+len(chunks) == 0 {
		return func([]cas.Hash) {}, nil
	}
	if err := s.idx.Condemn(objs, chunks); err != nil {
		return nil, err
	}
	warn := func(err error) {
		if err != nil {
			s.opts.Logger.Warn("gc: lifting condemnations failed; the next gc lifts them", "err", err)
		}
	}
	snap := s.idx.Snapshot()
	defer snap.Close()
	sparedObjs, sparedChunks, err := secondLook(newLiveObjects(ctx, snap), mark, cands)
	if err != nil {
		warn(s.idx.Absolve(objs, chunks))
		return nil, err
	}
	st.Objects += len(sparedObjs)
	st.Chunks += len(sparedChunks)
	dead, left := mark.deadObj, *cands
	warn(s.idx.Absolve(sparedObjs, sparedChunks))
	return func(gone []cas.Hash) {
		deleted := make(map[cas.Hash]bool, len(gone))
		for _, h := range gone {
			deleted[h] = true
		}
		var kept []cas.Hash
		for _, c := range left {
			if !deleted[c.h] {
				kept = append(kept, c.h)
			}
		}
		warn(s.idx.Absolve(dead, kept)) // the deleted chunks stay condemned
	}, nil
}

// secondLook is condemn's mark in the snapshot again: it drops from mark
// and cands the dead objects and candidate chunks live again, and returns
// them, and the thumbnails of sources live again. On error it changes
// nothing.
func secondLook(again *liveObjects, mark *gcMark, cands *[]gcCandidate) (sparedObjs, sparedChunks []cas.Hash, err error) {
	srcs := make([]cas.Hash, len(mark.deadThumbs))
	for i, k := range mark.deadThumbs {
		srcs[i] = k.src
	}
	liveObj, err := again.liveOf(append(srcs, mark.deadObj...))
	if err != nil {
		return nil, nil, err
	}
	marks := make([]chunkMark, len(*cands)) // cands is sorted
	find := func(h cas.Hash) (int, bool) {
		return slices.BinarySearchFunc(*cands, h, func(c gcCandidate, h cas.Hash) int { return compareHash(c.h, h) })
	}
	if err := again.markChunks(find, marks, nil); err != nil {
		return nil, nil, err
	}
	var thumbs []thumbKey
	for i, k := range mark.deadThumbs {
		if !liveObj[i] {
			thumbs = append(thumbs, k)
		}
	}
	var dead []cas.Hash
	for i, h := range mark.deadObj {
		if liveObj[len(srcs)+i] {
			sparedObjs = append(sparedObjs, h)
		} else {
			dead = append(dead, h)
		}
	}
	var left []gcCandidate
	for i, c := range *cands {
		if marks[i] == chunkLive {
			sparedChunks = append(sparedChunks, c.h)
		} else {
			left = append(left, c)
		}
	}
	mark.deadObj, mark.deadThumbs, *cands = dead, thumbs, left
	return sparedObjs, sparedChunks, nil
}

// retryShared runs op, which reads a record and writes it back on
// condition that it is unchanged (index.Batch.ExpectMedia), again when the
// commit found it changed by another node; a few times, then the conflict
// is returned. With Pebble, op's claim keeps conflicts away.
func retryShared(op func() error) error {
	var err error
	for range 5 {
		if err = op(); !errors.Is(err, index.ErrConflict) {
			return err
		}
	}
	return err
}
