package media

import (
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
	MaxSize      int64
	RequiresAuth bool
}

// Upload streams body into the store and records it as info.MXC. It returns
// only once the chunks, the manifest and the record are durable. On any
// error (a read error, a short or long body, a cancelled ctx) no record is
// written and no chunk is placed; a failure while placing chunks or
// committing the index may leave some, unreferenced, for GC. An invalid
// info.MXC is an error wrapping matrix.ErrInvalid. Two uploads to one ID never both succeed. Identical
// content is stored once, whoever uploads it.
func (s *Store) Upload(ctx context.Context, info UploadInfo, body io.Reader) (Record, error) {
	if _, err := matrix.NewMXC(info.MXC.Server, info.MXC.MediaID); err != nil {
		return Record{}, err
	}
	if !s.claims.try(info.MXC) {
		return Record{}, fmt.Errorf("%w: %s: an upload to it is in progress", ErrExists, info.MXC)
	}
	defer s.claims.release(info.MXC)
	if _, err := s.idx.Media(info.MXC.Server, info.MXC.MediaID); err == nil {
		return Record{}, fmt.Errorf("%w: %s", ErrExists, info.MXC)
	} else if !errors.Is(err, index.ErrNotFound) {
		return Record{}, err
	}
	return s.ingest(ctx, info, body, nil)
}

// ingest stores body and commits its record; pending is the record of a
// created ID being filled, or nil. The caller holds info.MXC's claim.
func (s *Store) ingest(ctx context.Context, info UploadInfo, body io.Reader, pending *Record) (Record, error) {
	if info.MaxSize > 0 && info.Size > info.MaxSize {
		return Record{}, fmt.Errorf("%w: %s: declared %d bytes, limit %d", ErrTooLarge, info.MXC, info.Size, info.MaxSize)
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

	var pinned []cas.Hash
	defer func() { s.pins.unpin(pinned) }()
	pin := func(h cas.Hash) {
		s.pins.pin(h)
		pinned = append(pinned, h)
	}

	ck, err := chunker.New(body, s.params)
	if err != nil {
		return Record{}, err
	}
	defer ck.Release()
	batch := s.cas.NewBatch()
	defer batch.Abort()
	var m index.Manifest
	for {
		data, err := ck.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Record{}, fmt.Errorf("%w: %s: %w", ErrTruncated, info.MXC, err)
		}
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		m.Size += int64(len(data))
		if limit >= 0 && m.Size > limit {
			if info.Size >= 0 && info.Size == limit {
				return Record{}, fmt.Errorf("%w: %s: body longer than the declared %d bytes", ErrTooLarge, info.MXC, info.Size)
			}
			return Record{}, fmt.Errorf("%w: %s: over %d bytes", ErrTooLarge, info.MXC, limit)
		}
		h := cas.Sum(data)
		pin(h)
		if _, err := batch.Put(h, data); err != nil {
			return Record{}, err
		}
		m.Chunks = append(m.Chunks, index.ChunkRef{Hash: h, Len: uint32(len(data))})
	}
	if info.Size >= 0 && m.Size != info.Size {
		return Record{}, fmt.Errorf("%w: %s: got %d of %d bytes", ErrTruncated, info.MXC, m.Size, info.Size)
	}
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	obj := objectHash(m)
	pin(obj)
	known, err := s.idx.HasManifest(obj)
	if err != nil {
		return Record{}, err
	}
	if err := batch.Commit(); err != nil {
		return Record{}, err
	}

	rec := Record{
		Server:       info.MXC.Server,
		MediaID:      info.MXC.MediaID,
		Object:       obj,
		Size:         m.Size,
		ContentType:  info.ContentType,
		UploadName:   info.UploadName,
		Uploader:     info.Uploader,
		Created:      s.opts.Now().UnixMilli(),
		RequiresAuth: info.RequiresAuth,
	}
	b := s.idx.NewBatch()
	defer b.Close()
	if !known {
		if err := b.PutManifest(obj, m); err != nil {
			return Record{}, err
		}
	}
	if err := b.PutMedia(rec); err != nil {
		return Record{}, err
	}
	if rec.Uploader != "" {
		if err := b.PutOwner(rec.Uploader, rec.Server, rec.MediaID); err != nil {
			return Record{}, err
		}
	}
	if pending != nil {
		if err := b.DeletePending(pending.Uploader, rec.Server, rec.MediaID); err != nil {
			return Record{}, err
		}
	}
	if err := b.AddUsage(rec.Uploader, rec.Server, index.Usage{Bytes: rec.Size, Count: 1}); err != nil {
		return Record{}, err
	}
	s.records.invalidate(info.MXC)
	err = b.Commit()
	s.records.invalidate(info.MXC)
	if err != nil {
		return Record{}, err
	}
	if pending != nil {
		s.waiters.wake(info.MXC)
	}
	return rec, nil
}
