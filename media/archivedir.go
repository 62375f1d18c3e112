package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mxcas/mxcas/archive"
)

// ErrExportDest means an export's destination is not a directory or
// already holds archive parts; nothing was written.
var ErrExportDest = errors.New("media: export destination is not a directory or already holds an archive")

// ErrNoArchive means an import's directory cannot be read or holds no
// archive part; nothing was imported.
var ErrNoArchive = errors.New("media: no archive to import")

// ExportToDir writes Export's archive into dir, which it creates (mode
// 0700: the parts are personal data) when missing and refuses with
// ErrExportDest, writing nothing, when it already holds an archive part
// (*.tgz or *.tar.gz). Each part is written under a hidden temp name in dir,
// synced, and renamed to its own name once complete, then dir is synced: a
// part's name never holds half a part, even after a crash. When the export
// fails, the files it created are removed (and dir, when it made it and it
// is empty). opts.Create is ignored. The server's admin endpoint and
// tools/gdpr both export through it.
func (s *Store) ExportToDir(ctx context.Context, dir string, opts ExportOptions) (ExportReport, error) {
	made, err := prepareExportDir(dir)
	if err != nil {
		return ExportReport{Entity: opts.Entity.String(), Parts: []string{}}, err
	}
	pd := &partDir{dir: dir}
	opts.Create = pd.create
	rep, err := s.Export(ctx, opts)
	if err != nil {
		pd.remove()
		if made {
			os.Remove(dir)
		}
		rep.Parts = []string{}
	}
	return rep, err
}

// prepareExportDir makes dir if missing (made is true then) and refuses
// one that holds archive parts.
func prepareExportDir(dir string) (made bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%w: %s is not a directory", ErrExportDest, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if n := e.Name(); archive.IsPart(n) {
			return false, fmt.Errorf("%w: %s already holds %s; give an empty or new directory", ErrExportDest, dir, n)
		}
	}
	return false, nil
}

// partDir creates an export's parts in dir, durably, and remembers them to
// remove them should the export fail. Export uses it from one goroutine.
type partDir struct {
	dir   string
	files []string // every path created: temp files and renamed parts
}

func (d *partDir) create(name string) (io.WriteCloser, error) {
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("media: export part name %q", name)
	}
	f, err := os.CreateTemp(d.dir, "."+name+"-*")
	if err != nil {
		return nil, err
	}
	d.files = append(d.files, f.Name())
	return &partFile{f: f, path: filepath.Join(d.dir, name), d: d}, nil
}

// remove removes every file d created.
func (d *partDir) remove() {
	for _, p := range d.files {
		os.Remove(p)
	}
	syncDir(d.dir)
}

// partFile is one part being written under a temp name; Close publishes it.
type partFile struct {
	f    *os.File
	path string // the part's own name, once complete
	d    *partDir
}

var _ archive.Aborter = (*partFile)(nil)

func (p *partFile) Write(b []byte) (int, error) { return p.f.Write(b) }

// Close syncs the part, renames it to its name and syncs the directory.
func (p *partFile) Close() error {
	err := p.f.Sync()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		p.d.files = append(p.d.files, p.path)
		err = os.Rename(p.f.Name(), p.path)
	}
	if err == nil {
		err = syncDir(p.d.dir)
	}
	if err != nil {
		return fmt.Errorf("media: write %s: %w", p.path, err)
	}
	return nil
}

// Abort drops an incomplete part.
func (p *partFile) Abort() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// DirImportReport is what ImportDir did: the counts of every archive's
// media, and the archives it read.
type DirImportReport struct {
	ArchiveImportReport
	Archives int `json:"archives"`
	// ArchivesFailed counts the archives that failed as a whole (no
	// manifest, a damaged part); each was reported to Problem.
	ArchivesFailed int `json:"archives_failed"`
}

// Problems reports whether an archive failed, or any media failed or was
// refused, or, verifying, is missing.
func (r *DirImportReport) Problems() bool {
	return r.ArchivesFailed > 0 || r.ArchiveImportReport.Problems()
}

// ImportDir imports every archive under dir (archive.Find: one per
// directory holding parts) with ImportArchive and opts. An archive that
// fails as a whole is reported to opts.Problem (Archive set, MXC empty) and
// the next is read. The error is ErrNoArchive when dir holds none, or the
// context's. The server's admin endpoint and tools/gdpr both import through
// it.
func (s *Store) ImportDir(ctx context.Context, dir string, opts ArchiveImportOptions) (DirImportReport, error) {
	var rep DirImportReport
	fsys := os.DirFS(dir)
	dirs, err := archive.Find(fsys)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrNoArchive, err)
	}
	if len(dirs) == 0 {
		return rep, fmt.Errorf("%w: %s holds no archive part (*.tgz)", ErrNoArchive, dir)
	}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Archives++
		sub, err := fs.Sub(fsys, d)
		var ar ArchiveImportReport
		if err == nil {
			ar, err = s.ImportArchive(ctx, sub, opts)
		}
		if rep.Entity == "" {
			rep.Entity = ar.Entity
		}
		rep.Add(ar)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return rep, cerr
			}
			rep.ArchivesFailed++
			if opts.Problem != nil {
				opts.Problem(ArchiveProblem{Archive: filepath.Join(dir, filepath.FromSlash(d)), Kind: "failed", Reason: err.Error()})
			}
		}
	}
	return rep, nil
}
