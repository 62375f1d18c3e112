package main

import (
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// mediaQuotas turns the [[quotas]] tables into the store's quotas, in
// order (first match wins): for media.Options.Quotas at open, and for
// (*media.Store).SetQuotas on a reload.
func mediaQuotas(list []config.Quota) []media.Quota {
	qs := make([]media.Quota, 0, len(list))
	for _, q := range list {
		qs = append(qs, media.Quota{Users: q.Users, MaxBytes: q.MaxBytes, MaxFiles: q.MaxFiles, MaxPending: q.MaxPending})
	}
	return qs
}
