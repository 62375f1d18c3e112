package media

import "github.com/mxcas/mxcas/matrix"

// Exported for media's external tests only.

// StoreFormat is storeFormat, so tests can compare what DATA/FORMAT holds.
type StoreFormat = storeFormat

// FormatVersion is formatVersion.
const FormatVersion = formatVersion

// LayoutInline is layoutInline, the layout of every new store.
const LayoutInline = layoutInline

// ReadFormat reads DATA/FORMAT (readFormat).
var ReadFormat = readFormat

// WaitThumbnailQueue returns once every queued background thumbnail job is
// done.
func (s *Store) WaitThumbnailQueue() { s.thumbs.pending.Wait() }

// SetThumbnailWaitHook has f called as a thumbnail request is admitted to
// wait for a worker (counted against MaxWaiting). Set it before any request.
func (s *Store) SetThumbnailWaitHook(f func()) { s.thumbs.hookWait = f }

// MustMXC is mustMXC, for IDs a test knows are valid.
var MustMXC = mustMXC

// UpdateRecord changes m's record with fn and writes it back: for tests of
// state that other calls set (last access, protection, who quarantined).
func (s *Store) UpdateRecord(m matrix.MXC, fn func(*Media)) error {
	rec, err := s.readMedia(m)
	if err != nil {
		return err
	}
	fn(&rec)
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.PutMedia(rec.record()); err != nil {
		return err
	}
	s.records.invalidate(m)
	return b.Commit()
}

// UsageCounters reads the merged usage counters of server.
func (s *Store) UsageCounters(server string) (bytes, count int64, err error) {
	u, err := s.idx.ServerUsage(server)
	return u.Bytes, u.Count, err
}

// SetGCHook runs f in GC between its snapshot and its sweep.
func (s *Store) SetGCHook(f func()) { s.gcHook = f }

// SetPassBudget sets how many hashes one pass of fsck or GC holds
// (passBudget) and returns what restores it.
func SetPassBudget(n int) (restore func()) {
	old := passBudget
	passBudget = n
	return func() { passBudget = old }
}

// PassesRun is how many passes over ranges of chunk hashes fsck and GC
// have made in this process.
func PassesRun() int64 { return passesRun.Load() }
