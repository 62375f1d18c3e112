package preview

import (
	"fmt"
	"net/netip"
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
	if !webScheme(u.Scheme) {
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

// checkURL checks u's shape, its host's form (checkHost) and its host
// against the domain globs; a denied host wraps ErrForbidden. Addresses
// are the dialer's to check.
func (f *Fetcher) checkURL(u *url.URL) error {
	if err := checkShape(u); err != nil {
		return err
	}
	if err := checkHost(u.Hostname()); err != nil {
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

// checkHost refuses, wrapping ErrForbidden, a host that is an IPv4
// address in any form but dotted decimal (2130706433, 0177.0.0.1, 0x7f.1,
// 127.1, 127.0.0.1.): the WHATWG URL standard, browsers and some resolvers
// read a host whose last label is a number as IPv4, others as a name, so
// what it reaches depends on who reads it. Names and canonical IP
// literals pass: their addresses are the dialer's to check.
func checkHost(host string) error {
	host = strings.ToLower(host)
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if isNumber(labels[len(labels)-1]) {
		return fmt.Errorf("%w: %s is an IPv4 address in a form other than dotted decimal", ErrForbidden, host)
	}
	return nil
}

// isNumber reports whether label is a number as the WHATWG URL standard
// reads IPv4 parts: decimal, octal (leading 0) or hexadecimal (0x).
func isNumber(label string) bool {
	if label == "" {
		return false
	}
	digits := "0123456789"
	if l, ok := strings.CutPrefix(label, "0x"); ok {
		label, digits = l, "0123456789abcdef"
		if label == "" {
			return true // "0x" is 0
		}
	}
	return strings.Trim(label, digits) == ""
}
