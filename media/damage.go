package media

import (
	"errors"
	"fmt"
	"slices"

	"sync"
	"sync/atomic"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// ErrDamaged means stored content failed its check on the way out: a chunk
// did not match its hash, was shorter than its manifest says, or was
// missing. It wraps the cas error (cas.ErrCorrupt or cas.ErrNotFound).
var ErrDamaged = errors.New("media: stored content is damaged")

// damage remembers the chunks found damaged, as the index does under d/:
// loaded at open, added to by readers, cleared by a repair. A reader
// about to use such a chunk fails at once, without reading it again; a
// whole read (Reader.Check) fails before anything is sent.
type damage struct {
	s   *Store
	n   atomic.Int64 // len(set), read without the lock on every open
	mu  sync.Mutex
	set map[cas.Hash]string // chunk -> the error first found
}

func (d *damage) load(idx *index.DB) error {
	d.set = make(map[cas.Hash]string)
	err := idx.ScanDamaged(func(h cas.Hash, rec index.DamageRecord, decodeErr error) error {
		if decodeErr == nil {
			d.set[h] = rec.Reason
		}
		return nil
	})
	d.n.Store(int64(len(d.set)))
	return err
}

// check fails when one of chunks is known to be damaged, without reading
// it again. An inline chunk is not looked up: its damage is not recorded
// (see foundInline).
func (d *damage) check(what string, chunks []index.ChunkRef) error {
	if d.n.Load() == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range chunks {
		if c.Inline {
			continue
		}
		if reason, ok := d.set[c.Hash]; ok {
			return fmt.Errorf("%w: %s: chunk %s (recorded): %s", ErrDamaged, what, c.Hash, reason)
		}
	}
	return nil
}

// found records that a read of what found chunk h damaged (cause), and
// returns the error to give the reader. The first finding of a chunk is
// logged at error level and written to the index.
func (d *damage) found(what string, h cas.Hash, cause error) error {
	err := fmt.Errorf("%w: %s: chunk %s: %w", ErrDamaged, what, h, cause)
	d.mu.Lock()
	_, known := d.set[h]
	if !known {
		d.set[h] = cause.Error()
		d.n.Store(int64(len(d.set)))
	}
	d.mu.Unlock()
	if known {
		return err
	}
	s := d.s
	s.stats.damageFound.Add(1)
	s.opts.Logger.Error("stored content is damaged", "media", what, "chunk", h.String(), "err", cause)
	if s.opts.ReadOnly {
		return err
	}
	b := s.idx.NewBatch()
	defer b.Close()
	rec := index.DamageRecord{Media: what, Reason: cause.Error(), Detected: s.opts.Now().UnixMilli()}
	if e := b.PutDamaged(h, rec); e == nil {
		e = b.Commit()
		if e != nil {
			s.opts.Logger.Warn("could not record damaged chunk", "chunk", h.String(), "err", e)
		}
	}
	return err
}

// foundInline is found for an inline chunk h of what: logged and counted,
// but not recorded. The record would be by chunk hash, and each object
// holds its own copy of its inline chunk, which another object, intact,
// may share (the same last chunk) or hold as a file; checking an inline
// chunk again is one index read.
func (d *damage) foundInline(what string, h cas.Hash, cause error) error {
	d.s.stats.damageFound.Add(1)
	d.s.opts.Logger.Error("stored content is damaged", "media", what, "inline_chunk", h.String(), "err", cause)
	return fmt.Errorf("%w: %s: inline chunk %s: %w", ErrDamaged, what, h, cause)
}

// known reports whether h is recorded as damaged.
func (d *damage) known(h cas.Hash) bool {
	if d.n.Load() == 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.set[h]
	return ok
}

// forget clears the in-memory record of h (its index record is deleted by
// the caller).
func (d *damage) forget(h cas.Hash) {
	d.mu.Lock()
	delete(d.set, h)
	d.n.Store(int64(len(d.set)))
	d.mu.Unlock()
}

// dropDeadDamage clears the damage records of chunks no live manifest
// needs (GC's mark, live; a follower's chunks of dead manifests count as
// needed): nothing reads them any more. Should an upload need one again,
// its next reader checks it afresh.
func (s *Store) dropDeadDamage(live *liveObjects) error {
	if s.damage.n.Load() == 0 {
		return nil
	}
	var damaged []cas.Hash
	err := s.idx.ScanDamaged(func(h cas.Hash, _ index.DamageRecord, _ error) error {
		damaged = append(damaged, h)
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(damaged, compareHash)
	marks := make([]chunkMark, len(damaged))
	find := func(h cas.Hash) (int, bool) { return sortedHas(damaged, h) }
	if err := live.markChunks(find, marks, nil); err != nil {
		return err
	}
	var dead []cas.Hash
	for i, h := range damaged {
		if marks[i] == chunkUnknown || marks[i] == chunkKnown && !s.idx.Follower() {
			dead = append(dead, h)
		}
	}
	if len(dead) == 0 {
		return nil
	}
	return s.clearDamage(dead...)
}
