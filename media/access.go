package media

import "time"

// AccessGranularity is how stale a media's LastAccess may get: a read
// writes the time only when the record says it was last read (or, never
// read, made) longer ago than this, so reads do not become writes.
const AccessGranularity = time.Hour

// lastUse is when rec was last read, or made when never read since (Unix
// ms): what the bulk deletions and the remote cache purge go by, as
// Synapse's last_access_ts does.
func lastUse(rec Media) int64 { return max(rec.LastAccess, rec.Created) }

// noteAccess records that rec, just resolved for a read, was read now,
// when its record is more than AccessGranularity stale. It never blocks
// or fails the read: when someone holds rec's claim (an upload, a
// deletion, an admin change) it does nothing, and a failed write is only
// logged, and a disk short of space is not written to. Under the claim
// it reads the record again and changes only LastAccess, so it never
// undoes a concurrent change. The write is not synced: a lost access time
// is harmless.
func (s *Store) noteAccess(rec Media) {
	now := s.opts.Now().UnixMilli()
	stale := func(r Media) bool { return now-lastUse(r) >= AccessGranularity.Milliseconds() }
	if s.opts.ReadOnly || !stale(rec) || !s.claims.try(rec.MXC) {
		return
	}
	defer s.claims.release(rec.MXC)
	if s.space.reserve(recordBytes) != nil {
		return // a disk under its free-space threshold takes no optional writes
	}
	cur, err := s.readMedia(rec.MXC)
	if err != nil || cur.Deleted || cur.Pending || !stale(cur) {
		return
	}
	b := s.idx.NewBatch()
	defer b.Close()
	// Another node may change the record meanwhile (a quarantine, a
	// deletion): then this write is dropped, not undoing it.
	if err := s.expectRecord(b, cur); err != nil {
		return
	}
	cur.LastAccess = now
	if err := b.PutMedia(cur.record()); err != nil {
		return
	}
	s.records.invalidate(rec.MXC)
	err = b.CommitNoSync()
	s.records.invalidate(rec.MXC)
	if err != nil {
		s.opts.Logger.Debug("last access not recorded", "media", rec.MXC.String(), "err", err)
	}
}
