package main

import (
	"log/slog"
	"slices"
	"strings"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/httpapi"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// reloader applies the configuration file again on SIGHUP, without
// dropping a connection. What changes live (liveConfig): static tokens,
// admins and client_api of the homeservers already served, federation
// routes, thumbnail sizes, the URL preview settings but cache_duration,
// log_level, quotas, rate limits and [gdpr]. Every other key (listen, data_dir,
// the set of homeservers and their signing keys, chunker and store
// settings, metrics listen...) is logged as needing a restart and keeps
// the value the server runs with. A file that does not load or validate,
// or whose live part cannot be built, is refused whole: nothing changes.
// Not safe for concurrent use: serve calls reload from one goroutine.
type reloader struct {
	cur         config.Config // what runs
	api         *httpapi.API
	store       *media.Store
	resolver    *matrix.Resolver
	level       *slog.LevelVar       // nil: the logger's level is not ours to change
	homeservers []httpapi.Homeserver // what api serves (signing keys loaded)
	logger      *slog.Logger
}

// reload reads the file again and applies what may change live. It logs
// "config reloaded" (with the keys changed) or "config reload refused"
// (with the reason), and the keys that need a restart.
func (rl *reloader) reload() {
	path := rl.cur.Source
	if path == config.Default().Source {
		rl.logger.Error("config reload refused", "err", "the server runs on the embedded default: there is no file to read")
		return
	}
	next, err := config.Load(path)
	if err != nil {
		rl.logger.Error("config reload refused", "config", path, "err", err)
		return
	}
	applied := liveConfig(rl.cur, next)
	apply, err := rl.prepare(applied)
	if err != nil {
		rl.logger.Error("config reload refused", "config", path, "err", err)
		return
	}
	changed, restart := reloadPlan(rl.cur, next, applied)
	apply()
	rl.cur = applied
	if len(restart) > 0 {
		rl.logger.Warn("config reload: keys that need a restart keep their running values", "keys", strings.Join(restart, ","))
	}
	rl.logger.Info("config reloaded", "config", path, "changed", strings.Join(changed, ","))
}

// reloadPlan names the keys a reload from cur to next changes live
// (cur -> applied) and those that differ but need a restart (applied ->
// next). Values are not returned: they may be secrets.
func reloadPlan(cur, next, applied config.Config) (changed, restart []string) {
	for _, c := range config.Diff(cur, applied) {
		changed = append(changed, c.Key)
	}
	for _, c := range config.Diff(applied, next) {
		restart = append(restart, c.Key)
	}
	return changed, restart
}

// liveConfig is cur with what may change live taken from next: the
// configuration the server runs with after a reload.
func liveConfig(cur, next config.Config) config.Config {
	a := cur
	a.Source = next.Source
	a.Server.LogLevel = next.Server.LogLevel
	a.Federation.Routes = next.Federation.Routes
	a.Thumbnails.Sizes = next.Thumbnails.Sizes
	a.URLPreviews = next.URLPreviews
	a.URLPreviews.CacheDuration = cur.URLPreviews.CacheDuration // the store's, fixed at open
	// Within the homeservers already served (by name): who may do what.
	// Adding or removing one, or changing its signing key, needs a
	// restart: the store's local names and the federation origin are
	// fixed at start.
	a.Homeservers = slices.Clone(cur.Homeservers)
	for i, hs := range a.Homeservers {
		for _, n := range next.Homeservers {
			if strings.EqualFold(n.Name, hs.Name) {
				a.Homeservers[i].Admins, a.Homeservers[i].StaticTokens, a.Homeservers[i].ClientAPI = n.Admins, n.StaticTokens, n.ClientAPI
			}
		}
	}
	liveLimits(&a, next)
	a.GDPR = next.GDPR
	return a
}

// prepare builds everything applied needs that can fail, and returns the
// function that puts it in place (which cannot fail).
func (rl *reloader) prepare(applied config.Config) (func(), error) {
	sizes, err := thumbnailSizes(applied.Thumbnails.Sizes)
	if err != nil {
		return nil, err
	}
	pv, err := previewer(applied.URLPreviews, rl.logger)
	if err != nil {
		return nil, err
	}
	hss := slices.Clone(rl.homeservers)
	for i := range hss {
		hs := applied.Homeservers[i] // same names, same order (liveConfig)
		hss[i].Admins, hss[i].StaticTokens, hss[i].ClientAPI = hs.Admins, hs.StaticTokens, hs.ClientAPI
	}
	limits, err := rl.prepareLimits(applied)
	if err != nil {
		return nil, err
	}
	gdpr, err := rl.prepareSelfExport(applied)
	if err != nil {
		return nil, err
	}
	return func() {
		if err := rl.store.SetThumbnailSizes(sizes); err != nil {
			// thumbnailSizes checked them; keep the old ones.
			rl.logger.Error("config reload: thumbnail sizes kept", "err", err)
		}
		rl.store.SetPreviewer(pv)
		if err := rl.api.SetHomeservers(hss); err != nil {
			rl.logger.Error("config reload: homeservers kept", "err", err)
		} else {
			rl.homeservers = hss
		}
		rl.resolver.SetRoutes(applied.Federation.Routes)
		if rl.level != nil {
			rl.level.Set(applied.Server.Level())
		}
		limits()
		gdpr()
	}, nil
}
