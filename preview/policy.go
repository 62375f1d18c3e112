package preview

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// parseURL parses a URL a preview may be made of: absolute http or https,
// a host, no userinfo. Every failure wraps ErrBadURL.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if err := checkShape(u); err != nil {
		return nil, err
	}
	return u, nil
}

// checkShape checks what parseURL checks on an already parsed URL (a
// redirect's target).
func checkShape(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return fmt.Errorf("%w: scheme %q is not http or https", ErrBadURL, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: userinfo is not allowed", ErrBadURL)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: no host", ErrBadURL)
	}
	return nil
}

// checkURL checks u's shape and its host against the domain globs; a
// denied host wraps ErrForbidden. Addresses are the dialer's to check.
func (f *Fetcher) checkURL(u *url.URL) error {
	if err := checkShape(u); err != nil {
		return err
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if matchAny(f.o.DeniedDomains, host) && !matchAny(f.o.AllowedDomains, host) {
		return fmt.Errorf("%w: domain %s is denied", ErrForbidden, host)
	}
	return nil
}

// matchAny reports whether one of globs matches host.
func matchAny(globs []string, host string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(strings.ToLower(g), host); ok {
			return true
		}
	}
	return false
}

// validGlob reports a glob path.Match cannot use.
func validGlob(g string) error {
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("preview: domain glob %q: %v", g, err)
	}
	return nil
}
