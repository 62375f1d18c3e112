package main

import (
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// liveLimits copies the quotas and rate limits of next into a, the
// configuration a reload applies.
func liveLimits(a *config.Config, next config.Config) {
	a.Quotas = next.Quotas
	a.RateLimits = next.RateLimits
}

// prepareLimits builds applied's quotas and rate limits and returns the
// function that applies them. Either failing to build refuses the whole
// reload.
func (rl *reloader) prepareLimits(applied config.Config) (func(), error) {
	quotas := mediaQuotas(applied.Quotas)
	if err := media.ValidateQuotas(quotas); err != nil {
		return nil, err
	}
	rates := rateLimits(applied.RateLimits)
	if err := rates.Validate(); err != nil {
		return nil, err
	}
	return func() {
		if err := rl.store.SetQuotas(quotas); err != nil {
			// ValidateQuotas checked them; keep the old ones.
			rl.logger.Error("config reload: quotas kept", "err", err)
		}
		if err := rl.api.SetRateLimits(rates); err != nil {
			// Validate checked them; keep the old ones.
			rl.logger.Error("config reload: rate limits kept", "err", err)
		}
	}, nil
}
