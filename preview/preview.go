package preview

import (
	"context"
	"errors"
)

// The contract media and cmd/mxcas build on. The implementation (fetch.go,
// html.go, oembed.go, ...) fills it in.

// Errors. Every error a Fetcher returns wraps one of them.
var (
	// ErrBadURL: the URL is not one a preview may be made of (not
	// absolute http or https, userinfo, unparsable). 400 M_INVALID_PARAM.
	ErrBadURL = errors.New("preview: bad url")
	// ErrForbidden: the URL, a redirect or an image is on a denied
	// address or domain. 403 M_FORBIDDEN.
	ErrForbidden = errors.New("preview: url refused")
	// ErrUnavailable: the site could not be reached, failed, answered
	// too slowly or answered nothing a preview can be made of. 502.
	ErrUnavailable = errors.New("preview: site unavailable")
)

// Result is what a page says of itself: the OpenGraph object of the spec,
// without the image, which the caller stores and names (og:image as an
// mxc:// URI, og:image:type, og:image:width, og:image:height,
// matrix:image:size).
type Result struct {
	// OG holds og: keys (og:title, og:description, og:url, og:type,
	// og:site_name, ...) and those of OpenGraph's object types
	// (article:published_time, profile:username, ...), never og:image*:
	// the image is Image.
	OG map[string]string
	// Image is the image to show, or nil.
	Image *ImageRef
}

// ImageRef is the image of a preview.
type ImageRef struct {
	// URL is absolute (relative URLs are resolved against the page);
	// empty for an image the page inlined as a data: URL.
	URL string
	// Body and ContentType are set when the fetched URL was the image
	// itself, so it is not fetched twice, or the page inlined it; else
	// the caller uses Fetcher.Image. Body is at most Options.MaxBytes.
	Body        []byte
	ContentType string
}

// Image is a fetched image.
type Image struct {
	Body        []byte // at most Options.MaxBytes
	ContentType string // as the site declared it
}

// Previewer makes previews. *Fetcher implements it; media takes this
// interface. Safe for concurrent use.
type Previewer interface {
	// Preview fetches url and extracts its preview (HTML OpenGraph and
	// Twitter tags, fallbacks, oEmbed; an image URL is its own image; any
	// other type gets its file name as title).
	Preview(ctx context.Context, url string) (Result, error)
	// Image fetches an image URL under the same rules and cap.
	Image(ctx context.Context, url string) (Image, error)
}
