package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// ErrInvalidEntity means an export or import entity is neither a user ID
// (@localpart:server) nor a server name.
var ErrInvalidEntity = errors.New("media: entity must be a user ID (@user:server) or a server name")

// Entity is whom an export is for: a user (every media they uploaded) or
// a server (every media of that origin held here, local or cached remote).
type Entity struct {
	User   string // "@localpart:server", or empty for a server
	Server string // the user's server, or the server itself
}

// ParseEntity reads a user ID or a server name.
func ParseEntity(s string) (Entity, error) {
	if strings.HasPrefix(s, "@") {
		local, server, ok := strings.Cut(s[1:], ":")
		if !ok || local == "" || matrix.ValidateServerName(server) != nil || strings.ContainsAny(local, ":/ \t\r\n") {
			return Entity{}, fmt.Errorf("%w: %q", ErrInvalidEntity, s)
		}
		return Entity{User: s, Server: server}, nil
	}
	if matrix.ValidateServerName(s) != nil {
		return Entity{}, fmt.Errorf("%w: %q", ErrInvalidEntity, s)
	}
	return Entity{Server: s}, nil
}

// String is the entity as given: the user ID or the server name.
func (e Entity) String() string {
	if e.User != "" {
		return e.User
	}
	return e.Server
}

// Owns reports whether the entity covers a media of origin uploaded by
// uploader: the user's own uploads, or everything of the server's origin.
// Server names compare without regard to case.
func (e Entity) Owns(origin, uploader string) bool {
	if e.User != "" {
		return uploader == e.User
	}
	return strings.EqualFold(origin, e.Server)
}

// ExportOptions say what Export writes and where.
type ExportOptions struct {
	Entity Entity
	// PartSize is the uncompressed media bytes per part (0: archive's
	// default, 100 MiB).
	PartSize int64
	// Create opens each part by name; Export closes what it returns.
	Create archive.CreateFunc
}

// ExportReport says what Export wrote.
type ExportReport struct {
	Entity string `json:"entity"`
	Media  int    `json:"media"`
	Bytes  int64  `json:"bytes"`
	// Parts are the files written, in order; export-manifest.tgz last.
	Parts []string `json:"parts"`
	// Quarantined counts the entity's media held but not exported because
	// it is quarantined (by ID or by content).
	Quarantined int `json:"quarantined"`
}

// Export writes the entity's media as an archive (matrix-media-repo's v2
// format): every media it owns with content, neither deleted, pending nor
// quarantined, in media ID order within each origin, its bytes verified
// against their hashes as any read. Only the list of records is held in
// memory; bodies stream from chunk files into the parts. A chunk that
// cannot be read fails the export (fsck says what is damaged) rather than
// leaving a media out unnoticed; the parts written until then are
// incomplete and carry no manifest.
func (s *Store) Export(ctx context.Context, opts ExportOptions) (ExportReport, error) {
	rep := ExportReport{Entity: opts.Entity.String(), Parts: []string{}}
	list, err := s.exportList(ctx, opts.Entity, &rep)
	if err != nil {
		return rep, err
	}
	create := opts.Create
	w, err := archive.NewWriter(archive.Options{
		EntityID: opts.Entity.String(),
		PartSize: opts.PartSize,
		Now:      s.opts.Now,
		Create: func(name string) (io.WriteCloser, error) {
			wc, err := create(name)
			if err == nil {
				rep.Parts = append(rep.Parts, name)
			}
			return wc, err
		},
	})
	if err != nil {
		return rep, err
	}
	for _, rec := range list {
		if err := s.exportOne(ctx, w, rec); err != nil {
			_ = w.Close() // already failed: Close only releases the part
			return rep, err
		}
		rep.Media++
		rep.Bytes += rec.Size
	}
	return rep, w.Close()
}

func (s *Store) exportOne(ctx context.Context, w *archive.Writer, rec Media) error {
	r, err := s.OpenMedia(rec)
	if err != nil {
		return fmt.Errorf("media: export %s: %w", rec.MXC, err)
	}
	defer r.Close()
	_, err = w.AddMedia(ctx, archive.Entry{
		Origin:      rec.MXC.Server(),
		MediaID:     rec.MXC.MediaID(),
		Name:        rec.UploadName,
		ContentType: rec.ContentType,
		Size:        rec.Size,
		CreatedTS:   rec.Created,
		Uploader:    rec.Uploader,
	}, r)
	if err != nil {
		return fmt.Errorf("media: export %s: %w", rec.MXC, err)
	}
	return nil
}

// exportList returns the records Export writes, from one snapshot, sorted
// by mxc URI, counting the quarantined ones it leaves out in rep.
func (s *Store) exportList(ctx context.Context, e Entity, rep *ExportReport) ([]Media, error) {
	snap := s.idx.Snapshot()
	defer snap.Close()
	var list []Media
	add := func(rec Media) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !counted(rec) || !e.Owns(rec.MXC.Server(), rec.Uploader) {
			return nil
		}
		if rec.Quarantined || s.refuseQuarantined(rec.MXC, rec) != nil {
			rep.Quarantined++
			return nil
		}
		list = append(list, rec)
		return nil
	}
	var err error
	if e.User != "" {
		err = scanUserMedia(ctx, snap, e.User, add)
	} else {
		err = snap.ScanMedia(func(r index.MediaRecord) error {
			if !strings.EqualFold(r.Server, e.Server) {
				return ctx.Err()
			}
			rec, err := scannedMedia(r)
			if err != nil {
				return err
			}
			return add(rec)
		})
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b Media) int { return strings.Compare(a.MXC.String(), b.MXC.String()) })
	return list, nil
}
