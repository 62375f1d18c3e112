package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// UploadInfo describes an upload.
type UploadInfo struct {
	// MXC is the ID to store under; it must not have content yet.
	MXC         matrix.MXC
	ContentType string
	UploadName  string
	Uploader    string // user ID; empty for none
	// Size is the declared length, or -1 when unknown (chunked). A body that
	// ends early is ErrTruncated; one that goes on is ErrTooLarge.
	Size int64
	// MaxSize, when positive, caps the body: more is ErrTooLarge.
	MaxSize int64
	// NewID: MXC's media ID was just drawn at random (matrix.NewMediaID),
	// so Upload does not look for a record under it before reading the
	// body; the commit still refuses one (ErrExists). Saves a lookup of
	// an absent key per upload.
	NewID bool
	// fresh: the ID must have no record (Upload); the commit fails with
	// ErrExists if another upload (on any node) recorded it first.
	fresh bool
}

// Upload streams body into the store and records it as info.MXC. It returns
// only once the chunks, the manifest and the record are durable. On any
// error (a read error, a short or long body, a cancelled ctx) no record is
// written and no chunk is placed; a failure while placing chunks or
// committing the index may leave some, unreferenced, for GC. Two uploads
// to one ID never both succeed. Identical
// content is stored once, whoever uploads it. An upload that would take
// info.Uploader past the first quota naming them is a *QuotaError
// (ErrQuotaExceeded): before the body is read when the declared size is
// over what is left, else when the body passes it.
func (s *Store) Upload(ctx context.Context, info UploadInfo, body io.Reader) (Media, error) {
	if !s.claims.try(info.MXC) {
		return Media{}, fmt.Errorf("%w: %s: an upload to it is in progress", ErrExists, info.MXC)
	}
	defer s.claims.release(info.MXC)
	if !info.NewID {
		if _, err := s.readMedia(info.MXC); err == nil {
			return Media{}, fmt.Errorf("%w: %s", ErrExists, info.MXC)
		} else if !errors.Is(err, index.ErrNotFound) {
			return Media{}, err
		}
	}
	info.fresh = true
	rec, _, err := s.ingest(ctx, info, body, s.newRecord(info), nil)
	s.stats.uploaded(rec, err)
	return rec, err
}

// newRecord is the record of an upload before its content is known;
// media stored under Options.FreezeUnauthenticated requires auth.
func (s *Store) newRecord(info UploadInfo) Media {
	return Media{
		MXC:          info.MXC,
		ContentType:  info.ContentType,
		UploadName:   info.UploadName,
		Uploader:     info.Uploader,
		Created:      s.opts.Now().UnixMilli(),
		RequiresAuth: s.opts.FreezeUnauthenticated,
	}
}

// ingest stores body (limited by info.Size and info.MaxSize) and commits
// rec, its object and size filled in; pending is the record of a created
// ID being filled, or nil. It returns the record and the bytes of new
// chunks written. The caller holds info.MXC's claim.
func (s *Store) ingest(ctx context.Context, info UploadInfo, body io.Reader, rec Media, pending *Media) (Media, int64, error) {
	if info.MaxSize > 0 && info.Size > info.MaxSize {
		return Media{}, 0, fmt.Errorf("%w: %s: declared %d bytes, limit %d", ErrTooLarge, info.MXC, info.Size, info.MaxSize)
	}
	limit := int64(-1)
	if info.MaxSize > 0 {
		limit = info.MaxSize
	}
	if info.Size >= 0 && (limit < 0 || info.Size < limit) {
		limit = info.Size
	}
	if limit >= 0 {
		// One byte more than allowed tells a long body from an exact one.
		body = io.LimitReader(body, limit+1)
	}

	// The uploader's quota: a declared size over it fails here, before a
	// byte of the body is read; an undeclared one is cut where it passes.
	hold, err := s.reserveQuota(info.Uploader, info.Size)
	if err != nil {
		return Media{}, 0, err
	}
	defer hold.release() // when the upload fails before its commit
	body = hold.reader(body)

	if err := s.space.reserve(0); err != nil {
		return Media{}, 0, err // before reading a byte of the body
	}
	pins := s.newPinSet()
	defer pins.release()
	obj, m, known, err := s.writeObject(ctx, body, info.Size, limit, info.MXC.String(), pins)
	if err != nil {
		return Media{}, 0, err
	}

	rec.Object, rec.Size = obj, m.Size
	err = s.quarantine.commitUnless(obj, rec.MXC.Server(), rec.Remote, func() error {
		return hold.commit(func() error { return s.commitRecord(rec, m, known, pending, info.fresh, pins) })
	}, nil)
	if err != nil {
		return Media{}, 0, err
	}
	if pending != nil {
		s.waiters.wake(info.MXC)
	}
	s.enqueueThumbnails(rec)
	return rec, pins.stored, nil
}

// commitRecord writes a new media record with content in one synced
// batch: the object's manifest unless known, the record, its ownership
// (local media), the end of its pending state, and usage.
//
// fresh inserts the record on condition that none exists, and a pending
// entry is taken on condition that it is still there (shared index): of two
// uploads racing for one ID on two nodes, the second is ErrExists.
//
// pins are the write's (what it found stored and stored itself, for a
// shared index's guard against another node's GC).
func (s *Store) commitRecord(rec Media, m index.Manifest, known bool, pending *Media, fresh bool, pins *pinSet) error {
	b := s.idx.NewBatch()
	defer b.Close()
	// With a shared index a known manifest is written again: another
	// node's GC may be removing it (pins are per process).
	if !known || s.idx.Shared() {
		if err := s.putManifest(b, rec.Object, m, known); err != nil {
			return err
		}
	}
	b.GuardObject(rec.Object, pins.found, pins.own)
	put := b.PutMedia
	if fresh {
		put = b.InsertMedia
	}
	if err := put(rec.record()); err != nil {
		return err
	}
	if rec.Uploader != "" && !rec.Remote {
		if err := b.PutOwner(rec.Uploader, rec.MXC.Server(), rec.MXC.MediaID()); err != nil {
			return err
		}
	}
	if pending != nil {
		take := b.DeletePending
		if s.idx.Shared() {
			take = b.FillPending
		}
		if err := take(pending.Uploader, rec.MXC.Server(), rec.MXC.MediaID()); err != nil {
			return err
		}
	}
	delta := index.Usage{Bytes: rec.Size, Count: 1}
	if err := b.AddUsage(rec.Uploader, rec.MXC.Server(), delta); err != nil {
		return err
	}
	err := condemned(s.commitInvalidating(b, rec.MXC))
	if errors.Is(err, index.ErrConflict) {
		return fmt.Errorf("%w: %s: another upload recorded it first", ErrExists, rec.MXC)
	}
	if err == nil {
		s.stats.recordsChanged(delta)
		s.manifestCommitted(m, known)
	}
	return err
}

// manifestCommitted counts the inline chunk of m, a manifest writeObject
// made, in the stored bytes once it is committed, unless known (the index
// had it already): a write refused at its commit (quarantined content,
// another node's GC) stores nothing.
func (s *Store) manifestCommitted(m index.Manifest, known bool) {
	if !known {
		s.stats.chunksChanged(0, int64(len(m.Tail)))
	}
}

// putManifest adds to b the manifest m of object h, which writeObject
// made; known: the index holds one already (a shared index writes it
// again), and then it is written as the index holds it. Nodes of different
// layouts make the same object's manifest with its last chunk inline or
// as a file, and a node that read the index's (it keeps manifests cached)
// reads its chunks as that one says: GC must keep them.
func (s *Store) putManifest(b *index.Batch, h cas.Hash, m index.Manifest, known bool) error {
	if known {
		held, err := s.idx.Manifest(h)
		if err == nil {
			if _, inline := held.InlineRef(); inline {
				held.Tail, err = s.idx.InlineChunk(h)
			}
		}
		switch {
		case err == nil:
			m = held
		case !errors.Is(err, index.ErrNotFound):
			return err
		}
		// Gone meanwhile (another node's GC): ours, which GuardObject
		// checks.
	}
	return b.PutManifest(h, m)
}

// commitRecords commits a batch of new records: refused with ErrNoSpace
// while the disk is under the free-space threshold, and a full disk met
// by the commit itself is ErrNoSpace too.
func (s *Store) commitRecords(b *index.Batch) error {
	if err := s.space.reserve(recordBytes); err != nil {
		return err
	}
	return noSpace(b.Commit())
}

// recordBytes is what one batch of records is counted as against the free
// space threshold.
const recordBytes = 4 << 10

// pinSet is the hashes one write has pinned against GC.
type pinSet struct {
	s  *Store
	hs []cas.Hash
	// stored counts the bytes of chunks this write added to the store.
	stored int64
	// found and own are the chunks this write found already stored and
	// those it stored itself (for index.Batch.GuardObject).
	found, own []cas.Hash
}

func (s *Store) newPinSet() *pinSet { return &pinSet{s: s} }

func (p *pinSet) pin(h cas.Hash) {
	p.s.pins.pin(h)
	p.hs = append(p.hs, h)
}

// release unpins everything; call it after the records that refer to the
// hashes are committed (or given up).
func (p *pinSet) release() { p.s.pins.unpin(p.hs); p.hs = nil }

// writeObject streams body into chunk files and returns the object's name
// and manifest, with its chunks durable: all but an inline last chunk
// (Store.inlineMax), whose bytes the manifest carries (Tail) to the
// index. known says whether the index
// already has the manifest; if not, the caller commits it with the record
// that refers to it, before releasing pins. declared is the body's
// declared length (-1: unknown); limit the most it may hold (-1: no
// limit); body must already be cut at limit+1. what names the upload in
// errors.
func (s *Store) writeObject(ctx context.Context, body io.Reader, declared, limit int64, what string, pins *pinSet) (cas.Hash, index.Manifest, bool, error) {
	var m index.Manifest
	if s.opts.ReadOnly { // a small object would reach the index first
		return cas.Hash{}, m, false, cas.ErrReadOnly
	}
	ck, err := chunker.New(body, s.params)
	if err != nil {
		return cas.Hash{}, m, false, err
	}
	defer ck.Release()
	batch := s.cas.BeginBatch()
	defer batch.Abort()
	var added, addedBytes int64 // new chunk files, counted once committed
	// A chunk small enough to be inline waits for the next: when there is
	// none, it is the object's last and goes in the index (m.Tail);
	// otherwise it is stored as a file after all. So at most one chunk's
	// bytes are held, whatever the upload.
	var held []byte
	put := func(h cas.Hash, data []byte) error {
		isNew, err := batch.Put(h, data)
		if err != nil {
			return noSpace(err)
		}
		if isNew {
			pins.own = append(pins.own, h)
			pins.stored += int64(len(data))
			added++
			addedBytes += int64(len(data))
		} else {
			pins.found = append(pins.found, h)
		}
		return nil
	}
	for {
		data, err := ck.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cas.Hash{}, m, false, fmt.Errorf("%w: %s: %w", ErrTruncated, what, err)
		}
		if err := ctx.Err(); err != nil {
			return cas.Hash{}, m, false, err
		}
		m.Size += int64(len(data))
		if limit >= 0 && m.Size > limit {
			if declared >= 0 && declared == limit {
				return cas.Hash{}, m, false, fmt.Errorf("%w: %s: body longer than the declared %d bytes", ErrTooLarge, what, declared)
			}
			return cas.Hash{}, m, false, fmt.Errorf("%w: %s: over %d bytes", ErrTooLarge, what, limit)
		}
		if err := s.space.reserve(s.chunkBytesHere(int64(len(data)))); err != nil {
			return cas.Hash{}, m, false, err
		}
		if held != nil { // not the last chunk after all
			last := &m.Chunks[len(m.Chunks)-1]
			last.Inline = false
			if err := put(last.Hash, held); err != nil {
				return cas.Hash{}, m, false, err
			}
			held = nil
		}
		h := cas.Sum(data)
		pins.pin(h)
		if len(data) <= s.inlineMax {
			held = bytes.Clone(data)
			m.Chunks = append(m.Chunks, index.ChunkRef{Hash: h, Len: uint32(len(data)), Inline: true})
			continue
		}
		if err := put(h, data); err != nil {
			return cas.Hash{}, m, false, err
		}
		m.Chunks = append(m.Chunks, index.ChunkRef{Hash: h, Len: uint32(len(data))})
	}
	m.Tail = held
	if declared >= 0 && m.Size != declared {
		return cas.Hash{}, m, false, fmt.Errorf("%w: %s: got %d of %d bytes", ErrTruncated, what, m.Size, declared)
	}
	if err := ctx.Err(); err != nil {
		return cas.Hash{}, m, false, err
	}
	obj := objectHash(m)
	pins.pin(obj)
	known, err := s.idx.HasManifest(obj)
	if err != nil {
		return cas.Hash{}, m, false, err
	}
	if err := batch.Commit(); err != nil {
		return cas.Hash{}, m, false, noSpace(err)
	}
	s.stats.chunksChanged(added, addedBytes) // m.Tail: once its manifest is committed (manifestCommitted)
	return obj, m, known, nil
}
