package main

import (
	"errors"
	"log/slog"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/netguard"
	"github.com/mxcas/mxcas/preview"
)

// previewer builds the URL previewer of [url_previews], or nil when
// previews are off. Every connection it makes (pages, redirects, oEmbed,
// images) goes through a netguard guard: the built-in list of internal
// addresses always applies, denied_networks extends it, allowed_networks
// makes exceptions (checked first). A previewer that cannot be built (a
// configuration Validate let through that the preview package refuses)
// leaves previews off, with an error in the log: the media server keeps
// serving, and nothing is fetched.
func previewer(u config.URLPreviews, logger *slog.Logger) preview.Previewer {
	if !u.Enabled {
		logger.Info("url previews are off (url_previews.enabled = false)")
		return nil
	}
	guard := netguard.New(netguard.Options{Allowed: u.AllowedPrefixes(), Denied: u.DeniedPrefixes()})
	f, err := preview.New(preview.Options{
		DialContext:    guard.DialContext,
		Refused:        func(err error) bool { return errors.Is(err, netguard.ErrForbidden) },
		AllowedDomains: u.AllowedDomains,
		DeniedDomains:  u.DeniedDomains,
		MaxBytes:       u.MaxBytes,
		Timeout:        u.Timeout.Duration,
		MaxRedirects:   u.MaxRedirects,
		UserAgent:      u.UserAgent,
	})
	if err != nil {
		logger.Error("url previews are off: the previewer cannot start", "err", err)
		return nil
	}
	logger.Info("url previews refuse internal addresses except allowed_networks",
		"allowed_networks", u.AllowedNetworks, "denied_networks", u.DeniedNetworks,
		"denied_domains", u.DeniedDomains, "allowed_domains", u.AllowedDomains)
	return f
}
