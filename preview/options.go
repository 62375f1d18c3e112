package preview

import (
	"context"
	"errors"
	"net"
	"time"
)

// Options configure a Fetcher. Defaults are filled by New.
type Options struct {
	// DialContext makes every connection (pages, redirects, images,
	// oEmbed): the guarded dialer, which checks the IP actually dialled.
	// Required.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Refused reports whether an error of DialContext is a refusal by
	// policy (the URL is then ErrForbidden, not ErrUnavailable).
	Refused func(error) bool
	// AllowedDomains and DeniedDomains are host name globs ("*.example.org");
	// denied wins unless allowed names the host too.
	AllowedDomains, DeniedDomains []string
	// MaxBytes caps what is read of one response (default 10 MiB).
	MaxBytes int64
	// Timeout bounds one preview, redirects and image included (default
	// 10 s).
	Timeout time.Duration
	// MaxRedirects (default 5).
	MaxRedirects int
	// UserAgent sent with every request.
	UserAgent string
}

// New returns a Fetcher for o.
func New(o Options) (*Fetcher, error) {
	return nil, errors.New("preview: not implemented yet")
}

// Fetcher makes previews (Previewer). Safe for concurrent use.
type Fetcher struct{}

var _ Previewer = (*Fetcher)(nil)

// Preview implements Previewer.
func (f *Fetcher) Preview(ctx context.Context, url string) (Result, error) {
	return Result{}, ErrUnavailable
}

// Image implements Previewer.
func (f *Fetcher) Image(ctx context.Context, url string) (Image, error) {
	return Image{}, ErrUnavailable
}
