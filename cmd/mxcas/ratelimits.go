package main

import (
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/httpapi"
)

// rateKinds maps the [ratelimits] tables to the API's kinds.
var rateKinds = map[string]httpapi.RateKind{
	"upload":       httpapi.RateUpload,
	"download":     httpapi.RateDownload,
	"thumbnail":    httpapi.RateThumbnail,
	"preview":      httpapi.RatePreview,
	"remote_fetch": httpapi.RateRemoteFetch,
}

// rateLimits turns [ratelimits] into the API's rate limits, at start and
// on reload ((*httpapi.API).SetRateLimits). Unlimited kinds are left out;
// exempt_appservices exempts appservice_users.
func rateLimits(c config.RateLimits) httpapi.RateLimits {
	l := httpapi.RateLimits{Kinds: make(map[httpapi.RateKind]httpapi.RateLimit), ExemptAdmins: c.ExemptAdmins, MaxTracked: c.MaxTracked}
	for _, k := range c.Kinds() {
		rl := httpapi.RateLimit{
			PerUser: httpapi.Rate{PerSecond: k.Limits.PerUser.Rate, Burst: k.Limits.PerUser.Burst},
			PerIP:   httpapi.Rate{PerSecond: k.Limits.PerIP.Rate, Burst: k.Limits.PerIP.Burst},
		}
		if rl != (httpapi.RateLimit{}) {
			l.Kinds[rateKinds[k.Name]] = rl
		}
	}
	if c.ExemptAppservices {
		l.ExemptUsers = c.AppserviceUsers
	}
	return l
}
