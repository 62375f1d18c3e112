package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/ffmpeg"
	"github.com/mxcas/mxcas/thumbgen"
)

// avContent reports whether media of contentType is thumbnailed through
// ffmpeg (ThumbnailOptions.FFmpeg): video, audio, and the image formats
// thumbgen does not decode but ffmpeg does.
func avContent(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "video/"), strings.HasPrefix(mt, "audio/"):
		return true
	}
	return mt == "image/avif"
}

// thumbSource is a source loaded for thumbnailing: the image thumbgen
// decodes (rec's own bytes, or a still ffmpeg made of them), or the peaks
// of rec's audio, drawn as a waveform at each size.
type thumbSource struct {
	image    []byte
	still    bool // image is a picture made of rec, not rec's bytes
	waveform bool
	peaks    []float32
}

// own returns rec's own bytes when the source is them (so a thumbnail equal
// to them can share rec's object), else nil.
func (src thumbSource) own() []byte {
	if src.still || src.waveform {
		return nil
	}
	return src.image
}

// generate is thumbgen.Generate over the source.
func (src thumbSource) generate(req thumbgen.Request, lim thumbgen.Limits) (thumbgen.Result, error) {
	if src.waveform {
		return thumbgen.GenerateWaveform(src.peaks, req, lim)
	}
	return thumbgen.Generate(src.image, req, lim)
}

// generateEach is thumbgen.GenerateEach over the source; waveforms are
// drawn in the order of reqs.
func (src thumbSource) generateEach(reqs []thumbgen.Request, lim thumbgen.Limits, next func([]int) int, emit func(int, thumbgen.Outcome)) {
	if !src.waveform {
		thumbgen.GenerateEach(src.image, reqs, lim, next, emit)
		return
	}
	for i, req := range reqs {
		res, err := thumbgen.GenerateWaveform(src.peaks, req, lim)
		emit(i, thumbgen.Outcome{Result: res, Err: err})
	}
}

// loadThumbSource is loadSource, or for video and audio (when ffmpeg is
// configured) loadStill.
func (s *Store) loadThumbSource(ctx context.Context, rec Media, cost func(thumbgen.Info) int64) (thumbSource, func(), error) {
	if s.thumbs.opts.FFmpeg != nil && avContent(rec.ContentType) {
		return s.loadStill(ctx, rec, cost)
	}
	src, release, err := s.loadSource(ctx, rec, cost)
	return thumbSource{image: src}, release, err
}

// Bounds of ffmpeg jobs beyond ffmpeg's own.
const (
	// childMemory is reserved from the memory budget while a child runs:
	// the child's own memory (a 1080p frame's peaks at 92 MB) and what it
	// hands back, at least.
	childMemory = 128 << 20
	// refusalTTL: a source ffmpeg refused (unreadable, over the bounds, out
	// of time) is refused again for this long without running it, so that
	// asking for many sizes of a hostile file costs one run.
	refusalTTL = 10 * time.Minute
	// refusalsKept bounds the refusals remembered.
	refusalsKept = 1024
)

// refusal is a remembered ffmpeg refusal of a source object.
type refusal struct {
	err   error
	until time.Time
}

// refused returns the remembered refusal of src, if any is current.
func (t *thumbnailer) refused(src cas.Hash, now time.Time) error {
	if r, ok := t.refusals.Get(src); ok && now.Before(r.until) {
		return r.err
	}
	return nil
}

// loadStill is the admitted, budgeted picture of video or audio: it waits
// for a worker, writes a verified copy of rec's content in DATA/tmp (ffmpeg
// never reads DATA/cas), and has ffmpeg make a frame, the cover art or the
// audio's peaks from it, reserving from the memory budget what the child
// may use and hand back while it runs (childMemory, or the output cap if
// larger), then (for an image) what decoding it costs, as loadSource does.
// The copy is removed before loadStill returns. On success the caller
// calls release when done with the source.
func (s *Store) loadStill(ctx context.Context, rec Media, cost func(thumbgen.Info) int64) (src thumbSource, release func(), err error) {
	t := s.thumbs
	if err := t.refused(rec.Object, s.opts.Now()); err != nil {
		return thumbSource{}, nil, err
	}
	releaseWorker, err := t.admit(ctx)
	if err != nil {
		return thumbSource{}, nil, err
	}
	defer func() {
		if err != nil {
			releaseWorker()
		}
	}()
	hold := min(max(t.opts.FFmpeg.Options().MaxOutputBytes, childMemory), t.opts.MemoryBudget)
	if err := t.memory.Acquire(ctx, hold); err != nil {
		return thumbSource{}, nil, err
	}
	st, err := s.stillOf(ctx, rec)
	t.memory.Release(hold)
	if errors.Is(err, ffmpeg.ErrUnsupported) || errors.Is(err, ffmpeg.ErrTooLarge) || errors.Is(err, ffmpeg.ErrTimeout) {
		t.refusals.Add(rec.Object, refusal{err: err, until: s.opts.Now().Add(refusalTTL)})
	}
	if err != nil {
		return thumbSource{}, nil, err
	}
	t.decodes.Add(1)
	if st.Kind == "waveform" {
		return thumbSource{waveform: true, peaks: st.Peaks}, releaseWorker, nil
	}
	need, err := t.memoryNeed(st.Image, int64(len(st.Image)), cost)
	if err != nil {
		return thumbSource{}, nil, err
	}
	if err := t.memory.Acquire(ctx, need); err != nil {
		return thumbSource{}, nil, err
	}
	return thumbSource{image: st.Image, still: true}, func() { t.memory.Release(need); releaseWorker() }, nil
}

// stillOf copies rec's content, verified, to a temp file and runs ffmpeg
// on the copy. The copy counts against the free space writes must leave.
func (s *Store) stillOf(ctx context.Context, rec Media) (*ffmpeg.Still, error) {
	if err := s.space.reserve(rec.Size); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.opts.Dir, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "thumbsrc-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	r, err := s.OpenMedia(rec)
	if err != nil {
		f.Close()
		return nil, err
	}
	n, err := io.Copy(f, r)
	r.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != rec.Size {
		err = fmt.Errorf("media: %s: copied %d bytes of %d", rec.MXC, n, rec.Size)
	}
	if err != nil {
		return nil, noSpace(err)
	}
	return s.thumbs.opts.FFmpeg.Still(ctx, f.Name(), s.thumbs.opts.MaxDimension)
}

// ffmpegErr translates ffmpeg's errors as thumbnailErr does thumbgen's: a
// source ffmpeg cannot read cannot be thumbnailed; one over the bounds, or
// that did not finish in time, is too large to thumbnail.
func ffmpegErr(err error) error {
	switch {
	case errors.Is(err, ffmpeg.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrCannotThumbnail, err)
	case errors.Is(err, ffmpeg.ErrTooLarge), errors.Is(err, ffmpeg.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrThumbnailTooLarge, err)
	}
	return err
}
