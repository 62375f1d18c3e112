package preview

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults New fills in.
const (
	DefaultMaxBytes     = 10 << 20
	DefaultTimeout      = 10 * time.Second
	DefaultMaxRedirects = 5
	DefaultUserAgent    = "mxcas (bot; URL previews)"
)

// Options configure a Fetcher. Defaults are filled by New.
type Options struct {
	// DialContext makes every connection (pages, redirects, images,
	// oEmbed): the guarded dialer, which checks the IP actually dialled.
	// Required.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Refused reports whether an error of DialContext is a refusal by
	// policy (the URL is then ErrForbidden, not ErrUnavailable). It is
	// given the whole error chain of the failed request; nil: never.
	Refused func(error) bool
	// AllowedDomains and DeniedDomains are host name globs ("*.example.org",
	// path.Match syntax, matched against the lower-case host without its
	// port); denied wins unless allowed names the host too. Allowed alone
	// restricts nothing.
	AllowedDomains, DeniedDomains []string
	// MaxBytes caps what is read of one response (default 10 MiB): an
	// HTML page is parsed as far as it fits, a larger image is refused.
	MaxBytes int64
	// Timeout bounds one Preview call, redirects and oEmbed included, and
	// one Image call (default 10 s).
	Timeout time.Duration
	// MaxRedirects followed by one request (0: default 5; negative: none).
	MaxRedirects int
	// UserAgent sent with every request (default DefaultUserAgent).
	UserAgent string
	// Providers are the oEmbed providers asked instead of fetching a page
	// whose URL one of their schemes matches. nil: the shipped list
	// (DefaultProviders); empty and non-nil: none.
	Providers []Provider
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.MaxRedirects == 0:
		o.MaxRedirects = DefaultMaxRedirects
	case o.MaxRedirects < 0:
		o.MaxRedirects = 0
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Refused == nil {
		o.Refused = func(error) bool { return false }
	}
	if o.Providers == nil {
		o.Providers = DefaultProviders()
	}
	return o
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	if o.DialContext == nil {
		return errors.New("preview: Options.DialContext is required")
	}
	if o.MaxBytes < 0 {
		return fmt.Errorf("preview: Options.MaxBytes %d is negative", o.MaxBytes)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("preview: Options.Timeout %s is negative", o.Timeout)
	}
	for _, globs := range [][]string{o.AllowedDomains, o.DeniedDomains} {
		for _, g := range globs {
			if err := validGlob(g); err != nil {
				return err
			}
		}
	}
	_, err := compileProviders(o.Providers)
	return err
}

// New returns a Fetcher for o, or an error when o does not validate.
func New(o Options) (*Fetcher, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	providers, err := compileProviders(o.Providers)
	if err != nil {
		return nil, err // the shipped list; TestDefaultProviders keeps it valid
	}
	f := &Fetcher{o: o, providers: providers}
	f.client = f.newClient()
	return f, nil
}
