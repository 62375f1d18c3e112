package media

import (
	"fmt"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// Media is what the store knows of one media ID. Times are Unix
// milliseconds.
type Media struct {
	MXC         matrix.MXC
	Object      cas.Hash // the content; zero while pending
	Size        int64
	ContentType string
	UploadName  string
	Uploader    string // user ID; empty for none
	Created     int64
	// Quarantined media is refused to every reader.
	Quarantined bool
	// RequiresAuth: stored while the legacy unauthenticated paths were
	// frozen, so those paths refuse it.
	RequiresAuth bool
	// Remote: a cached copy of another server's media.
	Remote bool
	// Pending: created, its content not yet uploaded; it lapses at Expires.
	Pending bool
	Expires int64
	// QuarantinedBy is the admin who quarantined it, when known.
	QuarantinedBy string
	// Protected media is never quarantined by the bulk calls (a user's
	// media, content).
	Protected bool
	// Deleted: a tombstone. Deleted media is never served, and its ID is
	// never given out again.
	Deleted bool
	// LastAccess is when it was last read (Unix ms; 0: never), updated at
	// most once an hour so reads do not become writes.
	LastAccess int64
	// stored is the record as the index held it when read (shared index
	// only): what a write-back expects to find (expectRecord).
	stored string
}

// Thumbnail describes a stored thumbnail.
type Thumbnail struct {
	Object        cas.Hash
	Size          int64
	ContentType   string
	Width, Height int
}

// This file is the one place where media's types and the index's records
// meet: everything else in the package works with Media and Thumbnail.

// mediaOf is the Media of r, stored under m.
func mediaOf(m matrix.MXC, r index.MediaRecord) Media {
	return Media{
		MXC: m, Object: r.Object, Size: r.Size, ContentType: r.ContentType, UploadName: r.UploadName,
		Uploader: r.Uploader, Created: r.Created, Quarantined: r.Quarantined, RequiresAuth: r.RequiresAuth,
		Remote: r.Remote, Pending: r.Pending, Expires: r.Expires, QuarantinedBy: r.QuarantinedBy,
		Protected: r.Protected, Deleted: r.Deleted, LastAccess: r.LastAccess,
	}
}

// scannedMedia is the Media of a record met by a scan of the index, whose
// key gave its server name and media ID. A key that is not a valid MXC
// (this package never writes one) is an error wrapping
// index.ErrCorruptRecord.
func scannedMedia(r index.MediaRecord) (Media, error) {
	m, err := matrix.NewMXC(r.Server, r.MediaID)
	if err != nil {
		return Media{}, fmt.Errorf("%w: key m/%s/%s: %w", index.ErrCorruptRecord, r.Server, r.MediaID, err)
	}
	return mediaOf(m, r), nil
}

// record is the index's record of rec.
func (rec Media) record() index.MediaRecord {
	return index.MediaRecord{
		Server: rec.MXC.Server(), MediaID: rec.MXC.MediaID(), Object: rec.Object, Size: rec.Size,
		ContentType: rec.ContentType, UploadName: rec.UploadName, Uploader: rec.Uploader, Created: rec.Created,
		Quarantined: rec.Quarantined, RequiresAuth: rec.RequiresAuth, Remote: rec.Remote, Pending: rec.Pending,
		Expires: rec.Expires, QuarantinedBy: rec.QuarantinedBy, Protected: rec.Protected, Deleted: rec.Deleted,
		LastAccess: rec.LastAccess,
	}
}

// readMedia reads m's record from the index; not found is
// index.ErrNotFound.
func (s *Store) readMedia(m matrix.MXC) (Media, error) {
	if s.idx.Shared() {
		rec, stored, err := s.idx.MediaStored(m.Server(), m.MediaID())
		if err != nil {
			return Media{}, err
		}
		r := mediaOf(m, rec)
		r.stored = string(stored)
		return r, nil
	}
	rec, err := s.idx.Media(m.Server(), m.MediaID())
	if err != nil {
		return Media{}, err
	}
	return mediaOf(m, rec), nil
}

// expectRecord makes b's commit fail with index.ErrConflict unless rec,
// read from a shared index, is still stored as it was read (another node
// may have changed it); with Pebble it does nothing (claims do it).
func (s *Store) expectRecord(b *index.Batch, rec Media) error {
	if !s.idx.Shared() {
		return nil
	}
	return b.ExpectMedia(rec.MXC.Server(), rec.MXC.MediaID(), []byte(rec.stored))
}

// readThumbnail reads the thumbnail spec of the source object src from the
// index; not found is index.ErrNotFound.
func (s *Store) readThumbnail(src cas.Hash, spec string) (Thumbnail, error) {
	r, err := s.idx.Thumbnail(src, spec)
	if err != nil {
		return Thumbnail{}, err
	}
	return Thumbnail{Object: r.Object, Size: r.Size, ContentType: r.ContentType, Width: r.Width, Height: r.Height}, nil
}

// record is the index's record of t.
func (t Thumbnail) record() index.ThumbRecord {
	return index.ThumbRecord{Object: t.Object, Size: t.Size, ContentType: t.ContentType, Width: t.Width, Height: t.Height}
}
