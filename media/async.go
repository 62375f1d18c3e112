package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// CreateInfo describes a media ID created ahead of its content
// (POST /_matrix/media/v1/create).
type CreateInfo struct {
	MXC      matrix.MXC
	Uploader string
}

// Create records a pending media ID, lapsing after
// Options.UnusedExpires (the returned record's Expires). Over the user's
// Options.MaxPendingPerUser, or the max_pending of the first quota naming
// the user when it sets one, it is ErrPendingLimit; an ID that exists is
// ErrExists.
func (s *Store) Create(info CreateInfo) (Media, error) {
	if !s.claims.try(info.MXC) {
		return Media{}, fmt.Errorf("%w: %s", ErrExists, info.MXC)
	}
	defer s.claims.release(info.MXC)
	s.pendingMu.Lock() // count and add as one step per store
	defer s.pendingMu.Unlock()
	if maxPending, _ := s.pendingCap(info.Uploader); maxPending > 0 && s.idx.Shared() {
		// ... and across the nodes sharing the index.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		unlock, err := s.idx.Lock(ctx, "mxcas-pending/"+info.Uploader)
		if err != nil {
			return Media{}, fmt.Errorf("media: create: %w", err)
		}
		defer unlock()
	}
	now := s.opts.Now()
	if maxPending, what := s.pendingCap(info.Uploader); maxPending > 0 {
		n, err := s.idx.CountPending(info.Uploader, now.UnixMilli())
		if err != nil {
			return Media{}, err
		}
		if n >= maxPending {
			return Media{}, fmt.Errorf("%w: %s has %d (%s %d)", ErrPendingLimit, info.Uploader, n, what, maxPending)
		}
	}
	if _, err := s.readMedia(info.MXC); err == nil {
		return Media{}, fmt.Errorf("%w: %s", ErrExists, info.MXC)
	}
	rec := Media{
		MXC:          info.MXC,
		Uploader:     info.Uploader,
		Created:      now.UnixMilli(),
		Pending:      true,
		Expires:      now.Add(s.opts.UnusedExpires).UnixMilli(),
		RequiresAuth: s.opts.FreezeUnauthenticated,
	}
	b := s.idx.NewBatch()
	defer b.Close()
	if err := b.InsertMedia(rec.record()); err != nil {
		return Media{}, err
	}
	if err := b.PutPending(rec.Uploader, rec.MXC.Server(), rec.MXC.MediaID(), rec.Expires); err != nil {
		return Media{}, err
	}
	s.records.invalidate(info.MXC)
	err := s.commitRecords(b)
	s.records.invalidate(info.MXC)
	if errors.Is(err, index.ErrConflict) {
		return Media{}, fmt.Errorf("%w: %s", ErrExists, info.MXC)
	}
	if err != nil {
		return Media{}, err
	}
	return rec, nil
}

// expired reports whether a pending record has lapsed.
func (s *Store) expired(rec Media) bool {
	return rec.Pending && rec.Expires > 0 && s.opts.Now().UnixMilli() >= rec.Expires
}

// Fill uploads the content of a created ID (PUT /_matrix/media/v3/upload/
// {server}/{id}), checking in the spec's order: the ID is known and not
// expired (else ErrNotFound), user created it (else ErrForbidden), it has
// no content yet (else ErrExists); only then is body read. Downloads
// waiting on the ID are woken when it commits.
func (s *Store) Fill(ctx context.Context, info UploadInfo, user string, body io.Reader) (Media, error) {
	rec, err := s.Stat(info.MXC)
	if err != nil {
		return Media{}, err
	}
	if s.expired(rec) {
		return Media{}, fmt.Errorf("%w: %s expired", ErrNotFound, info.MXC)
	}
	if rec.Uploader != user {
		return Media{}, fmt.Errorf("%w: %s was created by another user", ErrForbidden, info.MXC)
	}
	if !rec.Pending {
		return Media{}, fmt.Errorf("%w: %s", ErrExists, info.MXC)
	}
	if !s.claims.try(info.MXC) {
		return Media{}, fmt.Errorf("%w: %s: an upload to it is in progress", ErrExists, info.MXC)
	}
	defer s.claims.release(info.MXC)
	// Again under the claim: another Fill may have finished meanwhile.
	if rec, err = s.Stat(info.MXC); err != nil {
		return Media{}, err
	}
	if !rec.Pending {
		return Media{}, fmt.Errorf("%w: %s", ErrExists, info.MXC)
	}
	info.Uploader = rec.Uploader
	filled := s.newRecord(info)
	filled.RequiresAuth = rec.RequiresAuth // as the freeze was when the ID was created
	filled, _, err = s.ingest(ctx, info, body, filled, &rec)
	s.stats.uploaded(filled, err)
	return filled, err
}

// Wait returns the record of m once it has content: at once when it has,
// else when Fill commits it, or ErrNotYetUploaded when ctx ends first. An
// unknown or expired ID is ErrNotFound. No polling: Fill wakes the waiters.
func (s *Store) Wait(ctx context.Context, m matrix.MXC) (Media, error) {
	for {
		e := s.waiters.register(m)
		rec, err := s.Stat(m)
		if err != nil || !rec.Pending {
			s.waiters.unregister(m, e)
			return rec, err
		}
		if s.expired(rec) {
			s.waiters.unregister(m, e)
			return rec, fmt.Errorf("%w: %s expired", ErrNotFound, m)
		}
		s.stats.waiting.Add(1)
		select {
		case <-e.ch:
			s.stats.waiting.Add(-1)
			s.waiters.unregister(m, e)
		case <-ctx.Done():
			s.stats.waiting.Add(-1)
			s.waiters.unregister(m, e)
			if errors.Is(ctx.Err(), context.Canceled) {
				return rec, ctx.Err()
			}
			return rec, fmt.Errorf("%w: %s", ErrNotYetUploaded, m)
		}
	}
}

// waiters maps a pending ID to a channel closed when its content lands.
type waiters struct {
	mu sync.Mutex
	m  map[matrix.MXC]*waitEntry
}

type waitEntry struct {
	ch chan struct{}
	n  int
}

func (w *waiters) register(m matrix.MXC) *waitEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[matrix.MXC]*waitEntry)
	}
	e := w.m[m]
	if e == nil {
		e = &waitEntry{ch: make(chan struct{})}
		w.m[m] = e
	}
	e.n++
	return e
}

func (w *waiters) unregister(m matrix.MXC, e *waitEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.n--; e.n <= 0 && w.m[m] == e {
		delete(w.m, m)
	}
}

// wakeAll wakes every waiter: they look at their records again.
func (w *waiters) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for m, e := range w.m {
		close(e.ch)
		delete(w.m, m)
	}
}

func (w *waiters) wake(m matrix.MXC) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.m[m]; e != nil {
		close(e.ch)
		delete(w.m, m)
	}
}
