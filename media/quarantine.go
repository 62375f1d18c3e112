package media

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// ErrQuarantinedContent: an upload or a remote fetch brought content an
// admin quarantined (QuarantineContent); nothing servable was stored.
var ErrQuarantinedContent = errors.New("media: content is quarantined")

// Quarantine by media ID (Media.Quarantined) and by content. Quarantined
// media, either way, is ErrNotFound to every reader (Resolve) and so are
// its thumbnails; Protected media is exempt from the bulk calls
// (QuarantineUser, QuarantineContent) but not from Quarantine by ID, an
// explicit act on that one media.
//
// A content quarantine is keyed by (object, homeserver): it blocks that
// homeserver's local media with the object and every cached remote media
// with it (the remote cache is shared by the homeservers served here), and
// refuses later uploads of the object to that homeserver and remote
// fetches of it. The set lives in memory (contentQuarantine), so reads pay
// no index lookup.

// contentQuarantine is the quarantined (object, homeserver) pairs, as the
// index holds them under q/: loaded at Open, changed by QuarantineContent
// and UnquarantineContent. Homeserver names are kept lower-case.
type contentQuarantine struct {
	// shared is the index when other nodes share it: the set is then
	// read again from it for the object at hand before each use.
	shared *index.DB
	n      atomic.Int64 // len(set), read without the lock on every read
	mu     sync.RWMutex
	set    map[cas.Hash]map[string]string // object -> homeserver -> admin
}

func (q *contentQuarantine) load(idx *index.DB) error {
	q.set = make(map[cas.Hash]map[string]string)
	defer func() { q.n.Store(int64(len(q.set))) }()
	return idx.ScanQuarantine(func(h cas.Hash, hs string, rec index.QuarantineRecord, decodeErr error) error {
		if decodeErr == nil {
			q.addLocked(h, hs, rec.By)
		}
		return nil
	})
}

// reloadAround runs apply, a change of idx's quarantine records (a
// standby applying the primary's changes), with the set's readers held
// off, then loads the set again: no read finds the change applied and the
// set not yet loaded. (n is raised first, so even readers of an empty set
// wait for the lock.)
func (q *contentQuarantine) reloadAround(idx *index.DB, apply func() error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n.Add(1)
	err := apply()
	if lerr := q.load(idx); err == nil && lerr != nil {
		return fmt.Errorf("%w: %w", errQuarantineStale, lerr)
	}
	return err
}

// errQuarantineStale: changes were applied but the content quarantine set
// could not be loaded again.
var errQuarantineStale = errors.New("media: content quarantine not reloaded")

// sync reads the quarantine of content h from a shared index into the set
// (another node may have changed it); with a Pebble index it does
// nothing. When the index cannot be read the set is kept as it was.
func (q *contentQuarantine) sync(h cas.Hash) {
	if q.shared == nil {
		return
	}
	hss := make(map[string]string)
	err := q.shared.ScanQuarantineOf(h, func(hs string, rec index.QuarantineRecord) error {
		hss[strings.ToLower(hs)] = rec.By
		return nil
	})
	if err != nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(hss) == 0 {
		delete(q.set, h)
	} else {
		q.set[h] = hss
	}
	q.n.Store(int64(len(q.set)))
}

func (q *contentQuarantine) addLocked(h cas.Hash, hs, by string) {
	if q.set[h] == nil {
		q.set[h] = make(map[string]string)
	}
	q.set[h][strings.ToLower(hs)] = by
	q.n.Store(int64(len(q.set)))
}

// blockedLocked reports whether content h is blocked for media of server
// (remote: a cached copy of another server's), and by which admin. The
// caller holds q.mu.
func (q *contentQuarantine) blockedLocked(h cas.Hash, server string, remote bool) (by string, ok bool) {
	hss := q.set[h]
	if len(hss) == 0 {
		return "", false
	}
	if !remote {
		by, ok = hss[strings.ToLower(server)]
		return by, ok
	}
	for _, by := range hss {
		return by, true
	}
	return "", false
}

// blocks reports whether rec is refused for its content: quarantined for
// its homeserver, or for any when it is remote. Protected media never is.
func (q *contentQuarantine) blocks(rec Media) bool {
	if !rec.Protected && !rec.Object.IsZero() {
		q.sync(rec.Object)
	}
	if q.n.Load() == 0 || rec.Protected || rec.Object.IsZero() {
		return false
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	_, ok := q.blockedLocked(rec.Object, rec.MXC.Server(), rec.Remote)
	return ok
}

// commitUnless runs commit unless content h is quarantined for media of
// server (remote as in blockedLocked); then it runs refused with the admin
// who quarantined it, and returns its error or ErrQuarantinedContent.
// Either runs under the read lock, so a QuarantineContent that returns
// after it has counted every record committed here.
func (q *contentQuarantine) commitUnless(h cas.Hash, server string, remote bool, commit func() error, refused func(by string) error) error {
	q.sync(h)
	q.mu.RLock()
	defer q.mu.RUnlock()
	by, blocked := q.blockedLocked(h, server, remote)
	if !blocked {
		return commit()
	}
	if refused != nil {
		if err := refused(by); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: object %s is quarantined for %s", ErrQuarantinedContent, h.Short(), server)
}

// Placeholder reports whether rec is a record without content that is not
// a created ID: a quarantined remote media never fetched (Quarantine of
// uncached remote media, or a fetch that brought quarantined content). It
// is always Quarantined; it counts in no usage, and GC and fsck skip it
// as they skip a pending record.
func (rec Media) Placeholder() bool { return rec.Object.IsZero() && !rec.Pending }

// Quarantine marks m quarantined by admin by: local media (ErrNotFound when
// unknown or deleted) or remote media. Remote media not cached yet gets a
// placeholder record (see Placeholder), so it is never fetched while
// quarantined. Protected media is quarantined too: this is an explicit act
// on one media.
func (s *Store) Quarantine(m matrix.MXC, by string) error {
	return s.updateMedia(m, func(rec *Media, found bool) (bool, error) {
		if !found {
			if s.local(m.Server()) {
				return false, fmt.Errorf("%w: %s", ErrNotFound, m)
			}
			*rec = Media{MXC: m, Remote: true, Created: s.opts.Now().UnixMilli()}
		}
		rec.Quarantined, rec.QuarantinedBy = true, by
		return true, nil
	})
}

// Unquarantine lifts the quarantine by ID of m (ErrNotFound when unknown or
// deleted); a placeholder is removed, so the media is fetched again on its
// next read. A content quarantine is not lifted by this.
func (s *Store) Unquarantine(m matrix.MXC) error {
	return s.updateMedia(m, func(rec *Media, found bool) (bool, error) {
		if !found {
			return false, fmt.Errorf("%w: %s", ErrNotFound, m)
		}
		rec.Quarantined, rec.QuarantinedBy = false, ""
		return !rec.Placeholder(), nil
	})
}

// SetProtected protects m from the bulk quarantines, or lifts that
// (ErrNotFound when unknown or deleted).
func (s *Store) SetProtected(m matrix.MXC, protected bool) error {
	return s.updateMedia(m, func(rec *Media, found bool) (bool, error) {
		if !found {
			return false, fmt.Errorf("%w: %s", ErrNotFound, m)
		}
		rec.Protected = protected
		return true, nil
	})
}

// updateMedia changes m's record under its claim: change gets the record
// (found false when there is none, or it is deleted) and returns whether to
// keep it (false: delete the record) or an error (nothing written).
//
// With a shared index the change is committed on condition that the record
// is still as read, and made again from a fresh read when another node
// changed it first.
func (s *Store) updateMedia(m matrix.MXC, change func(rec *Media, found bool) (keep bool, err error)) error {
	s.claims.wait(m)
	defer s.claims.release(m)
	return retryShared(func() error {
		rec, err := s.readMedia(m)
		exists := err == nil
		found := exists && !rec.Deleted
		if err != nil && !errors.Is(err, index.ErrNotFound) {
			return err
		}
		read := rec
		keep, err := change(&rec, found)
		if err != nil {
			return err
		}
		b := s.idx.NewBatch()
		defer b.Close()
		if exists {
			err = s.expectRecord(b, read)
		} else if keep && s.idx.Shared() {
			err = b.InsertMedia(rec.record())
		}
		if err != nil {
			return err
		}
		if keep {
			err = b.PutMedia(rec.record())
		} else {
			err = b.DeleteMedia(m.Server(), m.MediaID())
		}
		if err != nil {
			return err
		}
		return s.commitInvalidating(b, m)
	})
}

// commitInvalidating commits b, which changes the records of ms, keeping
// the record cache from holding their old state.
func (s *Store) commitInvalidating(b *index.Batch, ms ...matrix.MXC) error {
	for _, m := range ms {
		s.records.invalidate(m)
	}
	err := s.commitRecords(b)
	for _, m := range ms {
		s.records.invalidate(m)
	}
	return err
}

// QuarantineUser quarantines, by admin by, every media user uploaded that
// is not protected (nor deleted), in one batch, and returns how many that
// is (those already quarantined included, as Synapse counts).
func (s *Store) QuarantineUser(user, by string) (int, error) {
	var ms []matrix.MXC
	err := s.idx.ScanOwned(user, func(server, id string) error {
		m, err := matrix.NewMXC(server, id)
		if err != nil {
			return fmt.Errorf("%w: owner record %s/%s: %w", index.ErrCorruptRecord, server, id, err)
		}
		ms = append(ms, m)
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Claims in key order, as every bulk change takes them: no two wait on
	// each other.
	for _, m := range ms {
		s.claims.wait(m)
	}
	defer func() {
		for _, m := range ms {
			s.claims.release(m)
		}
	}()
	n := 0
	err = retryShared(func() error { // another node may change them meanwhile
		b := s.idx.NewBatch()
		defer b.Close()
		n = 0
		for _, m := range ms {
			rec, err := s.readMedia(m)
			if errors.Is(err, index.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rec.Protected || rec.Deleted {
				continue
			}
			n++
			if rec.Quarantined {
				continue
			}
			if err := s.expectRecord(b, rec); err != nil {
				return err
			}
			rec.Quarantined, rec.QuarantinedBy = true, by
			if err := b.PutMedia(rec.record()); err != nil {
				return err
			}
		}
		return s.commitInvalidating(b, ms...)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// QuarantineContent quarantines the content of m (local media of
// homeserver, or cached remote media) for homeserver, by admin by: see
// contentQuarantine. It returns how many media records the quarantine
// now blocks (protected ones are exempt). m unknown, deleted or without
// content is ErrNotFound. Counting scans every media record: an admin's
// occasional act, not a read path.
func (s *Store) QuarantineContent(m matrix.MXC, homeserver, by string) (int, error) {
	h, err := s.contentOf(m)
	if err != nil {
		return 0, err
	}
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.PutQuarantine(h, strings.ToLower(homeserver), index.QuarantineRecord{By: by, At: s.opts.Now().UnixMilli()}); err != nil {
		return 0, err
	}
	q := &s.quarantine
	q.mu.Lock() // no upload or fetch commits between the record and the set
	err = s.commitRecords(b)
	if err == nil {
		q.addLocked(h, homeserver, by)
	}
	q.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return s.countContent(h, func(rec Media) bool { return q.blocks(rec) && covers(rec, homeserver) })
}

// UnquarantineContent lifts the quarantine of m's content for homeserver
// and returns how many media records it no longer blocks (remote media
// stays blocked while another homeserver's quarantine of it stands).
func (s *Store) UnquarantineContent(m matrix.MXC, homeserver string) (int, error) {
	h, err := s.contentOf(m)
	if err != nil {
		return 0, err
	}
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.DeleteQuarantine(h, strings.ToLower(homeserver)); err != nil {
		return 0, err
	}
	q := &s.quarantine
	q.mu.Lock()
	_, was := q.set[h][strings.ToLower(homeserver)]
	err = s.commitRecords(b)
	if err == nil && was {
		delete(q.set[h], strings.ToLower(homeserver))
		if len(q.set[h]) == 0 {
			delete(q.set, h)
		}
		q.n.Store(int64(len(q.set)))
	}
	q.mu.Unlock()
	if err != nil || !was {
		return 0, err
	}
	return s.countContent(h, func(rec Media) bool {
		return !rec.Protected && covers(rec, homeserver) && !q.blocks(rec)
	})
}

// covers reports whether a content quarantine for homeserver applies to
// rec: the homeserver's own media, or cached remote media.
func covers(rec Media, homeserver string) bool {
	return rec.Remote || strings.EqualFold(rec.MXC.Server(), homeserver)
}

// contentOf is the object of m, which must have content (Stat already
// refuses deleted media).
func (s *Store) contentOf(m matrix.MXC) (cas.Hash, error) {
	rec, err := s.Stat(m)
	if err != nil {
		return cas.Hash{}, err
	}
	if rec.Object.IsZero() {
		return cas.Hash{}, fmt.Errorf("%w: %s has no content", ErrNotFound, m)
	}
	return rec.Object, nil
}

// countContent counts the media records (not deleted) of object h that
// match.
func (s *Store) countContent(h cas.Hash, match func(Media) bool) (int, error) {
	n := 0
	err := s.idx.ScanMedia(func(r index.MediaRecord) error {
		if r.Object != h || r.Deleted {
			return nil
		}
		rec, err := scannedMedia(r)
		if err != nil {
			return err
		}
		if match(rec) {
			n++
		}
		return nil
	})
	return n, err
}

// refuseQuarantined is ErrNotFound when rec is quarantined, by ID or by
// content.
func (s *Store) refuseQuarantined(m matrix.MXC, rec Media) error {
	if rec.Quarantined {
		return fmt.Errorf("%w: %s is quarantined", ErrNotFound, m)
	}
	if s.quarantine.blocks(rec) {
		return fmt.Errorf("%w: %s: its content is quarantined", ErrNotFound, m)
	}
	return nil
}

// quarantinedFetch is the placeholder stored for remote media m whose
// fetch brought content quarantined by admin by: later reads find it and
// are ErrNotFound without fetching again.
func (s *Store) quarantinedFetch(m matrix.MXC, by string) error {
	rec := Media{MXC: m, Remote: true, Created: s.opts.Now().UnixMilli(), Quarantined: true, QuarantinedBy: by}
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.PutMedia(rec.record()); err != nil {
		return err
	}
	return s.commitInvalidating(b, m)
}
