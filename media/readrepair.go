package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/mxcas/mxcas/cas"
)

// Repair on read. A store with a repair source (Options.RepairSource: a
// standby's primary) that finds a chunk damaged (wrong bytes, short,
// missing), on a read or recorded earlier, fetches it again from the
// source, checks it, puts it in place through the durable write path,
// clears its damage record, and the read goes on with the good bytes. The
// chunk is whole in memory before any of its bytes leave, so a stream that
// meets the damage mid-way continues seamlessly. Reads of the same chunk
// fetch it once. A chunk the source could not give is not asked for again
// for repairBackoff; the read fails with the damage as without a source.

// ContextChunkReader is a repair source whose reads can be bounded: a
// source that implements it is given a context that ends after
// Options.RepairTimeout (on a read) or with the repair's own context.
type ContextChunkReader interface {
	ReadChunkContext(ctx context.Context, h cas.Hash, buf []byte) ([]byte, error)
}

// ErrRepairFailed means a damaged chunk could not be fetched again from
// the repair source.
var ErrRepairFailed = errors.New("media: repair from the repair source failed")

// repairBackoff is how long a chunk the repair source failed to give is
// not asked for again.
const repairBackoff = time.Minute

// repairSourceBox holds a cas.Reader (an interface) for an atomic.Pointer;
// r nil: no repair source.
type repairSourceBox struct{ r cas.Reader }

// readRepairs is the store's repair-on-read state.
type readRepairs struct {
	src     atomic.Pointer[repairSourceBox]
	mu      sync.Mutex
	flights map[cas.Hash]*chunkRepair
	failed  *simplelru.LRU[cas.Hash, time.Time] // chunk -> not asked for again before
	// joined, set only by tests, runs when a read waits for another's
	// fetch of the same chunk.
	joined func(cas.Hash)
}

// chunkRepair is one fetch of a chunk from the repair source, shared by
// the reads that need it. data is read-only once done is closed.
type chunkRepair struct {
	ctx  context.Context // ends when the fetch is over or out of time
	done chan struct{}
	data []byte
	err  error
}

func (rr *readRepairs) init(src cas.Reader) {
	rr.src.Store(&repairSourceBox{src})
	rr.flights = make(map[cas.Hash]*chunkRepair)
	rr.failed, _ = simplelru.NewLRU[cas.Hash, time.Time](4096, nil)
}

// SetRepairSource replaces Options.RepairSource: nil stops repairs from a
// source (a standby promoted: its primary is gone). Remembered failures are
// forgotten. Fetches in flight finish with the source they started with.
// Safe for concurrent use.
func (s *Store) SetRepairSource(src cas.Reader) {
	s.repairs.src.Store(&repairSourceBox{src})
	s.repairs.mu.Lock()
	s.repairs.failed.Purge()
	s.repairs.mu.Unlock()
}

// repairSource returns the repair source, nil when there is none or the
// store is read-only.
func (s *Store) repairSource() cas.Reader {
	if s.opts.ReadOnly {
		return nil
	}
	return s.repairs.src.Load().r
}

// readChunkFrom reads chunk h from src, bounded by ctx when src can be.
func readChunkFrom(ctx context.Context, src cas.Reader, h cas.Hash, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cr, ok := src.(ContextChunkReader); ok {
		return cr.ReadChunkContext(ctx, h, buf)
	}
	return src.ReadChunk(h, buf)
}

// repairChunk returns chunk h (size bytes), repaired from the repair
// source, once it is in place on disk and its damage record is cleared;
// what names the media read, for the logs. The returned bytes are shared
// with other reads: they must not be changed. Concurrent calls for one
// chunk share one fetch; each waits at most Options.RepairTimeout from the
// fetch's start. An error wraps ErrRepairFailed.
func (s *Store) repairChunk(h cas.Hash, size int64, what string) ([]byte, error) {
	rr := &s.repairs
	rr.mu.Lock()
	if f, ok := rr.flights[h]; ok {
		rr.mu.Unlock()
		if rr.joined != nil {
			rr.joined(h)
		}
		select {
		case <-f.done:
		case <-f.ctx.Done():
			select {
			case <-f.done: // the fetch ended, then its context
			default:
				return nil, fmt.Errorf("%w: chunk %s: waiting for the source: %w", ErrRepairFailed, h.Short(), f.ctx.Err())
			}
		}
		return f.data, f.err
	}
	f := &chunkRepair{done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RepairTimeout)
	f.ctx = ctx
	rr.flights[h] = f
	rr.mu.Unlock()

	f.data, f.err = s.fetchRepair(ctx, h, size, what)
	rr.mu.Lock()
	delete(rr.flights, h)
	if f.err != nil {
		rr.failed.Add(h, s.opts.Now().Add(repairBackoff))
	}
	rr.mu.Unlock()
	close(f.done)
	cancel()
	return f.data, f.err
}

// fetchRepair is repairChunk's fetch: chunk h is read again here first
// (another repair may have put it back since the caller found it damaged),
// else fetched from the source, checked and put in place.
func (s *Store) fetchRepair(ctx context.Context, h cas.Hash, size int64, what string) ([]byte, error) {
	if data, err := s.cas.ReadChunk(h, nil); err == nil && int64(len(data)) == size {
		if !s.damage.known(h) {
			return data, nil
		}
		if err := s.clearDamage(h); err != nil {
			return nil, fmt.Errorf("%w: chunk %s: %w", ErrRepairFailed, h.Short(), err)
		}
		return data, nil
	}
	src := s.repairSource()
	if src == nil {
		return nil, fmt.Errorf("%w: chunk %s: no repair source", ErrRepairFailed, h.Short())
	}
	s.repairs.mu.Lock()
	until, failed := s.repairs.failed.Get(h)
	s.repairs.mu.Unlock()
	if failed && s.opts.Now().Before(until) {
		return nil, fmt.Errorf("%w: chunk %s: the source failed to give it recently", ErrRepairFailed, h.Short())
	}
	data, err := readChunkFrom(ctx, src, h, nil)
	if err == nil && (int64(len(data)) != size || cas.Sum(data) != h) {
		err = fmt.Errorf("%w: the source gave %d bytes that do not match", cas.ErrCorrupt, len(data))
	}
	if err == nil {
		err = s.replaceChunk(h, data)
	}
	if err != nil {
		s.opts.Logger.Error("could not repair damaged chunk from the repair source", "media", what, "chunk", h.String(), "err", err)
		return nil, fmt.Errorf("%w: chunk %s: %w", ErrRepairFailed, h.Short(), err)
	}
	s.opts.Logger.Info("damaged chunk repaired from the repair source", "media", what, "chunk", h.String())
	return data, nil
}

// repair is load's answer to damage of chunk i found (or recorded) while a
// repair source is set: the chunk is fetched again and made current, from
// the reader's own buffer. It reports whether that worked.
func (r *Reader) repair(i int) bool {
	if r.s.repairSource() == nil {
		return false
	}
	ref := r.refs[i]
	data, err := r.s.repairChunk(ref.Hash, int64(ref.Len), r.what)
	if err != nil {
		return false
	}
	r.cur.Close()
	if r.buf == nil {
		r.buf = chunkBufs.Get().(*[]byte)
	}
	*r.buf = append((*r.buf)[:0], data...)
	r.cur, r.curIdx, r.curOff = cas.VerifiedChunk{Data: *r.buf}, i, 0
	return true
}

// repairRecorded repairs, from the repair source, those of chunks that are
// recorded as damaged; it fails on the first it cannot repair.
func (r *Reader) repairRecorded(i int) bool {
	if r.s.repairSource() == nil {
		return false
	}
	for _, ref := range r.refs[i:] {
		if ref.Inline || !r.s.damage.known(ref.Hash) {
			continue // an inline chunk's damage is not recorded
		}
		if _, err := r.s.repairChunk(ref.Hash, int64(ref.Len), r.what); err != nil {
			return false
		}
	}
	return true
}
