package media

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/mxcas/mxcas/thumbgen"
)

// Request parameter errors: a caller answers them as a bad request. The
// text after the sentinel's own (": ") names the parameter
// (ErrMissingParam) or says what is wrong with it (ErrBadParam).
var (
	ErrMissingParam = errors.New("media: missing parameter")
	ErrBadParam     = errors.New("media: invalid parameter")
)

// ThumbnailRequest is the thumbnail a request asks for.
type ThumbnailRequest struct {
	Width, Height int             // positive; sizes over ThumbnailOptions.MaxDimension are shrunk
	Method        thumbgen.Method // empty is thumbgen.Scale
	// Animated asks for an animated thumbnail of an animated source.
	Animated bool
}

// ParseThumbnailRequest reads width, height, method (default scale) and
// animated from a thumbnail request's query. Its errors wrap
// ErrMissingParam or ErrBadParam; they are checked in that order, width
// before height.
func ParseThumbnailRequest(q url.Values) (ThumbnailRequest, error) {
	req := ThumbnailRequest{Method: thumbgen.Method(q.Get("method")), Animated: q.Get("animated") == "true"}
	for _, p := range []string{"width", "height"} {
		if !q.Has(p) {
			return req, fmt.Errorf("%w: %s", ErrMissingParam, p)
		}
	}
	var err error
	if req.Width, err = strconv.Atoi(q.Get("width")); err != nil || req.Width <= 0 {
		return req, fmt.Errorf("%w: width must be a positive integer", ErrBadParam)
	}
	if req.Height, err = strconv.Atoi(q.Get("height")); err != nil || req.Height <= 0 {
		return req, fmt.Errorf("%w: height must be a positive integer", ErrBadParam)
	}
	if req.Method == "" {
		req.Method = thumbgen.Scale
	}
	if req.Method, err = thumbgen.ParseMethod(string(req.Method)); err != nil {
		return req, fmt.Errorf("%w: method must be crop or scale", ErrBadParam)
	}
	if v := q.Get("animated"); v != "" && v != "true" && v != "false" {
		return req, fmt.Errorf("%w: animated must be true or false", ErrBadParam)
	}
	return req, nil
}

// thumbgen turns req into thumbgen's request.
func (req ThumbnailRequest) thumbgen() thumbgen.Request {
	return thumbgen.Request{Width: req.Width, Height: req.Height, Method: req.Method, Animated: req.Animated}
}

// thumbnailErr translates thumbgen's (and ffmpeg's) errors at this package's boundary:
// the result wraps a media sentinel (and still thumbgen's, for detail).
func thumbnailErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, thumbgen.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrThumbnailTooLarge, err)
	case errors.Is(err, thumbgen.ErrBadRequest):
		return fmt.Errorf("%w: %w", ErrBadParam, err)
	case errors.Is(err, thumbgen.ErrUnsupported), errors.Is(err, thumbgen.ErrCorrupt):
		return fmt.Errorf("%w: %w", ErrCannotThumbnail, err)
	}
	return ffmpegErr(err)
}
