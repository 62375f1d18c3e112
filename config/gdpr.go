package config

import "time"

// GDPR is the [gdpr] table: users' exports of their own media.
type GDPR struct {
	// SelfService lets a user export their own media (POST
	// /_mxcas/v1/export) and download the archive's parts with their
	// token. Off by default: 404 M_UNRECOGNIZED.
	SelfService bool `toml:"self_service"`
	// ExportTTL is how long an export's parts stay downloadable (at least
	// 1m); GC then removes them.
	ExportTTL Duration `toml:"export_ttl"`
	// PartSize is the media bytes per part of the archive (matrix-media-
	// repo's default, 100 MiB).
	PartSize int64 `toml:"part_size"`
}

// defaultGDPR is the [gdpr] of Default.
func defaultGDPR() GDPR {
	return GDPR{ExportTTL: Duration{24 * time.Hour}, PartSize: 100 << 20}
}

// validate checks the TTL and the part size, also while self_service is
// off: turning it on must not reveal old mistakes.
func (g GDPR) validate() error {
	switch {
	case g.ExportTTL.Duration < time.Minute:
		return bad("must be at least 1m", "gdpr", "export_ttl")
	case g.PartSize < 1<<20:
		return bad("must be at least 1048576 (1 MiB)", "gdpr", "part_size")
	}
	return nil
}
