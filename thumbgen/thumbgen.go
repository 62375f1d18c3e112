package thumbgen

import (
	"errors"
	"fmt"
)

// Errors returned by Sniff and Generate. Test with errors.Is: the returned
// errors wrap one of these and, where there is one, the decoder's error.
var (
	ErrUnsupported = errors.New("thumbgen: not an image format this server can thumbnail")
	ErrTooLarge    = errors.New("thumbgen: image too large to thumbnail")
	ErrBadRequest  = errors.New("thumbgen: bad thumbnail request")
	ErrCorrupt     = errors.New("thumbgen: image data is corrupt")
)

// Default limits, used for the zero fields of Limits.
const (
	DefaultMaxPixels = 32_000_000
	DefaultMaxBytes  = 64 << 20
	DefaultMaxFrames = 300
)

// maxRequestDim bounds Request.Width and Request.Height so that the size
// arithmetic cannot overflow. It is far beyond any image that passes Limits.
const maxRequestDim = 1 << 24

// Limits bound what a source may cost. Zero fields take the defaults.
type Limits struct {
	MaxPixels int64 // width*height of the source (default 32_000_000); more is ErrTooLarge, checked from the header before decoding
	MaxBytes  int64 // source size in bytes (default 64 MiB); more is ErrTooLarge
	MaxFrames int   // frames of an animated source decoded for animated output (default 300)
}

// WithDefaults returns l with its zero (or negative) fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFrames <= 0 {
		l.MaxFrames = DefaultMaxFrames
	}
	return l
}

// Request is one thumbnail.
type Request struct {
	Width, Height int // positive; the size asked for is a minimum (see rules)
	Method        Method
	Animated      bool
}

// Validate reports whether r can be served. Its errors wrap ErrBadRequest.
func (r Request) Validate() error {
	if r.Width <= 0 || r.Height <= 0 {
		return fmt.Errorf("%w: width and height must be positive, got %dx%d", ErrBadRequest, r.Width, r.Height)
	}
	if r.Width > maxRequestDim || r.Height > maxRequestDim {
		return fmt.Errorf("%w: %dx%d is larger than %d", ErrBadRequest, r.Width, r.Height, maxRequestDim)
	}
	if _, err := ParseMethod(string(r.Method)); err != nil {
		return err
	}
	return nil
}

// Info is what the header says.
type Info struct {
	Format        string // "jpeg", "png", "gif", "webp", "bmp", "tiff"
	Width, Height int    // as displayed: for JPEG, after the EXIF orientation
	Animated      bool   // GIF with more than one frame, animated PNG (acTL) or WebP (VP8X flag)
	Progressive   bool   // progressive JPEG: decoding holds all its coefficients (DecodeMemory counts them)
}

// Result is an encoded thumbnail.
type Result struct {
	Data          []byte
	ContentType   string // "image/jpeg", "image/png" or "image/gif"
	Width, Height int
}
