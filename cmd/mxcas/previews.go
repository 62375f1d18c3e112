package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/netguard"
	"github.com/mxcas/mxcas/preview"
)

// previewer builds the URL previewer of [url_previews], or nil when
// previews are off. Every connection it makes (pages, redirects, oEmbed,
// images) goes through a netguard guard: the built-in list of internal
// addresses always applies, denied_networks extends it, allowed_networks
// makes exceptions (checked first). A previewer the preview package
// refuses to build is an error: serve does not start.
func previewer(u config.URLPreviews, logger *slog.Logger) (preview.Previewer, error) {
	if !u.Enabled {
		logger.Info("url previews are off (url_previews.enabled = false)")
		return nil, nil
	}
	maxRedirects := u.MaxRedirects
	if maxRedirects == 0 {
		maxRedirects = -1 // preview.Options: 0 is the default, negative none
	}
	guard := netguard.New(netguard.Options{Allowed: u.AllowedPrefixes(), Denied: u.DeniedPrefixes()})
	f, err := preview.New(preview.Options{
		DialContext:    guard.DialContext,
		Refused:        func(err error) bool { return errors.Is(err, netguard.ErrForbidden) },
		AllowedDomains: u.AllowedDomains,
		DeniedDomains:  u.DeniedDomains,
		MaxBytes:       u.MaxBytes,
		Timeout:        u.Timeout.Duration,
		MaxRedirects:   maxRedirects,
		UserAgent:      u.UserAgent,
	})
	if err != nil {
		return nil, fmt.Errorf("url_previews: %w", err)
	}
	logger.Info("url previews refuse internal addresses except allowed_networks",
		"allowed_networks", u.AllowedNetworks, "denied_networks", u.DeniedNetworks,
		"denied_domains", u.DeniedDomains, "allowed_domains", u.AllowedDomains)
	return f, nil
}
