package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/replication"
)

// `mxcas fsck -repair-from URL -secret-file FILE` repairs damaged and
// missing chunks from a live peer (a primary or a standby) through its
// replication listener, as -repair-from DIR does from a backup. When a
// server holds the store, the admin operation /repair-peer runs it there.

// newRemoteChunkSource makes a repair source of the replication listener
// at base, opened with secret; a source that is an io.Closer is closed
// after the repair. A variable so tests can stand in for the peer.
var newRemoteChunkSource = func(base string, secret []byte) (cas.Reader, error) {
	src := replication.NewChunkSource(base, secret, nil)
	return src, src.Err()
}

// peerRepair is a repair from a live peer, and the body of /repair-peer.
type peerRepair struct {
	From       string `json:"from"`        // the peer's replication listener, http(s)://host:port
	SecretFile string `json:"secret_file"` // the file holding the shared secret, an absolute path
}

// isPeerURL reports whether -repair-from names a peer rather than a
// directory.
func isPeerURL(from string) bool {
	return strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://")
}

// check refuses a request that names no peer or no secret file.
func (p peerRepair) check() error {
	u, err := url.Parse(p.From)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q is not an http(s) URL of a replication listener", media.ErrRepairSource, p.From)
	}
	if !filepath.IsAbs(p.SecretFile) {
		return fmt.Errorf("%w: repairing from %s needs -secret-file, the file holding the replication secret", media.ErrRepairSource, p.From)
	}
	return nil
}

// source makes the repair source of p: its secret read, the peer not
// asked anything yet.
func (p peerRepair) source() (cas.Reader, error) {
	secret, err := readSecret(p.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", media.ErrRepairSource, err)
	}
	src, err := newRemoteChunkSource(p.From, secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", media.ErrRepairSource, p.From, err)
	}
	return src, nil
}

// run repairs st from the peer.
func (p peerRepair) run(ctx context.Context, st *media.Store) (media.RepairReport, error) {
	src, err := p.source()
	if err != nil {
		return media.RepairReport{}, err
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	return st.RepairFromSource(ctx, src, p.From)
}

// repairPeer is the admin operation /repair-peer.
func (a *adminServer) repairPeer(w http.ResponseWriter, r *http.Request) (any, bool, error) {
	var req peerRepair
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"from\": URL, \"secret_file\": absolute path}"})
		return nil, false, nil
	}
	a.log.Info("admin: repair from a peer requested", "from", req.From)
	if err := req.check(); err != nil {
		return nil, true, err
	}
	res, err := req.run(r.Context(), a.st)
	return res, true, err
}

// repairOp is a repair fsck asks for: the admin operation and request that
// run it in a server holding the store, and run, which runs it here.
type repairOp struct {
	op   string
	req  any
	from string // the source, for the report
	run  func(context.Context, *media.Store) (media.RepairReport, error)
}

// newRepairOp checks fsck's -repair-from and -secret-file and returns the
// repair: from a peer (a URL), or from a data directory, made absolute.
func newRepairOp(from, secretFile string) (repairOp, error) {
	if isPeerURL(from) {
		p := peerRepair{From: from}
		if secretFile != "" {
			var err error
			if p.SecretFile, err = filepath.Abs(secretFile); err != nil {
				return repairOp{}, err
			}
		}
		return repairOp{op: "repair-peer", req: p, from: from, run: p.run}, p.check()
	}
	if secretFile != "" {
		return repairOp{}, errors.New("-secret-file goes with -repair-from URL (a live peer), not with a directory")
	}
	dir, err := filepath.Abs(from)
	if err != nil {
		return repairOp{}, err
	}
	run := func(ctx context.Context, st *media.Store) (media.RepairReport, error) { return st.RepairFrom(ctx, dir) }
	return repairOp{op: "repair", req: map[string]string{"from": dir}, from: dir, run: run}, nil
}
