package config

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

// URLPreviews is the [url_previews] table: GET .../preview_url.
type URLPreviews struct {
	// Enabled: false turns the endpoint off (404 M_UNRECOGNIZED) and makes
	// no outbound request.
	Enabled bool `toml:"enabled"`
	// DeniedNetworks are CIDR prefixes refused on top of the built-in list
	// of internal addresses (loopback, RFC 1918, link-local with
	// 169.254.169.254, CGNAT, unique-local, multicast, unspecified, reserved,
	// and IPv6 forms embedding them), which always applies.
	DeniedNetworks []string `toml:"denied_networks"`
	// AllowedNetworks are exceptions, checked first: an address in one of
	// them is dialled even when the built-in list or DeniedNetworks
	// names it.
	AllowedNetworks []string `toml:"allowed_networks"`
	// DeniedDomains and AllowedDomains are host name globs
	// ("*.example.org"); a denied host is refused unless allowed names it.
	DeniedDomains  []string `toml:"denied_domains"`
	AllowedDomains []string `toml:"allowed_domains"`
	// MaxBytes caps what is read of one page or image.
	MaxBytes int64 `toml:"max_bytes"`
	// Timeout bounds fetching a page (redirects and oEmbed included), and
	// separately its image.
	Timeout Duration `toml:"timeout"`
	// MaxRedirects followed per fetch (0 to 20; 0: none).
	MaxRedirects int `toml:"max_redirects"`
	// UserAgent is sent with every preview request.
	UserAgent string `toml:"user_agent"`
	// CacheDuration is how long after the end of its hour a preview is
	// kept (at least 1h): GC then removes it, and a request for that hour
	// gets the current hour's. The images stay as media.
	CacheDuration Duration `toml:"cache_duration"`
}

// defaultURLPreviews is the [url_previews] of Default.
func defaultURLPreviews() URLPreviews {
	return URLPreviews{
		Enabled:       true,
		MaxBytes:      10 << 20,
		Timeout:       Duration{10 * time.Second},
		MaxRedirects:  5,
		UserAgent:     "mxcas (bot; URL previews)",
		CacheDuration: Duration{24 * time.Hour},
	}
}

// AllowedPrefixes returns AllowedNetworks parsed and masked (Validate
// refuses entries that do not parse; they are skipped).
func (u URLPreviews) AllowedPrefixes() []netip.Prefix { return prefixes(u.AllowedNetworks) }

// DeniedPrefixes returns DeniedNetworks parsed and masked.
func (u URLPreviews) DeniedPrefixes() []netip.Prefix { return prefixes(u.DeniedNetworks) }

// validate checks the networks, domain globs and fetch limits. A disabled
// table is checked too: turning it on must not reveal old mistakes.
func (u URLPreviews) validate() error {
	if err := validateNetworks(u.DeniedNetworks, "url_previews", "denied_networks"); err != nil {
		return err
	}
	if err := validateNetworks(u.AllowedNetworks, "url_previews", "allowed_networks"); err != nil {
		return err
	}
	if err := validateGlobs(u.DeniedDomains, "denied_domains"); err != nil {
		return err
	}
	if err := validateGlobs(u.AllowedDomains, "allowed_domains"); err != nil {
		return err
	}
	switch {
	case u.MaxBytes <= 0:
		return bad("must be positive", "url_previews", "max_bytes")
	case u.Timeout.Duration <= 0:
		return bad("must be positive", "url_previews", "timeout")
	case u.MaxRedirects < 0 || u.MaxRedirects > 20:
		return bad("must be between 0 and 20", "url_previews", "max_redirects")
	case strings.TrimSpace(u.UserAgent) == "":
		return bad("must not be empty", "url_previews", "user_agent")
	case strings.ContainsFunc(u.UserAgent, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("must not hold control characters", "url_previews", "user_agent")
	case u.CacheDuration.Duration < time.Hour:
		return bad("must be at least 1h", "url_previews", "cache_duration")
	}
	return nil
}

// validateGlobs checks host name globs: not empty, no scheme, port or path,
// valid path.Match syntax.
func validateGlobs(globs []string, key string) error {
	for _, g := range globs {
		_, err := path.Match(g, "")
		if g == "" || strings.ContainsAny(g, "/:@ ") || err != nil {
			return bad(fmt.Sprintf("want host name globs such as \"*.example.org\", got %q", g), "url_previews", key)
		}
	}
	return nil
}

// prefixes parses and masks CIDR prefixes, skipping those that do not
// parse (Validate refuses them).
func prefixes(list []string) []netip.Prefix {
	var ps []netip.Prefix
	for _, n := range list {
		if p, err := netip.ParsePrefix(strings.TrimSpace(n)); err == nil {
			ps = append(ps, p.Masked())
		}
	}
	return ps
}

// validateNetworks checks that every entry of list (at key) is a CIDR
// prefix.
func validateNetworks(list []string, key ...string) error {
	for _, n := range list {
		if _, err := netip.ParsePrefix(strings.TrimSpace(n)); err != nil {
			return bad(fmt.Sprintf("want CIDR prefixes such as \"10.0.0.0/8\" or \"fd00::/8\", got %q", n), key...)
		}
	}
	return nil
}
