package main

import "github.com/mxcas/mxcas/config"

// MERGE(issue 15: quotas, ratelimits): the one place where a reload hands
// [[quotas]] and [ratelimits] to the store and the API. At merge:
//   - liveLimits: a.Quotas, a.RateLimits = next.Quotas, next.RateLimits
//     (so they count as changed live, not as needing a restart);
//   - prepareLimits: build the store's quotas and the API's rate limits
//     from applied (an error refuses the whole reload), and return a
//     function calling rl.store.SetQuotas(...) and
//     rl.api.SetRateLimits(...).

// liveLimits copies the quotas and rate limits of next into a, the
// configuration a reload applies.
func liveLimits(a *config.Config, next config.Config) {}

// prepareLimits builds applied's quotas and rate limits and returns the
// function that applies them.
func (rl *reloader) prepareLimits(applied config.Config) (func(), error) {
	return func() {}, nil
}
