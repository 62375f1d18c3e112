package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/config"
)

// openChunks opens the chunk storage [storage] names: nil for the local
// backend (media opens DATA/cas itself), an s3store for s3, with the
// credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
func openChunks(cfg config.Config) (cas.Storage, error) {
	sc := cfg.Storage
	if sc.Backend != config.BackendS3 {
		return nil, nil
	}
	access, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if access == "" || secret == "" {
		return nil, errors.New("[storage] backend s3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	st, err := s3store.Open(s3store.Options{Endpoint: sc.Endpoint, Bucket: sc.Bucket, Region: sc.Region,
		Prefix: sc.Prefix, UseSSL: sc.UseSSL, AccessKey: access, SecretKey: secret})
	if err != nil {
		return nil, fmt.Errorf("[storage] backend s3: %w", err)
	}
	return st, nil
}
