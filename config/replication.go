package config

import (
	"fmt"
	"net"
)

// Replication is the [replication] table (issue 17): a primary serves its
// change log and chunks on a listener of its own; a standby follows a
// primary. Changes take effect at the next start (a reload refuses them).
type Replication struct {
	// Listen is the host:port of the replication listener, which serves
	// this store's change log and chunks to standbys; "" (the default)
	// serves none. It may be a public address: every request must carry
	// the shared secret.
	Listen string `toml:"listen"`
	// Primary, on a standby, is the base URL of the primary's replication
	// listener ("http://10.0.0.1:8009"); "" (the default): not a standby.
	// A standby with Listen set too serves what it has applied onward.
	Primary string `toml:"primary"`
	// SecretFile holds the secret shared by a primary and its standbys
	// (at least 16 bytes; surrounding white space is ignored; not readable
	// by others). Relative to the config file's directory.
	SecretFile string `toml:"secret_file"`
	// TLSCert and TLSKey (PEM files, both or neither) make the replication
	// listener serve HTTPS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSCA (a PEM file) is the certificate authority a standby trusts for
	// an https:// primary, besides the system's.
	TLSCA string `toml:"tls_ca"`
	// KeepChanges is how many of the latest changes GC keeps in the change
	// log: a standby further behind must be seeded again from a backup.
	KeepChanges int64 `toml:"keep_changes"`
}

// DefaultKeepChanges is keep_changes' default (media.DefaultKeepChanges;
// config imports no project package, a test in cmd/mxcas checks they agree).
const DefaultKeepChanges = 1_000_000

// validate checks the addresses, that a secret is configured wherever one
// is needed, the TLS files' pairing and the log's length.
func (r Replication) validate() error {
	if r.Listen != "" {
		if _, _, err := net.SplitHostPort(r.Listen); err != nil {
			return bad(fmt.Sprintf("want host:port or \"\" (off), got %q", r.Listen), "replication", "listen")
		}
	}
	if r.Primary != "" && !validBaseURL(r.Primary) {
		return bad(fmt.Sprintf("want the http:// or https:// URL of the primary's replication listener, got %q", r.Primary), "replication", "primary")
	}
	const needsSecret = "needs [replication] secret_file: every replication request carries the shared secret"
	if r.Listen != "" && r.SecretFile == "" {
		return bad(needsSecret, "replication", "listen")
	}
	if r.Primary != "" && r.SecretFile == "" {
		return bad(needsSecret, "replication", "primary")
	}
	if (r.TLSCert == "") != (r.TLSKey == "") {
		return bad("tls_cert and tls_key go together: set both or neither", "replication", "tls_key")
	}
	if r.TLSCert != "" && r.Listen == "" {
		return bad("needs [replication] listen: the certificate is served on the replication listener", "replication", "tls_cert")
	}
	if r.KeepChanges <= 0 {
		return bad("must be positive", "replication", "keep_changes")
	}
	return nil
}
