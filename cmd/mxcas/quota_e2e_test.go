package main

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/index"
)

// readCounter counts the bytes read from a request body.
type readCounter struct {
	r io.Reader
	n atomic.Int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// casFiles returns the names of the chunk files under DATA/cas.
func casFiles(t *testing.T, dataDir string) map[string]bool {
	t.Helper()
	names := make(map[string]bool)
	err := filepath.WalkDir(filepath.Join(dataDir, "cas"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names[d.Name()] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A user over max_files and one over max_bytes get 403 M_FORBIDDEN naming
// the limit, and their upload leaves nothing on disk: a declared size over
// the quota is refused before the body is even sent (Expect: 100-continue),
// a streamed body is cut at the quota with no record and no chunk file;
// another homeserver's user is not limited.
func TestServeQuotas(t *testing.T) {
	const bobMax = 300 << 10
	s := startE2E(t, func(c *config.Config) {
		c.Thumbnails.Pregenerate = false // no chunk files of thumbnails
		c.Storage.GCInterval = config.Duration{}
		c.Quotas = []config.Quota{
			{Users: "@alice:a.test", MaxFiles: 1},
			{Users: "@bob:*", MaxBytes: bobMax},
			{Users: "@*:a.test", MaxFiles: 100},
		}
	})
	s.upload(t, hostA, aliceToken, "", "", content(1, 1000))
	s.upload(t, hostA, bobToken, "", "", content(2, 200<<10))
	before := casFiles(t, s.dataDir)

	// Declared sizes: answered before a byte of the body is sent.
	expecting := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: e2eBound}, Timeout: e2eBound}
	for _, c := range []struct {
		token, limit string
		size         int
	}{{aliceToken, "max_files 1 ", 10}, {bobToken, "max_bytes 307200 ", 200 << 10}} {
		body := &readCounter{r: bytes.NewReader(content(3, c.size))}
		req, err := s.request(context.Background(), http.MethodPost, hostA, "/_matrix/media/v3/upload", c.token, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(c.size)
		req.Header.Set("Expect", "100-continue")
		resp, err := expecting.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := &e2eResp{Status: resp.StatusCode, Header: resp.Header, Body: b, what: c.token + " upload over " + c.limit}
		wantError(t, r, http.StatusForbidden, "M_FORBIDDEN")
		if !strings.Contains(string(b), "upload quota exceeded: "+c.limit) {
			t.Errorf("%s: body %s, want the limit named", r.what, b)
		}
		if n := body.n.Load(); n != 0 {
			t.Errorf("%s: %d bytes of the body were sent, want none", r.what, n)
		}
	}

	// Streamed (chunked) over bob's quota: cut where it passes.
	body := &readCounter{r: bytes.NewReader(content(4, 250<<10))}
	req, err := s.request(context.Background(), http.MethodPost, hostA, "/_matrix/media/v3/upload", bobToken, io.MultiReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r := s.send(t, req)
	wantError(t, r, http.StatusForbidden, "M_FORBIDDEN")
	if !strings.Contains(string(r.Body), "upload quota exceeded: max_bytes 307200 ") {
		t.Errorf("%s: body %s, want max_bytes named", r.what, r.Body)
	}

	// Carol (b.test) is named by no quota.
	want := before
	for i := range 3 {
		data := content(uint64(10+i), 400<<10)
		s.upload(t, hostB, carolToken, "", "", data)
		for _, h := range chunkHashes(t, filepath.Join(t.TempDir(), "scratch"), data) {
			want[h.String()] = true
		}
	}
	s.stop(t)
	if got := casFiles(t, s.dataDir); !reflect.DeepEqual(got, want) {
		t.Errorf("%d chunk files, want %d: those of the accepted uploads only", len(got), len(want))
	}
	tmp, _ := os.ReadDir(filepath.Join(s.dataDir, "tmp"))
	for _, e := range tmp {
		if e.Name() != "LOCK" {
			t.Errorf("DATA/tmp holds %s after the refused uploads", e.Name())
		}
	}
	db, err := index.Open(filepath.Join(s.dataDir, "index"), index.Options{ReadOnly: true, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for user, want := range map[string]index.Usage{
		"@alice:a.test": {Bytes: 1000, Count: 1},
		"@bob:a.test":   {Bytes: 200 << 10, Count: 1},
		"@carol:b.test": {Bytes: 3 * 400 << 10, Count: 3},
	} {
		if got, err := db.UserUsage(user); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("usage of %s: %+v, %v; want %+v", user, got, err, want)
		}
	}
	records := 0
	db.ScanMedia(func(index.MediaRecord) error { records++; return nil })
	if records != 5 {
		t.Errorf("%d media records, want the 5 accepted uploads", records)
	}
}
