package main

import "github.com/mxcas/mxcas/config"

// MERGE(issue 15: quotas): the one place where a reload hands [[quotas]]
// and [ratelimits] to the store and the API; rate limits are wired. At
// merge, for quotas:
//   - liveLimits: a.Quotas = next.Quotas (so they count as changed live,
//     not as needing a restart);
//   - prepareLimits: build the store's quotas from applied (an error
//     refuses the whole reload), and call rl.store.SetQuotas(...) in the
//     returned function.

// liveLimits copies the quotas and rate limits of next into a, the
// configuration a reload applies.
func liveLimits(a *config.Config, next config.Config) {
	a.RateLimits = next.RateLimits
}

// prepareLimits builds applied's quotas and rate limits and returns the
// function that applies them.
func (rl *reloader) prepareLimits(applied config.Config) (func(), error) {
	rates := rateLimits(applied.RateLimits)
	if err := rates.Validate(); err != nil {
		return nil, err
	}
	return func() {
		if err := rl.api.SetRateLimits(rates); err != nil {
			// Validate checked them; keep the old ones.
			rl.logger.Error("config reload: rate limits kept", "err", err)
		}
	}, nil
}
