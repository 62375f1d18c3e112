package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Reader reads one archive directory: every *.tgz (or *.tar.gz) file at the
// root of an fs.FS (os.DirFS for a directory). Part names come from the
// directory listing, never from inside an archive.
type Reader struct {
	fsys     fs.FS
	parts    []string
	manifest *Manifest
}

// Open lists the parts of fsys and finds the manifest, looking first in
// export-manifest.tgz and then in every other part. It fails with
// ErrNoManifest if no part holds one, or ErrInvalidManifest if the first
// manifest.json found is not a usable v1 or v2 manifest.
func Open(ctx context.Context, fsys fs.FS) (*Reader, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("list archive: %w", err)
	}
	var parts []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && IsPart(n) {
			parts = append(parts, n)
		}
	}
	slices.SortFunc(parts, comparePart)
	r := &Reader{fsys: fsys, parts: parts}
	search := slices.Clone(parts)
	if i := slices.Index(search, ManifestPart); i > 0 {
		search = append([]string{ManifestPart}, slices.Delete(search, i, i+1)...)
	}
	var errs []error
	for _, p := range search {
		err := r.walkPart(ctx, p, func(h *tar.Header, body io.Reader) (bool, error) {
			if h.Name != manifestName {
				return false, nil
			}
			m, err := decodeManifest(body)
			if err != nil {
				return true, err
			}
			r.manifest = m
			return true, nil
		})
		if r.manifest != nil {
			return r, nil
		}
		if errors.Is(err, ErrInvalidManifest) {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	return nil, errors.Join(append([]error{ErrNoManifest}, errs...)...)
}

// Manifest returns the archive's manifest, upgraded to v2. The caller must
// not modify it.
func (r *Reader) Manifest() *Manifest { return r.manifest }

// Parts returns the part names in reading order.
func (r *Reader) Parts() []string { return slices.Clone(r.parts) }

// Handler receives one media: its manifest record and its body. body is
// valid only during the call. Its Read returns an error wrapping
// ErrSizeMismatch or ErrCorrupt instead of io.EOF when the file does not
// match the manifest, so a caller that reads to the end never accepts bad
// bytes. An error returned by a Handler stops Each and is returned by it.
type Handler func(rec Record, body io.Reader) error

// Problem receives an error about one media: its record failed checks
// (ErrInvalidRecord), its file did not match (ErrSizeMismatch, ErrCorrupt,
// or a read error of a damaged part), or no part held it (ErrMissing).
// Reading goes on after a Problem.
type Problem func(rec Record, err error)

// Each streams every media the manifest lists to h, part by part in
// archive order, and reports per-media problems to p. Tar entries the
// manifest does not list (the manifest itself, index.html, strays, hostile
// names) are skipped, as is a second file for a media already seen. A part
// that cannot be read is skipped after its damage is reported; Each then
// returns the joined errors of such parts, after reading all others. A media
// is handed to h at most once, and a record with S3 URL but no file is
// reported ErrMissing (fetching from S3 is the caller's business).
func (r *Reader) Each(ctx context.Context, h Handler, p Problem) error {
	byFile := make(map[string]string, len(r.manifest.Media))
	pending := make(map[string]bool, len(r.manifest.Media))
	keys := slices.Sorted(maps.Keys(r.manifest.Media))
	for _, k := range keys {
		rec := r.manifest.Media[k]
		if err := rec.check(k); err != nil {
			p(*rec, err)
			continue
		}
		if _, dup := byFile[rec.FileName]; dup {
			p(*rec, fmt.Errorf("%w: file_name %q used twice", ErrInvalidRecord, rec.FileName))
			continue
		}
		byFile[rec.FileName] = k
		pending[k] = true
	}
	var partErrs []error
	for _, part := range r.parts {
		var current string // the media being streamed when a part breaks
		err := r.walkPart(ctx, part, func(hdr *tar.Header, body io.Reader) (bool, error) {
			k, ok := byFile[hdr.Name]
			if !ok || !pending[k] {
				return false, nil
			}
			pending[k] = false
			current = k
			rec := *r.manifest.Media[k]
			vr := newVerifier(body, rec)
			herr := h(rec, vr)
			if herr == nil {
				_, _ = io.Copy(io.Discard, vr) // check what h left unread
			}
			if vr.err != nil {
				if vr.broken {
					return true, vr.err // the part itself is damaged
				}
				p(rec, vr.err)
				herr = nil
			}
			current = ""
			return false, herr
		})
		if err != nil && current == "" && !errors.Is(err, errPart) {
			return err // from the handler or the context
		}
		if err != nil {
			if current != "" {
				p(*r.manifest.Media[current], err)
			}
			partErrs = append(partErrs, fmt.Errorf("%s: %w", part, err))
		}
	}
	for _, k := range keys {
		if pending[k] {
			p(*r.manifest.Media[k], ErrMissing)
		}
	}
	return errors.Join(partErrs...)
}

// errPart marks an error reading a part's gzip or tar stream.
var errPart = errors.New("archive: damaged part")

// walkPart calls fn for each regular file in part until fn returns true or
// an error. Errors reading the part wrap errPart.
func (r *Reader) walkPart(ctx context.Context, part string, fn func(*tar.Header, io.Reader) (bool, error)) error {
	f, err := r.fsys.Open(part)
	if err != nil {
		return fmt.Errorf("%w: %w", errPart, err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%w: %w", errPart, err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errPart, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		done, err := fn(hdr, tr)
		if done || err != nil {
			return err
		}
	}
}

// verifier passes a body through, counting and hashing it, and turns the
// end of the body into an error if it does not match rec.
type verifier struct {
	r      io.Reader
	rec    Record
	h      hash.Hash
	n      int64
	err    error // sticky result once known
	broken bool  // err came from the part, not the comparison
}

func newVerifier(r io.Reader, rec Record) *verifier {
	return &verifier{r: r, rec: rec, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.rec.SizeBytes:
		v.err = fmt.Errorf("%w: more than %d bytes", ErrSizeMismatch, v.rec.SizeBytes)
	case err == io.EOF && v.n != v.rec.SizeBytes:
		v.err = fmt.Errorf("%w: %d bytes, manifest says %d", ErrSizeMismatch, v.n, v.rec.SizeBytes)
	case err == io.EOF && hex.EncodeToString(v.h.Sum(nil)) != v.rec.SHA256:
		v.err = ErrCorrupt
	case err != nil && err != io.EOF:
		v.err, v.broken = fmt.Errorf("%w: %w", errPart, err), true
	}
	if v.err != nil {
		return n, v.err
	}
	return n, err
}

// comparePart orders export-part-N by N, then other names, the manifest
// part last.
func comparePart(a, b string) int {
	ka, kb := partKey(a), partKey(b)
	if ka.rank != kb.rank {
		return ka.rank - kb.rank
	}
	if ka.n != kb.n {
		if ka.n < kb.n {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

type partOrder struct {
	rank int
	n    uint64
}

func partKey(name string) partOrder {
	if name == ManifestPart {
		return partOrder{rank: 2}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(name, ".tgz"), ".tar.gz")
	if s, ok := strings.CutPrefix(path.Base(base), "export-part-"); ok {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return partOrder{rank: 0, n: n}
		}
	}
	return partOrder{rank: 1}
}
