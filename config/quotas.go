package config

import (
	"fmt"
	"strings"
	"unicode"
)

// Quota is one [[quotas]] table. The first table whose users glob matches
// a user ID applies to that user; a user no table names has no quota. A
// limit of 0 (or left out) is no limit in that dimension, so a table with
// no limits, listed first, exempts the users it names.
type Quota struct {
	// Users is a glob over user IDs: "*" matches any run of characters,
	// "?" one character, anything else itself ("@*:example.org",
	// "@bot-*:*").
	Users string `toml:"users"`
	// MaxBytes caps the bytes of the user's uploads (as uploaded: the same
	// file twice counts twice).
	MaxBytes int64 `toml:"max_bytes"`
	// MaxFiles caps the number of the user's uploads.
	MaxFiles int64 `toml:"max_files"`
	// MaxPending caps the user's created IDs without content, in place of
	// [uploads] max_pending_per_user.
	MaxPending int `toml:"max_pending"`
}

// validateQuotas checks every [[quotas]] table: a glob that can match a
// user ID (it starts with "@", "*" or "?" and holds no space), and no
// negative limit. Messages number the tables from 1.
func validateQuotas(list []Quota) error {
	for i, q := range list {
		if q.Users == "" || !strings.ContainsAny(q.Users[:1], "@*?") ||
			strings.ContainsFunc(q.Users, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return bad(fmt.Sprintf("[[quotas]] %d: want a user ID glob such as \"@*:example.org\", got %q", i+1, q.Users), "quotas", "users")
		}
		for _, l := range []struct {
			key string
			v   int64
		}{{"max_bytes", q.MaxBytes}, {"max_files", q.MaxFiles}, {"max_pending", int64(q.MaxPending)}} {
			if l.v < 0 {
				return bad(fmt.Sprintf("[[quotas]] %d (%s): must not be negative (0: no limit)", i+1, q.Users), "quotas", l.key)
			}
		}
	}
	return nil
}
