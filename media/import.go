package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// ImportInfo describes media brought in from another store (Synapse), with
// its identity and history kept.
type ImportInfo struct {
	MXC         matrix.MXC
	ContentType string
	UploadName  string
	Uploader    string
	Created     time.Time
	Quarantined bool
	// QuarantinedBy is the admin who quarantined it, when known; kept
	// only with Quarantined.
	QuarantinedBy string
	// Protected media is exempt from the bulk quarantines (see
	// Media.Protected).
	Protected bool
	// LastAccess is when it was last read; zero: never (or not known).
	LastAccess time.Time
	// Remote marks a cached copy of another server's media.
	Remote bool
	// Size is the declared length (-1: unknown).
	Size int64
	// AllowDeleted imports over a tombstone: media deleted here comes back
	// under its old ID. Without it a deleted ID is left alone.
	AllowDeleted bool
}

// ImportResult says what Import did.
type ImportResult struct {
	Record   Media
	Imported bool  // false: the ID already had content; body was not read
	Stored   int64 // bytes of new chunks written
}

// Import stores body as info.MXC unless that ID already has content or was
// deleted here (a tombstone: deleted media is not brought back), in which
// case (unless info.AllowDeleted restores deleted media) it reads nothing
// and reports Imported false: running an import
// again, or after a crash, finishes the job without duplicating anything.
// An ID created here and never filled (pending) is filled, as Fill would,
// so it no longer counts against its creator's created IDs.
// Imported media predates the freeze: it is not marked as requiring
// authentication; it keeps the admin state given in info (quarantine and
// who set it, protection, last access). Same durability and dedup as
// Upload.
func (s *Store) Import(ctx context.Context, info ImportInfo, body io.Reader) (ImportResult, error) {
	if !s.claims.try(info.MXC) {
		return ImportResult{}, fmt.Errorf("%w: %s: an upload to it is in progress", ErrExists, info.MXC)
	}
	defer s.claims.release(info.MXC)
	held, err := s.readMedia(info.MXC)
	var pending *Media // a created ID the import fills: its pending entry goes
	switch {
	case err == nil && held.Pending:
		pending = &held
	case err == nil && !(held.Deleted && info.AllowDeleted):
		return ImportResult{Record: held}, nil
	case err != nil && !errors.Is(err, index.ErrNotFound):
		return ImportResult{}, err
	}
	rec := Media{
		MXC:         info.MXC,
		ContentType: info.ContentType,
		UploadName:  info.UploadName,
		Uploader:    info.Uploader,
		Created:     info.Created.UnixMilli(),
		Quarantined: info.Quarantined,
		Remote:      info.Remote,
		Protected:   info.Protected,
		LastAccess:  unixMilliOrZero(info.LastAccess),
	}
	if info.Quarantined {
		rec.QuarantinedBy = info.QuarantinedBy
	}
	rec, stored, err := s.ingest(ctx, UploadInfo{MXC: info.MXC, Size: info.Size}, body, rec, pending)
	if err != nil {
		return ImportResult{}, err
	}
	return ImportResult{Record: rec, Imported: true, Stored: stored}, nil
}

// unixMilliOrZero is t in Unix milliseconds, 0 for the zero time.
func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
