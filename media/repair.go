package media

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/mxcas/mxcas/cas"
)

// ErrRepairSource: the directory to repair from is not a data directory
// whose chunks can be read.
var ErrRepairSource = errors.New("media: repair source refused")

// RepairReport says what RepairFrom or RepairFromSource did.
type RepairReport struct {
	// Copied lists the chunks copied back from the source.
	Copied []cas.Hash `json:"copied,omitempty"`
	// Cleared lists damage records cleared because the chunk now checks out.
	Cleared []cas.Hash `json:"cleared,omitempty"`
	// Unrepaired lists damaged chunks the source did not have intact.
	Unrepaired []cas.Hash `json:"unrepaired,omitempty"`
	// After is the Fsck of the store once the repair is done.
	After FsckReport `json:"after"`
}

// RepairFrom repairs damaged and missing chunks from src, another data
// directory holding the same content (a backup made by Backup, say), as
// RepairFromSource does. Nothing in src is written.
func (s *Store) RepairFrom(ctx context.Context, src string) (RepairReport, error) {
	if s.opts.ReadOnly {
		return RepairReport{}, cas.ErrReadOnly
	}
	layout, err := storeLayout(src, false)
	if err != nil {
		return RepairReport{}, fmt.Errorf("%w: %s: %w", ErrRepairSource, src, err)
	}
	from, err := cas.OpenLayout(src, casLayout(layout), true)
	if err != nil {
		return RepairReport{}, fmt.Errorf("%w: %s: %w", ErrRepairSource, src, err)
	}
	defer from.Close()
	return s.RepairFromSource(ctx, from, src)
}

// RepairFromSource repairs damaged and missing chunks from src, which
// holds the same content (a backup's chunks, a live peer's) and is called
// name in logs: it runs Fsck, then, for each chunk found corrupt, of the
// wrong size, missing or recorded as damaged by a read, copies the chunk
// from src when src has it intact (checked against its hash), writing it
// through the chunk store's durable write path, and clears its damage
// record. A recorded chunk that now checks out only has its record
// cleared. Chunks src lacks or holds damaged stay as they are. When src is
// a ContextChunkReader, ctx bounds its reads. It ends with a fresh Fsck, in
// the report.
func (s *Store) RepairFromSource(ctx context.Context, src cas.Reader, name string) (RepairReport, error) {
	var rep RepairReport
	if s.opts.ReadOnly {
		return rep, cas.ErrReadOnly
	}
	before, err := s.fsck(ctx, FsckOptions{})
	if err != nil {
		return rep, err
	}
	return s.repairFound(ctx, src, name, before)
}

// repairFound is RepairFromSource once the first Fsck found before.
func (s *Store) repairFound(ctx context.Context, src cas.Reader, name string, before FsckReport) (RepairReport, error) {
	var rep RepairReport
	if err := s.repairChunks(ctx, src, name, chunksToRepair(before), &rep); err != nil {
		return rep, err
	}
	var err error
	rep.After, err = s.fsck(ctx, FsckOptions{})
	return rep, err
}

// chunksToRepair lists, sorted, the chunks rep finds corrupt, of the wrong
// size, missing or recorded as damaged.
func chunksToRepair(rep FsckReport) []cas.Hash {
	need := make(map[cas.Hash]struct{})
	for _, p := range rep.Problems {
		switch p.Kind {
		case ProblemCorruptChunk, ProblemMissingChunk, ProblemChunkSize, ProblemRecordedDamage:
			need[p.Chunk] = struct{}{}
		}
	}
	hs := make([]cas.Hash, 0, len(need))
	for h := range need {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return string(hs[i][:]) < string(hs[j][:]) })
	return hs
}

// repairChunks repairs each of hs, recording in rep what it did: a chunk
// that now checks out only has its damage record cleared; another is
// copied back from the source from (called src) when it has the chunk
// intact, and left as it is when not. No GC runs meanwhile.
func (s *Store) repairChunks(ctx context.Context, from cas.Reader, src string, hs []cas.Hash, rep *RepairReport) error {
	s.maint.Lock() // no GC deletes what we put back meanwhile
	defer s.maint.Unlock()
	var buf []byte
	for _, h := range hs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := s.cas.ReadChunk(h, buf); err == nil {
			if err := s.clearDamage(h); err != nil {
				return err
			}
			rep.Cleared = append(rep.Cleared, h)
			continue
		}
		data, err := readChunkFrom(ctx, from, h, buf)
		if err == nil && cas.Sum(data) != h {
			err = fmt.Errorf("%w: the source gave %d bytes that do not match", cas.ErrCorrupt, len(data))
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			s.opts.Logger.Warn("repair: source lacks an intact copy", "chunk", h.String(), "from", src, "err", err)
			rep.Unrepaired = append(rep.Unrepaired, h)
			continue
		}
		buf = data
		if err := s.replaceChunk(h, data); err != nil {
			return err
		}
		s.opts.Logger.Info("repair: chunk copied back", "chunk", h.String(), "from", src)
		rep.Copied = append(rep.Copied, h)
	}
	return nil
}

// replaceChunk puts data, which the caller checked hashes to h, in place
// of the damaged or missing chunk file h, through the durable write path,
// and clears h's damage record.
func (s *Store) replaceChunk(h cas.Hash, data []byte) error {
	if err := s.space.reserve(s.chunkBytesHere(int64(len(data)))); err != nil {
		return err
	}
	// The damaged file goes first: Put keeps a file already in place.
	if err := s.cas.Delete(h); err != nil {
		return err
	}
	if _, err := cas.PutOne(s.cas, h, data); err != nil {
		return fmt.Errorf("media: repair chunk %s: %w", h.Short(), err)
	}
	s.stats.chunksRepaired.Add(1)
	return s.clearDamage(h)
}

// clearDamage deletes the damage records of hs, in the index (one batch)
// and in memory.
func (s *Store) clearDamage(hs ...cas.Hash) error {
	b := s.idx.NewBatch()
	defer b.Close()
	for _, h := range hs {
		if err := b.DeleteDamaged(h); err != nil {
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return noSpace(err)
	}
	for _, h := range hs {
		s.damage.forget(h)
	}
	return nil
}
