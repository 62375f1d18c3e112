package config

import (
	"fmt"
	"math"
	"path"
	"strings"
)

// RateLimits is the [ratelimits] table: token buckets per user and per
// client IP for each kind of request. The client IP comes from
// X-Forwarded-For only with [server] trust_forwarded.
type RateLimits struct {
	Upload      RateKind `toml:"upload"`       // upload, create and PUT
	Download    RateKind `toml:"download"`     // downloads, client, legacy and federation
	Thumbnail   RateKind `toml:"thumbnail"`    // thumbnails, client, legacy and federation
	Preview     RateKind `toml:"preview"`      // preview_url
	RemoteFetch RateKind `toml:"remote_fetch"` // reads that fetch uncached remote media
	// ExemptAdmins: the homeserver's admins are never limited.
	ExemptAdmins bool `toml:"exempt_admins"`
	// ExemptAppservices: users matching AppserviceUsers are never
	// limited.
	ExemptAppservices bool `toml:"exempt_appservices"`
	// AppserviceUsers are user ID globs ("@_discord_*:example.org") of
	// the appservices' user namespaces and senders: IDs only an
	// appservice can act as.
	AppserviceUsers []string `toml:"appservice_users"`
	// MaxTracked bounds the buckets kept (least recently used go first;
	// a forgotten bucket starts full again).
	MaxTracked int `toml:"max_tracked"`
}

// RateKind is one [ratelimits.<kind>] table.
type RateKind struct {
	PerUser Rate `toml:"per_user"` // per user ID; per origin server for federation requests
	PerIP   Rate `toml:"per_ip"`   // per client IP (IPv6: per /64)
}

// Rate is a token bucket: Rate requests a second on average, Burst at
// once. Rate 0 is unlimited.
type Rate struct {
	Rate  float64 `toml:"rate"`
	Burst int     `toml:"burst"`
}

// maxTrackedLimit caps max_tracked (a few hundred bytes a bucket).
const maxTrackedLimit = 10_000_000

// defaultRateLimits is the [ratelimits] of Default: generous, for a flood
// rather than for a busy client (Synapse's rc_media_create is 10/s, burst
// 50). Per IP is looser than per user: many users share an address
// behind NAT.
func defaultRateLimits() RateLimits {
	kind := func(userRate float64, userBurst int) RateKind {
		return RateKind{PerUser: Rate{userRate, userBurst}, PerIP: Rate{4 * userRate, 4 * userBurst}}
	}
	return RateLimits{
		Upload:            kind(10, 50),
		Download:          kind(50, 500),
		Thumbnail:         kind(50, 500),
		Preview:           kind(2, 20),
		RemoteFetch:       kind(10, 100),
		ExemptAdmins:      true,
		ExemptAppservices: true,
		MaxTracked:        100_000,
	}
}

// NamedRateKind is a kind's limits with its name (its table's key).
type NamedRateKind struct {
	Name   string
	Limits RateKind
}

// Kinds returns every kind's limits, named, in a fixed order.
func (r RateLimits) Kinds() []NamedRateKind {
	return []NamedRateKind{{"upload", r.Upload}, {"download", r.Download}, {"thumbnail", r.Thumbnail}, {"preview", r.Preview}, {"remote_fetch", r.RemoteFetch}}
}

// validate checks every bucket, the appservice globs and max_tracked.
func (r RateLimits) validate() error {
	for _, k := range r.Kinds() {
		if err := k.Limits.PerUser.validate("ratelimits", k.Name, "per_user"); err != nil {
			return err
		}
		if err := k.Limits.PerIP.validate("ratelimits", k.Name, "per_ip"); err != nil {
			return err
		}
	}
	for _, g := range r.AppserviceUsers {
		_, err := path.Match(g, "")
		if !strings.HasPrefix(g, "@") || !strings.Contains(g, ":") || strings.ContainsAny(g, " \t\n/") || err != nil {
			return bad(fmt.Sprintf("want user ID globs such as \"@_bridge_*:example.org\", got %q", g), "ratelimits", "appservice_users")
		}
	}
	if r.MaxTracked <= 0 || r.MaxTracked > maxTrackedLimit {
		return bad(fmt.Sprintf("must be between 1 and %d", maxTrackedLimit), "ratelimits", "max_tracked")
	}
	return nil
}

// validate checks one bucket: a finite, non-negative rate and, when the
// rate limits anything, a burst of at least 1.
func (r Rate) validate(key ...string) error {
	switch {
	case math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate < 0:
		return bad(fmt.Sprintf("rate must be a non-negative number (0: unlimited), got %v", r.Rate), key...)
	case r.Burst < 0 || r.Burst > maxTrackedLimit:
		return bad(fmt.Sprintf("burst must be between 0 and %d, got %d", maxTrackedLimit, r.Burst), key...)
	case r.Rate > 0 && r.Burst < 1:
		return bad("burst must be at least 1 when rate is set (rate 0 is unlimited)", key...)
	}
	return nil
}
