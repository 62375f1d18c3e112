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

// loadStill is the admitted, budgeted picture of video or audio: it waits
// for a worker, writes a verified copy of rec's content in DATA/tmp (ffmpeg
// never reads DATA/cas), and has ffmpeg make a frame, the cover art or the
// audio's peaks from it, reserving from the memory budget the most the
// child may hand back while it runs, then (for an image) what decoding it
// costs, as loadSource does. The copy is removed before loadStill returns.
// On success the caller calls release when done with the source.
func (s *Store) loadStill(ctx context.Context, rec Media, cost func(thumbgen.Info) int64) (src thumbSource, release func(), err error) {
	t := s.thumbs
	releaseWorker, err := t.admit(ctx)
	if err != nil {
		return thumbSource{}, nil, err
	}
	defer func() {
		if err != nil {
			releaseWorker()
		}
	}()
	hold := min(t.opts.FFmpeg.Options().MaxOutputBytes, t.opts.MemoryBudget)
	if err := t.memory.Acquire(ctx, hold); err != nil {
		return thumbSource{}, nil, err
	}
	st, err := s.stillOf(ctx, rec)
	t.memory.Release(hold)
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
// on the copy.
func (s *Store) stillOf(ctx context.Context, rec Media) (*ffmpeg.Still, error) {
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
		return nil, err
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
