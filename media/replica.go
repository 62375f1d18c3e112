package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// Replication's view of the store. The index logs every synced change of
// replicated records (index/changes.go); a primary serves that log and its
// chunks, a standby (Options.Follower) fetches the chunks a change needs,
// puts them with PutChunks, then applies the change with ApplyChange. The
// replication package does the talking; this file is all it needs.

// Change is one numbered change of the log: the replicated operations of
// one committed batch.
type Change = index.Change

var (
	// ErrChangesTrimmed means the log no longer holds the changes asked
	// for: the standby must be seeded again from a backup.
	ErrChangesTrimmed = errors.New("media: the change log no longer holds those changes")
	// ErrChangeOrder means a change does not follow the last one applied.
	ErrChangeOrder = errors.New("media: change out of order")
	// ErrChunksMissing means a change names chunks the store does not hold.
	ErrChunksMissing = errors.New("media: chunks of the change are missing")
	// ErrChunkHash means chunk bytes do not hash to their name.
	ErrChunkHash = errors.New("media: chunk does not match its hash")
)

// Head is the number of the last durable change (0: none).
func (s *Store) Head() uint64 { return s.idx.Head() }

// HeadChanged returns a channel closed when Head next advances.
func (s *Store) HeadChanged() <-chan struct{} { return s.idx.HeadChanged() }

// Changes returns up to limit changes after seq, in order, none when seq
// is the head. ErrChangesTrimmed when they are no longer kept.
func (s *Store) Changes(after uint64, limit int) ([]Change, error) {
	cs, err := s.idx.Changes(after, limit)
	if errors.Is(err, index.ErrTrimmed) {
		return nil, fmt.Errorf("%w: %v", ErrChangesTrimmed, err)
	}
	return cs, err
}

// ChangeDigest returns a digest of change seq as this store's log holds it
// (hex SHA-256 of its operations), or "" when it holds none by that number
// (0, trimmed, not yet made). A standby and its primary that hold the same
// change have the same digest: the standby keeps the primary's operations
// as they came.
func (s *Store) ChangeDigest(seq uint64) (string, error) {
	if seq == 0 {
		return "", nil
	}
	ops, err := s.idx.ChangeAt(seq)
	if errors.Is(err, index.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(ops)
	return hex.EncodeToString(sum[:]), nil
}

// ReadChunk returns chunk h's bytes (into buf when it fits), checked
// against h: a damaged chunk is an error, never wrong bytes.
func (s *Store) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	data, err := s.cas.ReadChunk(h, buf)
	if err != nil {
		return nil, err
	}
	if cas.Sum(data) != h {
		return nil, fmt.Errorf("%w: %s", ErrChunkHash, h)
	}
	return data, nil
}

// ChunkRef names one chunk and its length.
type ChunkRef = index.ChunkRef

// MissingChunks returns, without repeats, the chunks that c's manifests
// name and the store does not hold: what a standby fetches before applying
// c.
func (s *Store) MissingChunks(c Change) ([]cas.Hash, error) {
	refs, err := s.MissingChunkRefs(c)
	if err != nil {
		return nil, err
	}
	hs := make([]cas.Hash, len(refs))
	for i, r := range refs {
		hs[i] = r.Hash
	}
	return hs, nil
}

// MissingChunkRefs is MissingChunks with each chunk's length, as c's
// manifests give it (what a standby counts as still to fetch), sorted by
// hash.
func (s *Store) MissingChunkRefs(c Change) ([]ChunkRef, error) {
	ops, err := index.DecodeOps(c.Ops)
	if err != nil {
		return nil, err
	}
	refs, err := index.ManifestChunks(ops)
	if err != nil {
		return nil, err
	}
	return s.missingRefs(refs), nil
}

// missingRefs returns, sorted by hash and without repeats, those of refs
// the chunk store does not hold.
func (s *Store) missingRefs(refs []ChunkRef) []ChunkRef {
	refs = slices.Clone(refs)
	slices.SortFunc(refs, func(a, b ChunkRef) int { return slices.Compare(a.Hash[:], b.Hash[:]) })
	refs = slices.CompactFunc(refs, func(a, b ChunkRef) bool { return a.Hash == b.Hash })
	var missing []ChunkRef
	for _, r := range refs {
		if _, err := s.cas.Stat(r.Hash); err != nil {
			missing = append(missing, r)
		}
	}
	return missing
}

// PutChunks stores chunks, each checked against its hash first (a
// mismatch stores none of them: ErrChunkHash), durably, with one sync for
// all. Chunks already held are kept.
func (s *Store) PutChunks(chunks map[cas.Hash][]byte) error {
	if s.opts.ReadOnly {
		return cas.ErrReadOnly
	}
	var total int64
	for h, data := range chunks {
		if cas.Sum(data) != h {
			return fmt.Errorf("%w: %s", ErrChunkHash, h)
		}
		total += int64(len(data))
	}
	if err := s.space.reserve(s.chunkBytesHere(total)); err != nil {
		return err
	}
	b := s.cas.BeginBatch()
	defer b.Abort()
	var added, addedBytes int64
	for h, data := range chunks {
		isNew, err := b.Put(h, data)
		if err != nil {
			return noSpace(err)
		}
		if isNew {
			added++
			addedBytes += int64(len(data))
		}
	}
	if err := b.Commit(); err != nil {
		return noSpace(err)
	}
	s.stats.chunksChanged(added, addedBytes)
	return nil
}

// ApplyChange applies a primary's change c, once every chunk it needs is
// held (ErrChunksMissing otherwise): its records, synced, under its own
// number, then the caches that its records touch. A change already applied
// is a no-op; one that skips a number is ErrChangeOrder.
//
// While it runs, the change's chunks and objects are pinned against a GC
// running here, and the media it writes are claimed, so a local write of
// one (a last access time) cannot put an older record back over it. The
// deletion of a manifest that a record made here still uses (a remote
// media this standby fetched itself, a thumbnail it made) is left out:
// that record would lose its content otherwise.
func (s *Store) ApplyChange(c Change) error { return s.ApplyChanges([]Change{c}) }

// ApplyChanges applies consecutive changes as ApplyChange does, with one
// synced index commit for all of them: every chunk they need must be held.
func (s *Store) ApplyChanges(cs []Change) error {
	for len(cs) > 0 && cs[0].Seq <= s.idx.Head() {
		cs = cs[1:] // already applied
	}
	if len(cs) == 0 {
		return nil
	}
	var ops []index.Op
	for _, c := range cs {
		cops, err := index.DecodeOps(c.Ops)
		if err != nil {
			return fmt.Errorf("change %d: %w", c.Seq, err)
		}
		ops = append(ops, cops...)
	}
	refs, err := index.ManifestChunks(ops)
	if err != nil {
		return err
	}
	pins := s.newPinSet()
	defer pins.release()
	for _, r := range refs {
		pins.pin(r.Hash)
	}
	var ms []matrix.MXC
	for _, op := range ops {
		if server, id, ok := op.MediaOf(); ok {
			if m, err := matrix.NewMXC(server, id); err == nil {
				ms = append(ms, m)
			}
		}
	}
	slices.SortFunc(ms, func(a, b matrix.MXC) int { return strings.Compare(a.String(), b.String()) })
	ms = slices.Compact(ms)
	for _, m := range ms { // in key order, as bulk deletions claim
		s.claims.wait(m)
	}
	defer func() {
		for _, m := range ms {
			s.claims.release(m)
		}
	}()
	if missing := s.missingRefs(refs); len(missing) > 0 {
		return fmt.Errorf("%w: %d, the first %s", ErrChunksMissing, len(missing), missing[0].Hash)
	}
	skip, err := s.keepLocalObjects(ops)
	if err != nil {
		return err
	}
	var objs []cas.Hash // whose manifests the changes set or delete
	for _, op := range ops {
		if h, ok := op.ManifestObject(); ok {
			objs = append(objs, h)
		}
	}
	for _, m := range ms {
		s.records.invalidate(m)
	}
	for _, h := range objs {
		s.manifests.invalidate(h)
	}
	quarantine := false
	for _, op := range ops {
		quarantine = quarantine || op.Quarantine()
	}
	apply := func() error { return s.idx.ApplyChanges(cs, skip) }
	if quarantine {
		err = s.quarantine.reloadAround(s.idx, apply)
	} else {
		err = apply()
	}
	if errors.Is(err, errQuarantineStale) {
		// The changes are applied; the set is stale until reloaded.
		s.opts.Logger.Error("replication: content quarantine not reloaded", "err", err)
		err = nil
	}
	if errors.Is(err, index.ErrChangeOrder) {
		return fmt.Errorf("%w: %v", ErrChangeOrder, err)
	}
	if err != nil {
		return noSpace(err)
	}
	for _, m := range ms {
		s.records.invalidate(m)
		s.waiters.wake(m)
	}
	for _, h := range objs {
		s.manifests.invalidate(h)
	}
	s.stats.recordsChanged(index.ServerUsageDelta(ops))
	return nil
}

// keepLocalObjects returns, for a change that deletes manifests, what to
// leave out: the deletion of a manifest that a media or thumbnail record
// here still uses. On the primary no record used it (its GC dropped it),
// so such a record was made here: a remote media this standby fetched, a
// thumbnail it made. Finding them takes one scan of the records, paid only
// by changes that delete manifests (the primary's GC).
func (s *Store) keepLocalObjects(ops []index.Op) (func(index.Op) bool, error) {
	deleted := make(map[cas.Hash]bool)
	for _, op := range ops {
		if h, ok := op.DeletedObject(); ok {
			deleted[h] = true
		}
	}
	if len(deleted) == 0 {
		return nil, nil
	}
	used := make(map[cas.Hash]bool)
	snap := s.idx.Snapshot()
	defer snap.Close()
	err := snap.ScanMediaChecked(func(r index.MediaRecord, decodeErr error) error {
		if decodeErr == nil && deleted[r.Object] {
			used[r.Object] = true
		}
		return nil
	})
	if err == nil {
		err = snap.ScanThumbnails(func(_ cas.Hash, _ string, tr index.ThumbRecord, decodeErr error) error {
			if decodeErr == nil && deleted[tr.Object] {
				used[tr.Object] = true
			}
			return nil
		})
	}
	if err != nil || len(used) == 0 {
		return nil, err
	}
	return func(op index.Op) bool {
		h, ok := op.DeletedObject()
		return ok && used[h]
	}, nil
}

// DefaultKeepChanges is how many changes the log keeps by default: a
// standby further behind than that must be seeded again from a backup.
const DefaultKeepChanges = 1_000_000

// trimChanges removes all but the last KeepChanges changes of the log,
// counting them in st. A trimmed log keeps its numbering.
func (s *Store) trimChanges(st *GCStats) error {
	keep := s.opts.KeepChanges
	if keep == 0 {
		keep = DefaultKeepChanges
	}
	head := s.idx.Head()
	if head <= keep {
		return nil
	}
	upTo := head - keep
	first, err := s.idx.FirstChange()
	if err != nil || first == 0 || first > upTo {
		return err
	}
	if err := s.idx.TrimChanges(upTo); err != nil {
		return noSpace(err)
	}
	st.ChangesTrimmed = upTo - first + 1
	return nil
}

// Promote makes a standby's store a primary's: from now on its own
// changes are logged, numbered on from the last one applied.
func (s *Store) Promote() { s.idx.SetFollower(false) }
