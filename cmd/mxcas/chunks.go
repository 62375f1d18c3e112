package main

import (
	"fmt"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/config"
)

// openChunks opens the chunk storage [storage] names, without the data
// directory's lock or the cache (a migration's destination, whose
// directory must stay empty until it is written): nil for the local
// backend (media opens DATA/cas itself), an s3store for s3.
func openChunks(cfg config.Config) (cas.Storage, error) {
	sc := cfg.Storage
	if sc.Backend != config.BackendS3 {
		return nil, nil
	}
	access, secret, _, err := s3Credentials(sc.CredentialsFile)
	if err != nil {
		return nil, err
	}
	st, err := s3store.Open(s3store.Options{Endpoint: sc.Endpoint, Bucket: sc.Bucket, Region: sc.Region,
		Prefix: sc.Prefix, UseSSL: sc.UseSSL, AccessKey: access, SecretKey: secret})
	if err != nil {
		return nil, fmt.Errorf("[storage] backend s3: %w", err)
	}
	return st, nil
}
