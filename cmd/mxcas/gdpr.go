package main

import (
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/httpapi"
)

// selfExport turns [gdpr] into the API's self-service export settings.
// All of them change live on reload (liveConfig); exports already written
// keep the expiry they were given.
func selfExport(g config.GDPR) httpapi.SelfExport {
	return httpapi.SelfExport{Enabled: g.SelfService, TTL: g.ExportTTL.Duration, PartSize: g.PartSize}
}

// prepareSelfExport builds applied's self-service export settings and
// returns the function that applies them; bad ones refuse the reload.
func (rl *reloader) prepareSelfExport(applied config.Config) (func(), error) {
	se := selfExport(applied.GDPR)
	if err := se.Validate(); err != nil {
		return nil, err
	}
	return func() {
		if err := rl.api.SetSelfExport(se); err != nil {
			// Validate checked them; keep the old ones.
			rl.logger.Error("config reload: self-service export settings kept", "err", err)
		}
	}, nil
}
