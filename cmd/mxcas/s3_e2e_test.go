package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/testkit"
)

// withS3 points [storage] at srv's bucket, with its key in a credentials
// file (mode 0600) and the default chunk cache.
func withS3(t *testing.T, srv *testkit.S3) func(*config.Config) {
	t.Helper()
	creds := filepath.Join(t.TempDir(), "s3.credentials")
	text := fmt.Sprintf("# test key\naccess_key_id = %s\nsecret_access_key = %s\n", srv.AccessKey, srv.SecretKey)
	if err := os.WriteFile(creds, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) {
		c.Storage.Backend, c.Storage.Endpoint, c.Storage.Bucket = config.BackendS3, srv.Endpoint, srv.Bucket
		c.Storage.UseSSL, c.Storage.CredentialsFile = false, creds
	}
}

// s3Lines is the [storage] table of a configuration file pointing at
// srv's bucket, with its key in the file creds.
func s3Lines(srv *testkit.S3, creds string) []string {
	return []string{"[storage]", `backend = "s3"`, fmt.Sprintf("endpoint = %q", srv.Endpoint),
		fmt.Sprintf("bucket = %q", srv.Bucket), "use_ssl = false", fmt.Sprintf("credentials_file = %q", creds)}
}

// s3Chunks returns the distinct object keys of data's chunks, cut as a new
// S3 store cuts them.
func s3Chunks(t *testing.T, data ...[]byte) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for _, d := range data {
		if err := chunker.Split(d, s3ChunkParams, func(c []byte) error {
			x := cas.Sum(c).String()
			keys["cas/"+x[0:2]+"/"+x[2:4]+"/"+x] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestS3MediaE2E: a store on a real S3 server (versitygw). Eight identical
// concurrent uploads put each chunk in the bucket once and nothing in
// DATA/cas; the media downloads whole and by range, thumbnails from its
// chunks, and is served over federation; FORMAT records the bucket and the
// larger chunks; the secret key never reaches the log. Read chunks are in
// DATA/cache, which serves them with the S3 server down.
func TestS3MediaE2E(t *testing.T) {
	srv := testkit.StartS3(t)
	s, keyB := startFederatedE2E(t, withS3(t, srv))

	body := content(19, 3<<20)
	want := s3Chunks(t, body)
	if len(want) < 2 {
		t.Fatalf("test data: %d chunks, want several", len(want))
	}
	ids := make([]string, 8)
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := s.request(context.Background(), http.MethodPost, hostA, "/_matrix/media/v3/upload", aliceToken, bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			r, err := s.roundTrip(req)
			if err == nil && r.Status != http.StatusOK {
				err = fmt.Errorf("%s: %d %s", r.what, r.Status, short(r.Body))
			}
			if err == nil {
				ids[i] = contentURIID(t, r, hostA)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := srv.Objects()
	slices.Sort(got)
	if len(got) != len(want) {
		t.Errorf("bucket holds %d objects after 8 identical uploads, want its %d distinct chunks once each: %v", len(got), len(want), got)
	}
	for _, k := range got {
		if !want[k] {
			t.Errorf("bucket holds %s, not a chunk of the upload", k)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "cas")); !os.IsNotExist(err) {
		t.Errorf("DATA/cas: %v; with backend s3 there is none", err)
	}
	for _, id := range ids {
		wantBytes(t, s.download(t, hostA, hostA, id, bobToken), body)
	}

	const from, to = 1_000_000, 2_600_000 // across chunk boundaries
	r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+ids[0], bobToken, nil,
		map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", from, to)})
	if wantStatus(t, r, http.StatusPartialContent) && !bytes.Equal(r.Body, body[from:to+1]) {
		t.Errorf("%s: %d bytes, not bytes %d-%d of the media", r.what, len(r.Body), from, to)
	}

	png, err := os.ReadFile("../../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	pic := s.upload(t, hostA, aliceToken, "pic.png", "image/png", png)
	r = s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+pic+"?width=32&height=32&method=crop", bobToken, nil, nil)
	if wantStatus(t, r, http.StatusOK) && (r.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(r.Body, []byte("\x89PNG"))) {
		t.Errorf("%s: Content-Type %q, want a PNG", r.what, r.Header.Get("Content-Type"))
	}

	fed := "/_matrix/federation/v1/media/download/" + ids[0]
	auth, err := matrix.SignRequest(http.MethodGet, fed, hostB, hostA, nil, keyB)
	if err != nil {
		t.Fatal(err)
	}
	r = s.do(t, http.MethodGet, hostA, fed, "", nil, map[string]string{"Authorization": auth})
	if wantStatus(t, r, http.StatusOK) && !bytes.Contains(r.Body, body) {
		t.Errorf("%s: the multipart answer (%d bytes) does not hold the media", r.what, len(r.Body))
	}

	f, err := os.ReadFile(filepath.Join(s.dataDir, "FORMAT"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"chunks s3 " + srv.Bucket + "/\n", "chunker " + s3ChunkParams.String() + "\n"} {
		if !strings.Contains(string(f), line) {
			t.Errorf("FORMAT %q lacks %q", f, line)
		}
	}
	log := s.log.String()
	if !strings.Contains(log, `msg="chunks in S3"`) {
		t.Error(`the log does not say "chunks in S3"`)
	}
	if strings.Contains(log, srv.SecretKey) {
		t.Error("the log holds the S3 secret key")
	}

	for k := range want {
		x := k[strings.LastIndexByte(k, '/')+1:]
		if _, err := os.Stat(filepath.Join(s.dataDir, "cache", x[:2], x)); err != nil {
			t.Errorf("chunk %s of the media read is not in DATA/cache: %v", x[:12], err)
		}
	}
	srv.Stop()
	wantBytes(t, s.download(t, hostA, hostA, ids[0], bobToken), body)
}

// TestS3GCE2E: with every object older than gc_grace, deleting a media
// makes serve's GC remove exactly the chunks only it used from the bucket;
// the media sharing the rest reads whole, and mxcas gc, run while the
// server holds the store, goes through the server (the data directory is
// locked with backend s3 too).
func TestS3GCE2E(t *testing.T) {
	srv := testkit.StartS3(t)
	s := startE2E(t, func(c *config.Config) {
		withS3(t, srv)(c)
		withAdmins(c)
		c.Thumbnails.Pregenerate = false
		c.Storage.GCInterval = config.Duration{Duration: 50 * time.Millisecond}
	})
	shared := content(1, 2<<20)
	a := append(slices.Clone(shared), content(2, 2<<20)...)
	b := append(slices.Clone(shared), content(3, 2<<20)...)
	idA := s.upload(t, hostA, aliceToken, "", "application/octet-stream", a)
	idB := s.upload(t, hostA, bobToken, "", "application/octet-stream", b)
	keysA, keysB := s3Chunks(t, a), s3Chunks(t, b)
	own := map[string]bool{}
	for k := range keysA {
		if !keysB[k] {
			own[k] = true
		}
	}
	if len(own) == 0 || len(own) == len(keysA) {
		t.Fatalf("test data: %d of A's %d chunks are its own; want some but not all", len(own), len(keysA))
	}
	old := time.Now().Add(-2 * time.Hour) // past gc_grace: LastModified is the file's mtime
	for _, k := range srv.Objects() {
		if err := os.Chtimes(srv.ObjectPath(k), old, old); err != nil {
			t.Fatal(err)
		}
	}

	cfg := writeConfig(t, s.dataDir, s3Lines(srv, s.cfg.Storage.CredentialsFile)...)
	if code, out, errs := runMain(t, "gc", "-config", cfg); code != 0 || !strings.Contains(out, "removed 0 objects and 0 chunks") {
		t.Fatalf("mxcas gc while serving: exit %d, want 0 and nothing removed\n%s%s", code, out, errs)
	}

	r := s.do(t, http.MethodDelete, hostA, "/_synapse/admin/v1/media/"+hostA+"/"+idA, aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	if !s.log.waitFor(e2eBound, `msg="gc done"`, "objects_deleted=1 ", fmt.Sprintf("chunks_deleted=%d ", len(own))) {
		t.Fatalf("no gc done deleting A's object and its %d own chunks", len(own))
	}
	left := map[string]bool{}
	for _, k := range srv.Objects() {
		left[k] = true
	}
	for k := range keysA {
		if left[k] == own[k] {
			t.Errorf("object %s (A's own: %v): in the bucket %v", k, own[k], left[k])
		}
	}
	for k := range keysB {
		if !left[k] {
			t.Errorf("B's chunk %s is gone from the bucket", k)
		}
	}
	wantBytes(t, s.download(t, hostA, hostA, idB, bobToken), b)
	wantError(t, s.download(t, hostA, hostA, idA, bobToken), http.StatusNotFound, "M_NOT_FOUND")
}

// TestS3OutageE2E: the S3 server killed while an upload's body is arriving
// gives that upload a clean 503 M_UNKNOWN, and downloads 503 too; nothing
// is half-recorded (the same media ID takes the upload again once the
// server is back), and what was acknowledged before is served
// byte-identical after the restart.
func TestS3OutageE2E(t *testing.T) {
	srv := testkit.StartS3(t)
	s := startE2E(t, func(c *config.Config) {
		withS3(t, srv)(c)
		c.Thumbnails.Pregenerate = false
		c.Storage.CacheBytes = 0 // every read goes to the bucket
	})
	before := content(4, 2<<20)
	idBefore := s.upload(t, hostA, aliceToken, "", "application/octet-stream", before)

	r := s.do(t, http.MethodPost, hostA, "/_matrix/media/v1/create", aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	id := contentURIID(t, r, hostA)
	path := "/_matrix/media/v3/upload/a.test/" + id
	body := content(5, 3<<20)
	pr, pw := io.Pipe()
	req, err := s.request(context.Background(), http.MethodPut, hostA, path, aliceToken, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	answer := make(chan *e2eResp, 1)
	go func() {
		r, err := s.roundTrip(req)
		if err != nil {
			r = &e2eResp{what: err.Error()}
		}
		answer <- r
	}()
	half := len(body) / 2 // more than a chunk's maximum: the server is storing chunks
	if _, err := pw.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	go func() {
		pw.Write(body[half:]) // fails when the server answered early: the answer says what happened
		pw.Close()
	}()
	r = <-answer
	wantError(t, r, http.StatusServiceUnavailable, "M_UNKNOWN")
	wantError(t, s.download(t, hostA, hostA, idBefore, bobToken), http.StatusServiceUnavailable, "M_UNKNOWN")

	srv.Start()
	wantBytes(t, s.download(t, hostA, hostA, idBefore, bobToken), before)
	r = s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/download/a.test/"+id+"?timeout_ms=0", bobToken, nil, nil)
	wantError(t, r, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED")
	r = s.do(t, http.MethodPut, hostA, path, aliceToken, body, map[string]string{"Content-Type": "application/octet-stream"})
	if wantStatus(t, r, http.StatusOK) {
		wantBytes(t, s.download(t, hostA, hostA, id, bobToken), body)
	}
}
