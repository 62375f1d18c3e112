package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/preview"
	"github.com/mxcas/mxcas/thumbgen"
)

// previewImage stores the image of a preview, fetched with p when the page
// did not carry it, as local media of server and
// sets rec's image fields. It goes through Upload, so the content is
// stored once however often it is previewed and gets thumbnails; the
// media has no uploader (no user's usage counts it) and requires
// authentication exactly when any upload made now would
// (Options.FreezeUnauthenticated). An image that cannot be had (refused,
// unreachable, not an image, quarantined content) leaves rec without one
// and is no error: the page's preview still stands. Errors are the
// store's (no space, a failed index).
func (s *Store) previewImage(ctx context.Context, p preview.Previewer, server string, ref preview.ImageRef, rec *index.PreviewRecord) error {
	img := preview.Image{Body: ref.Body, ContentType: ref.ContentType}
	if img.Body == nil {
		var err error
		if img, err = p.Image(ctx, ref.URL); err != nil {
			s.opts.Logger.Debug("url preview: no image", "image", ref.URL, "err", err)
			return nil
		}
	}
	ctype, info, ok := imageType(img)
	if !ok {
		s.opts.Logger.Debug("url preview: not an image", "image", ref.URL, "type", img.ContentType)
		return nil
	}
	m, err := matrix.NewMXC(server, matrix.NewMediaID())
	if err != nil {
		return err
	}
	stored, err := s.Upload(ctx, UploadInfo{MXC: m, ContentType: ctype, Size: int64(len(img.Body)), NewID: true}, bytes.NewReader(img.Body))
	if errors.Is(err, ErrQuarantinedContent) {
		s.opts.Logger.Info("url preview: image content is quarantined", "image", ref.URL)
		return nil
	}
	if err != nil {
		return fmt.Errorf("url preview: store image: %w", err)
	}
	rec.Image, rec.ImageType, rec.ImageSize = m.String(), ctype, stored.Size
	rec.ImageWidth, rec.ImageHeight = info.Width, info.Height
	return nil
}

// imageType returns the type to store img as and what its header says
// (dimensions 0 when unknown): the declared type when it is image/*, else
// the type of the format the bytes are in. ok is false when img is
// neither declared nor recognised as an image.
func imageType(img preview.Image) (ctype string, info thumbgen.Info, ok bool) {
	// Sniff fills Info from the header even for an image over the limits.
	info, _ = thumbgen.Sniff(img.Body, thumbgen.Limits{MaxBytes: int64(len(img.Body))})
	mt, _, err := mime.ParseMediaType(img.ContentType)
	if err == nil && strings.HasPrefix(mt, "image/") {
		return mt, info, true
	}
	if info.Format != "" {
		return "image/" + info.Format, info, true
	}
	return "", info, false
}
