package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
)

// TestServeGCErasesDeletedMedia: media deleted through the admin API is
// erased by serve's own GC (nobody runs mxcas gc): the chunk files only it
// used are gone from DATA/cas, those it shared stay, the other media reads
// whole, the deleted one is 404, and mxcas fsck is clean.
func TestServeGCErasesDeletedMedia(t *testing.T) {
	s := startE2E(t, func(c *config.Config) {
		withAdmins(c)
		c.Thumbnails.Pregenerate = false // their chunks would blur the counts
		c.Storage.GCInterval = config.Duration{Duration: 50 * time.Millisecond}
	})
	shared := content(1, 512<<10)
	a := append(append([]byte(nil), shared...), content(2, 512<<10)...)
	b := append(append([]byte(nil), shared...), content(3, 512<<10)...)
	idA := s.upload(t, hostA, aliceToken, "", "application/octet-stream", a)
	idB := s.upload(t, hostA, bobToken, "", "application/octet-stream", b)

	scratch := filepath.Join(t.TempDir(), "scratch") // same default chunker as the server
	chunksA, chunksB := chunkHashes(t, scratch, a), chunkHashes(t, scratch, b)
	own := map[cas.Hash]bool{}
	for _, h := range chunksA {
		own[h] = true
	}
	for _, h := range chunksB {
		delete(own, h)
	}
	if len(own) == 0 || len(own) == len(chunksA) {
		t.Fatalf("test data: %d of A's %d chunks are its own; want some but not all", len(own), len(chunksA))
	}
	// Every chunk older than gc_grace, rather than waiting for it.
	old := time.Now().Add(-2 * time.Hour)
	for _, h := range append(chunksA, chunksB...) {
		if err := os.Chtimes(chunkFile(s.dataDir, h), old, old); err != nil {
			t.Fatalf("chunk %s not stored where expected: %v", h.Short(), err)
		}
	}

	r := s.do(t, http.MethodDelete, hostA, "/_synapse/admin/v1/media/"+hostA+"/"+idA, aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) || string(r.Body) != fmt.Sprintf(`{"deleted_media":["%s"],"total":1}`+"\n", idA) {
		t.Fatalf("%s: %s", r.what, r.Body)
	}
	if !s.log.waitFor(e2eBound, `msg="gc done"`, "objects_deleted=1 ", fmt.Sprintf("chunks_deleted=%d ", len(own))) {
		t.Fatalf("no gc done deleting A's object and its %d own chunks", len(own))
	}
	for _, h := range chunksA {
		_, err := os.Stat(chunkFile(s.dataDir, h))
		if gone := os.IsNotExist(err); gone != own[h] {
			t.Errorf("chunk %s (A's own: %v): gone %v", h.Short(), own[h], gone)
		}
	}
	wantBytes(t, s.download(t, hostA, hostA, idB, bobToken), b)
	wantError(t, s.download(t, hostA, hostA, idA, bobToken), http.StatusNotFound, "M_NOT_FOUND")
	if code, out, errs := runMain(t, "fsck", "-config", writeConfig(t, s.dataDir)); code != 0 {
		t.Errorf("fsck: exit %d, want 0:\n%s%s", code, out, errs)
	}
}

// farOrigin is a remote homeserver serving media "<id>" as the bytes
// "media <id>" over federation, counting requests per media ID.
func farOrigin(t *testing.T) (*httptest.Server, map[string]*atomic.Int64) {
	t.Helper()
	hits := map[string]*atomic.Int64{"old": {}, "new": {}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/_matrix/federation/v1/media/download/")
		if n := hits[id]; ok && n != nil {
			n.Add(1)
			b := matrix.NewBoundary()
			w.Header().Set("Content-Type", matrix.MultipartContentType(b))
			matrix.WriteMultipart(w, b, "text/plain", "inline", strings.NewReader("media "+id))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

// TestPurgeMediaCache: purge_media_cache removes the remote media fetched
// before before_ts, which a later read fetches again, and keeps the media
// fetched since; any served homeserver's admin may purge the shared cache,
// a user may not.
func TestPurgeMediaCache(t *testing.T) {
	origin, hits := farOrigin(t)
	fed := withFederation(t, origin.URL, "far.test")
	s := startE2E(t, func(c *config.Config) { fed(c); withAdmins(c); c.Thumbnails.Pregenerate = false })
	get := func(id string) {
		t.Helper()
		wantBytes(t, s.download(t, hostA, "far.test", id, bobToken), []byte("media "+id))
	}
	get("old")
	// Again: the first answer may end before the fetched copy is committed
	// (it streams); the second waits for that commit.
	get("old")
	cut := time.Now().UnixMilli()
	for time.Now().UnixMilli() <= cut {
		runtime.Gosched() // until the clock has moved past cut
	}
	get("new")
	path := "/_synapse/admin/v1/purge_media_cache?before_ts=" + strconv.FormatInt(cut+1, 10)
	wantError(t, s.do(t, http.MethodPost, hostA, path, bobToken, nil, nil), http.StatusForbidden, "M_FORBIDDEN")
	wantError(t, s.do(t, http.MethodPost, hostA, path, "", nil, nil), http.StatusUnauthorized, "M_MISSING_TOKEN")
	r := s.do(t, http.MethodPost, hostB, path, carolToken, nil, nil) // b.test's admin: the cache is shared
	if !wantStatus(t, r, http.StatusOK) || string(r.Body) != `{"deleted":1}`+"\n" {
		t.Errorf("%s: %s, want {\"deleted\":1}", r.what, r.Body)
	}
	get("new")
	get("old")
	if o, n := hits["old"].Load(), hits["new"].Load(); o != 2 || n != 1 {
		t.Errorf("origin asked for old %d times, new %d times; want 2 (fetched again after the purge) and 1 (kept)", o, n)
	}
	r = s.do(t, http.MethodPost, hostA, path, aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) || string(r.Body) != `{"deleted":0}`+"\n" {
		t.Errorf("%s: %s, want {\"deleted\":0}: both were fetched after before_ts", r.what, r.Body)
	}
}
