package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// ArchiveImportOptions say how ImportArchive treats an archive's media.
type ArchiveImportOptions struct {
	// OnlyEntity, when set, limits the import to that entity's media
	// (Entity.Owns); the rest is counted as Other. It also admits another
	// server's local media of that entity, which is otherwise refused.
	OnlyEntity *Entity
	// Verify changes nothing: it reports, per media, whether the store
	// already holds it byte for byte.
	Verify bool
	// AllowDeleted restores media deleted here under its old ID; without
	// it a tombstone refuses the media.
	AllowDeleted bool
	// Problem receives one report per media not imported (or, verifying,
	// not present) for a reason worth a line; nil drops them. It may be
	// called from several goroutines, never at once.
	Problem func(ArchiveProblem)
}

// ArchiveProblem is one media's problem: its mxc URI and why. ImportDir
// also reports an archive that failed as a whole: Archive names its
// directory, and MXC is empty.
type ArchiveProblem struct {
	MXC     string `json:"mxc,omitempty"`
	Archive string `json:"archive,omitempty"`
	Kind    string `json:"kind"` // "failed", "refused" or "missing"
	Reason  string `json:"reason"`
}

// ArchiveImportReport counts what ImportArchive did with each media the
// manifest lists.
type ArchiveImportReport struct {
	Entity   string `json:"entity"` // the manifest's entity_id
	Imported int    `json:"imported"`
	// Present media was already held with the archive's bytes and was
	// left alone.
	Present int `json:"present"`
	// Other media belongs to another entity than OnlyEntity.
	Other int `json:"other"`
	// Refused media may not be imported here: another server's local
	// media, media deleted or quarantined here, an ID holding other
	// content, content quarantined here.
	Refused int `json:"refused"`
	// Failed media could not be imported: its file does not match the
	// manifest, is missing, or the store refused it.
	Failed int `json:"failed"`
	// Missing (verifying) media is not held byte for byte.
	Missing     int   `json:"missing"`
	BytesRead   int64 `json:"bytes_read"`
	BytesStored int64 `json:"bytes_stored"`
}

// Add adds o's counts to r (the entity is kept).
func (r *ArchiveImportReport) Add(o ArchiveImportReport) {
	r.Imported += o.Imported
	r.Present += o.Present
	r.Other += o.Other
	r.Refused += o.Refused
	r.Failed += o.Failed
	r.Missing += o.Missing
	r.BytesRead += o.BytesRead
	r.BytesStored += o.BytesStored
}

// Problems reports whether anything failed or was refused, or, verifying,
// is missing.
func (r *ArchiveImportReport) Problems() bool { return r.Refused+r.Failed+r.Missing > 0 }

// Bodies up to importBuffered bytes are read whole and stored by up to
// importWorkers goroutines, so their synced commits group; larger ones
// stream in archive order. Memory held for bodies is at most their product.
const (
	importBuffered = 1 << 20
	importWorkers  = 8
)

// ImportArchive imports the archive in fsys (the parts at its root; see
// archive.Open): each media of one of the served homeservers as local
// media, and each of another origin without an uploader as a cached remote
// copy, keeping its ID, name, type, creation time and uploader, stored and
// deduplicated as any upload. Each file is checked against the manifest's
// size and sha256 before its record is committed, so a mismatch stores
// nothing. An ID already held is left alone (present if it holds the
// file's bytes, refused if other ones), so a second run imports nothing and
// a run stopped half-way is finished by the next. Each media listed gets
// one outcome, counted in the report. Problems go
// to opts.Problem; the error is for the archive as a whole (no manifest,
// a damaged part, the context).
func (s *Store) ImportArchive(ctx context.Context, fsys fs.FS, opts ArchiveImportOptions) (ArchiveImportReport, error) {
	ar, err := archive.Open(ctx, fsys)
	if err != nil {
		return ArchiveImportReport{}, err
	}
	im := &archiveImport{s: s, opts: opts}
	im.rep.Entity = ar.Manifest().EntityID
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(importWorkers)
	err = ar.Each(gctx, func(rec archive.Record, body io.Reader) error {
		return im.one(gctx, g, rec, body)
	}, func(rec archive.Record, err error) {
		im.problem(rec.MXC(), "failed", archiveReason(rec, err))
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err == nil {
		err = ctx.Err() // a store abandoned when ctx ended is not counted
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.rep, err
}

// archiveImport is one ImportArchive run.
type archiveImport struct {
	s    *Store
	opts ArchiveImportOptions
	mu   sync.Mutex // guards rep and calls of opts.Problem
	rep  ArchiveImportReport
}

// one decides what becomes of rec, and imports or verifies it. Every
// media gets one outcome: one that stores nothing reads the file to its
// end first, so a file that does not match the manifest is only Each's
// "failed" report.
func (im *archiveImport) one(ctx context.Context, g *errgroup.Group, rec archive.Record, body io.Reader) error {
	m, remote, outcome := im.admit(rec)
	if outcome != nil {
		settle(body, outcome)
		return nil
	}
	held, err := im.s.readMedia(m)
	found := err == nil
	if err != nil && !errors.Is(err, index.ErrNotFound) {
		return err
	}
	if im.opts.Verify {
		im.verify(held, found, rec, body)
		return nil
	}
	switch {
	case !found, held.Pending, held.Deleted && im.opts.AllowDeleted:
	case held.Deleted:
		settle(body, func() { im.problem(rec.MXC(), "refused", "deleted here; -allowDeleted restores it") })
		return nil
	case held.Placeholder():
		settle(body, func() { im.problem(rec.MXC(), "refused", "quarantined here") })
		return nil
	default:
		im.compare(held, rec, body)
		return nil
	}
	info := ImportInfo{
		MXC: m, ContentType: rec.ContentType, UploadName: rec.Name, Uploader: rec.Uploader,
		Created: time.UnixMilli(rec.CreatedTS), Remote: remote, Size: rec.SizeBytes,
		AllowDeleted: im.opts.AllowDeleted,
	}
	if rec.SizeBytes > importBuffered {
		im.store(ctx, info, rec, body)
		return nil
	}
	// One byte more than the manifest's size makes the reader meet the
	// file's end, where it checks size and sha256.
	buf := make([]byte, rec.SizeBytes+1)
	n, err := io.ReadFull(body, buf)
	if (err != io.ErrUnexpectedEOF && err != io.EOF) || int64(n) != rec.SizeBytes {
		return nil // a file that does not match: Each reports it
	}
	g.Go(func() error {
		im.store(ctx, info, rec, bytes.NewReader(buf[:n]))
		return nil
	})
	return nil
}

// settle reads the rest of body, which checks it against the manifest,
// and then runs outcome; a file that does not match is left to Each.
func settle(body io.Reader, outcome func()) {
	if _, err := io.Copy(io.Discard, body); err == nil {
		outcome()
	}
}

// compare counts rec, whose ID held has content, as present when held has
// the archive's bytes, else refuses it: an import never replaces content.
func (im *archiveImport) compare(held Media, rec archive.Record, body io.Reader) {
	obj, err := im.s.objectOf(body)
	switch {
	case err != nil: // a file that does not match: Each reports it
	case obj != held.Object:
		im.problem(rec.MXC(), "refused", fmt.Sprintf("already holds other content (%d bytes, the archive's has %d)", held.Size, rec.SizeBytes))
	default:
		im.count(func(r *ArchiveImportReport) { r.Present++ })
	}
}

// objectOf names the object body would be stored as (see writeObject),
// chunking and hashing it without writing anything. Only one chunk is in
// memory at a time.
func (s *Store) objectOf(body io.Reader) (cas.Hash, error) {
	ck, err := chunker.New(body, s.params)
	if err != nil {
		return cas.Hash{}, err
	}
	defer ck.Release()
	var m index.Manifest
	for {
		data, err := ck.Next()
		if err == io.EOF {
			return objectHash(m), nil
		}
		if err != nil {
			return cas.Hash{}, err
		}
		m.Size += int64(len(data))
		m.Chunks = append(m.Chunks, index.ChunkRef{Hash: cas.Sum(data), Len: uint32(len(data))})
	}
}

// admit returns rec's mxc URI and whether it is stored as remote media,
// or, if it is not to be imported, the outcome to count (and report when
// worth it) once its file is read.
func (im *archiveImport) admit(rec archive.Record) (matrix.MXC, bool, func()) {
	m, err := matrix.NewMXC(rec.Origin, rec.MediaID)
	if err != nil {
		return m, false, func() { im.problem(rec.MXC(), "failed", err.Error()) }
	}
	only := im.opts.OnlyEntity
	if only != nil && !only.Owns(rec.Origin, rec.Uploader) {
		return m, false, func() { im.count(func(r *ArchiveImportReport) { r.Other++ }) }
	}
	local := im.s.local(rec.Origin)
	if !local && rec.Uploader != "" && only == nil {
		return m, false, func() {
			im.problem(rec.MXC(), "refused", fmt.Sprintf("another server's local media (uploaded by %s); -onlyEntity naming it imports it as a cached copy", rec.Uploader))
		}
	}
	if local && rec.Uploader != "" && !uploaderOf(rec.Uploader, rec.Origin) {
		// matrix-media-repo's importer skips these too: a homeserver's
		// local media is uploaded by its own users.
		return m, false, func() {
			im.problem(rec.MXC(), "refused", fmt.Sprintf("local media of %s uploaded by %s, a user of another server", rec.Origin, rec.Uploader))
		}
	}
	return m, !local, nil
}

// uploaderOf reports whether user ID user belongs to server (compared
// without regard to case).
func uploaderOf(user, server string) bool {
	_, s, ok := strings.Cut(user, ":")
	return ok && strings.EqualFold(s, server)
}

// store imports one body, counting the outcome.
func (im *archiveImport) store(ctx context.Context, info ImportInfo, rec archive.Record, body io.Reader) {
	res, err := im.s.Import(ctx, info, body)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if _, derr := io.Copy(io.Discard, body); derr != nil && !errors.Is(derr, ErrTooLarge) {
			return // the file does not match the manifest: Each reports it
		}
		switch {
		case errors.Is(err, archive.ErrCorrupt) || errors.Is(err, archive.ErrSizeMismatch):
		case errors.Is(err, ErrQuarantinedContent):
			im.problem(rec.MXC(), "refused", "its content is quarantined here")
		default:
			im.problem(rec.MXC(), "failed", err.Error())
		}
		return
	}
	im.count(func(r *ArchiveImportReport) {
		r.BytesRead += rec.SizeBytes
		if !res.Imported {
			r.Present++
			return
		}
		r.Imported++
		r.BytesStored += res.Stored
	})
}

// verify reports whether the store holds rec's media (held, if found)
// with the bytes of the archive's file, and reads it back to check its
// chunks. It writes nothing.
func (im *archiveImport) verify(held Media, found bool, rec archive.Record, body io.Reader) {
	obj, err := im.s.objectOf(body)
	switch {
	case err != nil:
		return // a file that does not match: Each reports it
	case !found || held.Deleted:
		im.problem(rec.MXC(), "missing", "not held here")
		return
	case held.Object.IsZero():
		im.problem(rec.MXC(), "missing", "held without content (pending or quarantined)")
		return
	case held.Object != obj:
		im.problem(rec.MXC(), "missing", fmt.Sprintf("held with other content (%d bytes, the archive's has %d)", held.Size, rec.SizeBytes))
		return
	}
	r, err := im.s.OpenMedia(held)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
		r.Close()
	}
	if err != nil {
		im.problem(rec.MXC(), "missing", "held but unreadable: "+err.Error())
		return
	}
	im.count(func(r *ArchiveImportReport) {
		r.Present++
		r.BytesRead += rec.SizeBytes
	})
}

// problem counts and reports one media's problem of kind.
func (im *archiveImport) problem(mxc, kind, reason string) {
	im.mu.Lock()
	defer im.mu.Unlock()
	switch kind {
	case "refused":
		im.rep.Refused++
	case "missing":
		im.rep.Missing++
	default:
		im.rep.Failed++
	}
	if im.opts.Problem != nil {
		im.opts.Problem(ArchiveProblem{MXC: mxc, Kind: kind, Reason: reason})
	}
}

func (im *archiveImport) count(fn func(*ArchiveImportReport)) {
	im.mu.Lock()
	fn(&im.rep)
	im.mu.Unlock()
}

// archiveReason words an archive reader's per-media error.
func archiveReason(rec archive.Record, err error) string {
	switch {
	case errors.Is(err, archive.ErrCorrupt):
		return "file does not match the manifest's sha256; skipped"
	case errors.Is(err, archive.ErrSizeMismatch):
		return "file does not have the manifest's size: " + err.Error()
	case errors.Is(err, archive.ErrMissing) && rec.S3URL != "":
		return "no file for it in the archive (its s3_url is not fetched)"
	case errors.Is(err, archive.ErrMissing):
		return "no file for it in the archive"
	}
	return err.Error()
}
