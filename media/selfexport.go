package media

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/cas"
)

// Self-service exports: a user's own archive, written on their request
// and downloadable by them until it expires. Each lives in
// DATA/exports/<id>/ (the archive's parts and ExportMetaName); one being
// written lives in DATA/exports/.tmp-<id>/ until it is complete. Exports
// are derived data: backup, fsck and GC's chunk sweep never look at them,
// GC and Open remove the expired ones (and Open the unfinished ones), and
// losing the directory loses nothing but downloads not yet made.

// ExportsDir is the directory of self-service exports under DATA.
const ExportsDir = "exports"

// ExportMetaName is the file in an export's directory that says whose it
// is and until when; it is never one of the parts.
const ExportMetaName = "mxcas-export.json"

// ErrExportInProgress: the user already has an export being written.
var ErrExportInProgress = errors.New("media: an export of this user is already in progress")

// UserExportPart is one downloadable file of a UserExport.
type UserExportPart struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// UserExport is a user's self-service export: its parts, in order (the
// manifest last), and what it holds.
type UserExport struct {
	ID      string
	User    string
	Created time.Time
	Expires time.Time
	Parts   []UserExportPart
	Media   int
	Bytes   int64
}

// exportMeta is ExportMetaName's content.
type exportMeta struct {
	Version   int              `json:"version"`
	User      string           `json:"user"`
	CreatedTS int64            `json:"created_ts"`
	ExpiresTS int64            `json:"expires_ts"`
	Media     int              `json:"media"`
	Bytes     int64            `json:"bytes"`
	Parts     []UserExportPart `json:"parts"`
}

func (m exportMeta) export(id string) UserExport {
	return UserExport{ID: id, User: m.User, Created: time.UnixMilli(m.CreatedTS), Expires: time.UnixMilli(m.ExpiresTS),
		Parts: m.Parts, Media: m.Media, Bytes: m.Bytes}
}

// userExports holds which users have an export being written.
type userExports struct {
	mu   sync.Mutex
	busy map[string]bool
}

// begin marks user's export as in progress; false when one already is.
func (u *userExports) begin(user string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.busy[user] {
		return false
	}
	if u.busy == nil {
		u.busy = make(map[string]bool)
	}
	u.busy[user] = true
	return true
}

func (u *userExports) end(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.busy, user)
}

// exportIDLen is the length of an export ID: 16 random bytes, unpadded
// URL-safe base64.
const exportIDLen = 22

// validExportID reports whether id has an export ID's shape (so it can
// name nothing but a directory under DATA/exports).
func validExportID(id string) bool {
	if len(id) != exportIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

func newExportID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Store) exportsDir() string { return filepath.Join(s.opts.Dir, ExportsDir) }

// CreateUserExport writes an archive of user's own media (as Export does
// for an entity: quarantined media left out) that stays downloadable
// until ttl from now, and returns it. partSize is the media bytes per part
// (0: archive's default). Every part and the meta file are synced before
// the export's directory is renamed into place, so a listed export
// survives a crash whole; a failed one leaves nothing. The user's
// previous exports are removed once the new one is in place. A second
// export of the same user while one is being written gets
// ErrExportInProgress.
func (s *Store) CreateUserExport(ctx context.Context, user string, partSize int64, ttl time.Duration) (UserExport, error) {
	ent, err := ParseEntity(user)
	if err != nil || ent.User == "" {
		return UserExport{}, fmt.Errorf("%w: %q is not a user ID", ErrBadParam, user)
	}
	if ttl <= 0 || partSize < 0 {
		return UserExport{}, fmt.Errorf("media: user export: ttl %v and part size %d must be positive", ttl, partSize)
	}
	if s.opts.ReadOnly {
		return UserExport{}, cas.ErrReadOnly
	}
	if !s.userExports.begin(user) {
		return UserExport{}, ErrExportInProgress
	}
	defer s.userExports.end(user)

	if err := os.MkdirAll(s.exportsDir(), 0o750); err != nil {
		return UserExport{}, fmt.Errorf("media: user export: %w", err)
	}
	id := newExportID()
	tmp := filepath.Join(s.exportsDir(), ".tmp-"+id)
	if err := os.Mkdir(tmp, 0o750); err != nil {
		return UserExport{}, fmt.Errorf("media: user export: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	created := s.opts.Now()
	meta := exportMeta{Version: 1, User: user, CreatedTS: created.UnixMilli(), ExpiresTS: created.Add(ttl).UnixMilli()}
	size := partSize // a part is reserved on the disk before the export
	if size == 0 {
		size = archive.DefaultPartSize
	}
	if err := s.space.reserve(size); err != nil {
		return UserExport{}, fmt.Errorf("media: user export of %s: %w", user, err)
	}
	rep, err := s.ExportToDir(ctx, tmp, ExportOptions{Entity: ent, PartSize: partSize})
	for _, name := range rep.Parts {
		fi, serr := os.Stat(filepath.Join(tmp, name))
		if err == nil {
			err = serr
		}
		if serr == nil {
			meta.Parts = append(meta.Parts, UserExportPart{Name: name, Size: fi.Size()})
		}
	}
	if err != nil {
		return UserExport{}, fmt.Errorf("media: user export of %s: %w", user, err)
	}
	meta.Media, meta.Bytes = rep.Media, rep.Bytes
	b, err := json.Marshal(meta)
	if err == nil {
		err = writeFileAtomic(filepath.Join(tmp, ExportMetaName), b, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.exportsDir(), id))
	}
	if err == nil {
		err = syncDir(s.exportsDir())
	}
	if err != nil {
		return UserExport{}, fmt.Errorf("media: user export of %s: %w", user, err)
	}
	done = true
	s.removeUserExports(user, id)
	s.opts.Logger.Info("user export written", "user", user, "export", id, "media", rep.Media, "bytes", rep.Bytes,
		"parts", len(meta.Parts), "expires", time.UnixMilli(meta.ExpiresTS).UTC())
	return meta.export(id), nil
}

// removeUserExports removes user's exports but keep, logging what fails.
func (s *Store) removeUserExports(user, keep string) {
	s.eachExport(func(id string, m exportMeta, err error) {
		if err == nil && id != keep && m.User == user {
			s.removeExport(id, "replaced")
		}
	})
}

// eachExport calls fn for every export directory in place, with its meta
// (or the error reading it). Unreadable DATA/exports is logged.
func (s *Store) eachExport(fn func(id string, m exportMeta, err error)) {
	ents, err := os.ReadDir(s.exportsDir())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.opts.Logger.Warn("cannot list user exports", "err", err)
		}
		return
	}
	for _, e := range ents {
		if id := e.Name(); e.IsDir() && validExportID(id) {
			m, err := s.readExportMeta(id)
			fn(id, m, err)
		}
	}
}

func (s *Store) readExportMeta(id string) (exportMeta, error) {
	var m exportMeta
	b, err := os.ReadFile(filepath.Join(s.exportsDir(), id, ExportMetaName))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	return m, err
}

func (s *Store) removeExport(id, why string) {
	if err := os.RemoveAll(filepath.Join(s.exportsDir(), id)); err != nil {
		s.opts.Logger.Warn("cannot remove a user export", "export", id, "reason", why, "err", err)
		return
	}
	s.opts.Logger.Info("user export removed", "export", id, "reason", why)
}

// OpenUserExportPart opens part name of export id for user. The export
// must be user's and not expired, and name exactly one of its parts;
// anything else is ErrNotFound. An expired export found here is removed.
// The caller closes the file.
func (s *Store) OpenUserExportPart(user, id, name string) (*os.File, error) {
	notFound := fmt.Errorf("%w: no export %q with a part %q of yours", ErrNotFound, id, name)
	if !validExportID(id) {
		return nil, notFound
	}
	m, err := s.readExportMeta(id)
	if err != nil || m.User != user {
		return nil, notFound
	}
	if s.exportExpired(m) {
		if !s.opts.ReadOnly {
			s.removeExport(id, "expired")
		}
		return nil, notFound
	}
	for _, p := range m.Parts {
		if p.Name == name && !strings.ContainsAny(name, `/\`) {
			f, err := os.Open(filepath.Join(s.exportsDir(), id, name))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, notFound // removed since the meta was read
			}
			return f, err
		}
	}
	return nil, notFound
}

func (s *Store) exportExpired(m exportMeta) bool {
	return s.opts.Now().UnixMilli() >= m.ExpiresTS
}

// expireUserExports removes the exports that have expired or whose meta
// cannot be read, and, when unfinished is set (at Open, when no export can
// be in progress), the temp directories of unfinished ones. It returns how
// many exports it removed.
func (s *Store) expireUserExports(unfinished bool) int {
	n := 0
	s.eachExport(func(id string, m exportMeta, err error) {
		switch {
		case err != nil:
			s.removeExport(id, "unreadable "+ExportMetaName)
		case s.exportExpired(m):
			s.removeExport(id, "expired")
		default:
			return
		}
		n++
	})
	if unfinished {
		tmps, _ := filepath.Glob(filepath.Join(s.exportsDir(), ".tmp-*"))
		for _, t := range tmps {
			os.RemoveAll(t)
		}
	}
	return n
}
