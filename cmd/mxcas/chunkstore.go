package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// s3ChunkParams are the chunker parameters of a new store with backend
// s3: every chunk is a PUT when stored and a GET when read, so chunks are
// 16 times larger than the local store's (1 MiB average). A store keeps
// the parameters in its FORMAT; changing these changes new stores only.
var s3ChunkParams = chunker.Params{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}

// chunksAt names where [storage] keeps the chunks, as FORMAT records it:
// "" for the data directory's cas/, "s3 BUCKET/PREFIX" for a bucket. The
// endpoint is left out: the same bucket may be reached by another address.
func chunksAt(s config.Storage) string {
	if s.Backend != config.BackendS3 {
		return ""
	}
	return "s3 " + s.Bucket + "/" + s3Prefix(s.Prefix)
}

// s3Prefix is the key prefix as s3store uses it: "" or ending in "/".
func s3Prefix(p string) string {
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// openStore opens the store with options mo (from mediaOptions), on the
// chunk storage [storage] names.
func openStore(cfg config.Config, mo media.Options, logger *slog.Logger) (*media.Store, error) {
	var err error
	if mo.Chunks, err = openChunkStore(cfg, mo.Create, mo.ReadOnly, logger); err != nil {
		return nil, err
	}
	return media.Open(mo) // owns mo.Chunks, even when it fails
}

// openChunkStore opens the chunk storage [storage] names for the store in
// cfg.Server.DataDir: nil for the local backend (media opens DATA/cas
// itself, with its lock). For s3 it takes the data directory's lock
// (DATA/tmp/LOCK, as the local store does: ErrLocked when another process
// holds it, so maintenance commands ask the running server), connects to
// the bucket and, when cache_bytes > 0, puts the hot-chunk cache in front.
// create: the caller may create a store; without it, a directory that is
// no store is left for media.Open to refuse, untouched. readOnly leaves
// the cache out: every read would fill it (a write), and a check wants the
// bucket's bytes anyway. The returned storage releases the lock when
// closed.
func openChunkStore(cfg config.Config, create, readOnly bool, logger *slog.Logger) (cas.Storage, error) {
	sc := cfg.Storage
	if sc.Backend != config.BackendS3 {
		return nil, nil
	}
	dir := cfg.Server.DataDir
	if _, err := os.Stat(filepath.Join(dir, "FORMAT")); !create && err != nil {
		return nil, nil
	}
	lock, err := cas.LockDir(dir)
	if err != nil {
		return nil, err
	}
	access, secret, from, err := s3Credentials(sc.CredentialsFile)
	if err != nil {
		lock.Close()
		return nil, err
	}
	st, err := s3store.Open(s3store.Options{
		Endpoint: sc.Endpoint, Bucket: sc.Bucket, Region: sc.Region, Prefix: sc.Prefix,
		UseSSL: sc.UseSSL, AccessKey: access, SecretKey: secret,
		Shared: cfg.Index.Backend == config.IndexPostgres, // other nodes' GC deletes chunks
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("[storage] backend s3: %w", err)
	}
	logger.Info("chunks in S3", "endpoint", sc.Endpoint, "bucket", sc.Bucket, "prefix", s3Prefix(sc.Prefix),
		"use_ssl", sc.UseSSL, "credentials", from, "cache_bytes", sc.CacheBytes)
	var chunks cas.Storage = st
	if sc.CacheBytes > 0 && !readOnly {
		c, err := s3store.NewCache(st, filepath.Join(dir, "cache"), sc.CacheBytes)
		if err != nil {
			st.Close()
			lock.Close()
			return nil, fmt.Errorf("[storage] cache_bytes: %w", err)
		}
		chunks = c
	}
	return &lockedChunks{Storage: chunks, lock: lock}, nil
}

// lockedChunks is a chunk storage holding its data directory's lock until
// it is closed.
type lockedChunks struct {
	cas.Storage
	lock *os.File
}

var _ cas.Storage = (*lockedChunks)(nil)

func (l *lockedChunks) Close() error {
	err := l.Storage.Close()
	l.lock.Close()
	return err
}

// s3Credentials returns the object store's access key and secret: from
// file when [storage] credentials_file names one, else from
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. from says which, for the
// log (never the values).
func s3Credentials(file string) (access, secret, from string, err error) {
	if file == "" {
		access, secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if access == "" || secret == "" {
			return "", "", "", errors.New("[storage] backend s3: no credentials: set credentials_file, " +
				"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
		}
		return access, secret, "environment", nil
	}
	access, secret, err = readS3Credentials(file)
	if err != nil {
		return "", "", "", fmt.Errorf("[storage] credentials_file: %w", err)
	}
	return access, secret, "file " + file, nil
}

// readS3Credentials reads a credentials file, which others may not read:
// lines "access_key_id = ..." and "secret_access_key = ...", or an AWS
// credentials file, whose [default] profile gives aws_access_key_id and
// aws_secret_access_key. Blank lines and lines starting with # or ; are
// comments. Messages never quote a value.
func readS3Credentials(path string) (access, secret string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return "", "", fmt.Errorf("%s is readable by every user (mode %v): chmod o-r it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[' && line[len(line)-1] == ']':
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		case section != "" && section != "default":
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return "", "", fmt.Errorf("%s:%d: want key = value", path, n)
		}
		switch strings.TrimSpace(key) {
		case "access_key_id", "aws_access_key_id":
			access = strings.TrimSpace(val)
		case "secret_access_key", "aws_secret_access_key":
			secret = strings.TrimSpace(val)
		}
	}
	if access == "" || secret == "" {
		return "", "", fmt.Errorf("%s: want access_key_id and secret_access_key (or an AWS credentials file's [default] profile)", path)
	}
	return access, secret, nil
}
