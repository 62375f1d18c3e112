package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mxcas/mxcas/matrix"
)

// source opens a row's bytes: the file in media_store, else the homeserver
// (asked for m, the row's media ID).
type source struct {
	o      options
	client *http.Client
}

func (s source) open(ctx context.Context, r row, m matrix.MXC) (io.ReadCloser, error) {
	var fileErr error
	if s.o.mediaStore != "" {
		if p, err := r.path(); err != nil {
			fileErr = err
		} else if f, err := os.Open(filepath.Join(s.o.mediaStore, p)); err == nil {
			return f, nil
		} else {
			fileErr = err
		}
	}
	if s.o.baseURL == "" {
		return nil, fileErr
	}
	u := strings.TrimRight(s.o.baseURL, "/") + "/_matrix/client/v1/media/download/" + url.PathEscape(m.Server()) + "/" + url.PathEscape(m.MediaID())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if s.o.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.o.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("not on disk (%v), and fetching it failed: %w", fileErr, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("not on disk (%v), and the homeserver answered %s", fileErr, resp.Status)
	}
	return resp.Body, nil
}

// path is where Synapse keeps the row's file, relative to media_store.
func (r row) path() (string, error) {
	id := r.mediaID
	switch {
	case r.remote:
		f := r.fsID
		if len(f) < 5 || strings.ContainsAny(f, "/\\.") || strings.ContainsAny(r.origin, "/\\") || r.origin == "" {
			return "", fmt.Errorf("bad filesystem_id %q or origin %q", f, r.origin)
		}
		return filepath.Join("remote_content", r.origin, f[0:2], f[2:4], f[4:]), nil
	case r.urlCache:
		if strings.ContainsAny(id, "/\\") || strings.Contains(id, "..") {
			return "", fmt.Errorf("bad URL-cache media ID %q", id)
		}
		if date, rest, ok := strings.Cut(id, "_"); ok && isDate(date) && rest != "" {
			return filepath.Join("url_cache", date, rest), nil
		}
		if len(id) < 5 { // before Synapse dated them: url_cache/ab/cd/rest
			return "", fmt.Errorf("bad URL-cache media ID %q", id)
		}
		return filepath.Join("url_cache", id[0:2], id[2:4], id[4:]), nil
	default:
		if len(id) < 5 || strings.ContainsAny(id, "/\\") || strings.Contains(id, "..") {
			return "", fmt.Errorf("bad media ID %q", id)
		}
		return filepath.Join("local_content", id[0:2], id[2:4], id[4:]), nil
	}
}

// isDate reports whether s looks like YYYY-MM-DD.
func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i, c := range s {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
