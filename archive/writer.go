package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultPartSize is MMR's default target size of a part.
const DefaultPartSize = 100 << 20

// CreateFunc opens the destination for one part by name (export-part-N.tgz
// or export-manifest.tgz). The writer closes what it returns once the part
// is complete; a Close error fails the write. A part abandoned after an
// error is closed too, unless the destination is an Aborter. Callers decide
// whether that is a file or an upload.
type CreateFunc func(name string) (io.WriteCloser, error)

// Aborter is a part's destination that publishes it on Close (a temp file
// renamed into place, say): the writer calls Abort instead of Close for a
// part it abandons after an error, so an incomplete part never appears
// under its name.
type Aborter interface {
	Abort()
}

// Options configure a Writer.
type Options struct {
	// EntityID is the user ID or server name the archive is for (required).
	EntityID string
	// PartSize is the uncompressed bytes of media after which a part is
	// closed and the next begun, as MMR counts; 0 means DefaultPartSize.
	PartSize int64
	// Create opens each part (required).
	Create CreateFunc
	// Now is the clock for the manifest's created_ts; nil means time.Now.
	Now func() time.Time
}

// Validate reports missing or impossible options.
func (o *Options) Validate() error {
	switch {
	case o.EntityID == "":
		return errors.New("archive: Options.EntityID is required")
	case o.Create == nil:
		return errors.New("archive: Options.Create is required")
	case o.PartSize < 0:
		return errors.New("archive: Options.PartSize must not be negative")
	}
	return nil
}

func (o *Options) ensureDefaults() {
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Entry describes one media to archive.
type Entry struct {
	Origin      string
	MediaID     string
	Name        string // the uploader's file name, may be empty
	ContentType string
	Size        int64 // exact body size; tar needs it before the body
	CreatedTS   int64 // milliseconds since the epoch
	Uploader    string
	S3URL       string
}

// Writer writes an archive part by part. It is not safe for concurrent use.
// After any error other than ErrInvalidEntry or ErrDuplicate the archive is
// incomplete and every later call returns ErrClosed.
type Writer struct {
	opts   Options
	media  map[string]*Record
	order  []string
	part   int   // number of the open part, 0 if none
	used   int64 // media bytes in the open part
	dst    io.WriteCloser
	gz     *gzip.Writer
	tw     *tar.Writer
	closed bool
}

// NewWriter returns a writer for opts. No part is created until the first
// AddMedia, so an archive without media is only export-manifest.tgz.
func NewWriter(opts Options) (*Writer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.ensureDefaults()
	return &Writer{opts: opts, media: make(map[string]*Record)}, nil
}

// AddMedia streams body into the current part as ArchivedName(e) and returns
// its manifest record with the sha256 computed while streaming. body must
// yield exactly e.Size bytes, else ErrSizeMismatch. The part is rotated once
// it holds PartSize bytes or more.
func (w *Writer) AddMedia(ctx context.Context, e Entry, body io.Reader) (Record, error) {
	if w.closed {
		return Record{}, ErrClosed
	}
	if err := validOrigin(e.Origin); err != nil {
		return Record{}, err
	}
	if err := validMediaID(e.MediaID); err != nil {
		return Record{}, err
	}
	if e.Size < 0 {
		return Record{}, fmt.Errorf("%w: negative size", ErrInvalidEntry)
	}
	key := mxcURI(e.Origin, e.MediaID)
	if _, ok := w.media[key]; ok {
		return Record{}, fmt.Errorf("%w: %s", ErrDuplicate, key)
	}
	rec, err := w.add(ctx, e, body)
	if err != nil {
		w.abort()
		return Record{}, fmt.Errorf("archive %s: %w", key, err)
	}
	w.media[key] = &rec
	w.order = append(w.order, key)
	if w.used >= w.opts.PartSize {
		if err := w.finishPart(); err != nil {
			w.abort()
			return rec, err
		}
	}
	return rec, nil
}

func (w *Writer) add(ctx context.Context, e Entry, body io.Reader) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if w.tw == nil {
		if err := w.beginPart(fmt.Sprintf("export-part-%d", w.part+1)); err != nil {
			return Record{}, err
		}
		w.part++
	}
	name := ArchivedName(e.Origin, e.MediaID, e.ContentType)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: e.Size, ModTime: time.UnixMilli(e.CreatedTS)}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return Record{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w.tw, h), io.LimitReader(ctxReader{ctx, body}, e.Size+1))
	switch {
	case err != nil && errors.Is(err, tar.ErrWriteTooLong):
		return Record{}, fmt.Errorf("%w: body longer than %d bytes", ErrSizeMismatch, e.Size)
	case err != nil:
		return Record{}, err
	case n != e.Size:
		return Record{}, fmt.Errorf("%w: body has %d bytes, want %d", ErrSizeMismatch, n, e.Size)
	}
	w.used += n
	return Record{
		Name: e.Name, FileName: name, SizeBytes: n, ContentType: e.ContentType, S3URL: e.S3URL,
		SHA256: hex.EncodeToString(h.Sum(nil)), Origin: e.Origin, MediaID: e.MediaID,
		CreatedTS: e.CreatedTS, Uploader: e.Uploader,
	}, nil
}

// Close finishes the open part and writes export-manifest.tgz with
// manifest.json and index.html. It must be called exactly once to complete
// the archive. After a failed AddMedia or a second Close it returns ErrClosed
// and writes nothing.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	if err := w.finishPart(); err != nil {
		w.abort()
		return err
	}
	m := Manifest{Version: VersionV2, EntityID: w.opts.EntityID, CreatedTS: w.opts.Now().UnixMilli(), Media: w.media}
	manifest, err := json.Marshal(&m)
	if err != nil {
		w.abort()
		return err
	}
	var index bytes.Buffer
	if err := writeIndex(&index, &m, w.order); err != nil {
		w.abort()
		return err
	}
	if err := w.beginPart("export-manifest"); err != nil {
		w.abort()
		return err
	}
	now := time.UnixMilli(m.CreatedTS)
	for _, f := range []struct {
		name string
		body []byte
	}{{manifestName, manifest}, {indexName, index.Bytes()}} {
		if err := w.tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: now}); err != nil {
			w.abort()
			return err
		}
		if _, err := w.tw.Write(f.body); err != nil {
			w.abort()
			return err
		}
	}
	err = w.finishPart()
	w.abort()
	return err
}

// beginPart opens <base>.tgz; the gzip header names the tar as MMR does.
func (w *Writer) beginPart(base string) error {
	dst, err := w.opts.Create(base + ".tgz")
	if err != nil {
		return fmt.Errorf("create part %s.tgz: %w", base, err)
	}
	w.dst = dst
	// Media is mostly compressed already: the fastest level gives nearly
	// the same size at a quarter of the CPU (an export of 1 GiB of
	// typical media spent 89% of its time in the default level).
	w.gz, _ = gzip.NewWriterLevel(dst, gzip.BestSpeed)
	w.gz.Name = base + ".tar"
	w.tw = tar.NewWriter(w.gz)
	w.used = 0
	return nil
}

// finishPart flushes and closes the open part, if any.
func (w *Writer) finishPart() error {
	if w.tw == nil {
		return nil
	}
	tw, gz, dst := w.tw, w.gz, w.dst
	w.tw, w.gz, w.dst = nil, nil, nil
	err := errors.Join(tw.Close(), gz.Close())
	return errors.Join(err, dst.Close())
}

// abort marks the writer closed and releases an open part, aborting it
// when the destination can be.
func (w *Writer) abort() {
	w.closed = true
	if a, ok := w.dst.(Aborter); ok {
		a.Abort()
		w.tw, w.gz, w.dst = nil, nil, nil
	} else if w.dst != nil {
		_ = w.dst.Close()
		w.tw, w.gz, w.dst = nil, nil, nil
	}
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
