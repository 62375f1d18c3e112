package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media/mediatest"
	"github.com/mxcas/mxcas/testkit"
)

// diskClient talks to a server process on a full disk. Its timeout is a
// deadline for a hang, not a speed check.
type diskClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

const (
	diskHost  = "disk.test"
	diskToken = "disk-token"
)

func (d *diskClient) do(method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, d.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Host = diskHost
	req.Header.Set("Authorization", "Bearer "+diskToken)
	resp, err := d.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// upload returns the status, the media ID (on 200) or the Matrix error.
func (d *diskClient) upload(body []byte) (status int, id string, merr matrixErr) {
	d.t.Helper()
	status, b, err := d.do(http.MethodPost, "/_matrix/media/v3/upload", body)
	if err != nil {
		d.t.Fatalf("upload of %d bytes: %v (a hang or a dropped connection, not an answer)", len(body), err)
	}
	if status == http.StatusOK {
		var v struct {
			ContentURI string `json:"content_uri"`
		}
		json.Unmarshal(b, &v)
		id, _ = strings.CutPrefix(v.ContentURI, "mxc://"+diskHost+"/")
		return status, id, merr
	}
	json.Unmarshal(b, &merr)
	return status, "", merr
}

type matrixErr struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

func (d *diskClient) wantDownload(id string, want []byte) {
	d.t.Helper()
	status, b, err := d.do(http.MethodGet, "/_matrix/client/v1/media/download/"+diskHost+"/"+id, nil)
	if err != nil || status != http.StatusOK || !bytes.Equal(b, want) {
		d.t.Errorf("download %s: status %d, %d bytes (want %d), err %v", id, status, len(b), len(want), err)
	}
}

func (d *diskClient) wantHealthy() {
	d.t.Helper()
	status, b, err := d.do(http.MethodGet, "/healthz", nil)
	if err != nil || status != http.StatusOK {
		d.t.Errorf("GET /healthz: status %d %q, err %v; want 200", status, b, err)
	}
}

// wantNoSpace checks the answer to a write refused for lack of space.
func wantNoSpace(t *testing.T, what string, status int, merr matrixErr) {
	t.Helper()
	if status != http.StatusInsufficientStorage || merr.Errcode != "M_UNKNOWN" || !strings.Contains(merr.Error, "no space left on the media store") {
		t.Errorf("%s on a full disk: %d %s %q; want 507 M_UNKNOWN \"no space left on the media store\"", what, status, merr.Errcode, merr.Error)
	}
}

// diskConfig writes the configuration of the disk-full tests: a store in
// data with the given [storage] min_free_bytes and ballast_bytes.
func diskConfig(t *testing.T, data, minFree, ballast string) string {
	t.Helper()
	return writeConfig(t, data,
		`shutdown_timeout = "5s"`,
		"[storage]",
		"min_free_bytes = "+minFree,
		"ballast_bytes = "+ballast,
		"[thumbnails]",
		"pregenerate = false",
		"[[homeserver]]",
		`name = "`+diskHost+`"`,
		`static_tokens = { "`+diskToken+`" = "@u:`+diskHost+`" }`,
	)
}

// TestDiskFull runs a server process on a small tmpfs and fills it: writes
// are refused with a clear error, never a hang; reads go on; the server
// stops and starts again on the full disk; once space returns, writes
// resume without a restart; every acknowledged upload survives.
func TestDiskFull(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 64<<20)
	data := filepath.Join(mnt, "data")
	cfg := diskConfig(t, data, "8388608", "4194304")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Someone else's files take part of the disk.
	other := filepath.Join(mnt, "other")
	if err := os.WriteFile(other, make([]byte, 16<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startServer(t, ctx, cfg)
	d := &diskClient{t: t, base: "http://" + srv.addr, c: &http.Client{Timeout: 30 * time.Second}}
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.log)
		}
	}()

	// 1. Uploads until the store refuses.
	acked := map[string][]byte{}
	var firstBody []byte
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatalf("100 uploads of 1 MiB accepted on a 64 MiB disk")
		}
		body := content(uint64(5000+i), 1<<20)
		status, id, merr := d.upload(body)
		if status == http.StatusOK {
			acked[id] = body
			if firstBody == nil {
				firstBody = body
			}
			continue
		}
		wantNoSpace(t, "upload", status, merr)
		break
	}
	if len(acked) < 10 {
		t.Fatalf("only %d uploads accepted before the store refused", len(acked))
	}
	d.wantHealthy()

	// 2. The rest of the disk is taken by someone else, to the last byte.
	filler := filepath.Join(mnt, "filler")
	testkit.FillDisk(t, filler)
	d.wantHealthy()
	for id, b := range acked {
		d.wantDownload(id, b)
	}
	// Content the store already holds needs only index writes.
	status, id, merr := d.upload(firstBody)
	if status == http.StatusOK {
		acked[id] = firstBody
	} else {
		wantNoSpace(t, "re-upload of stored content", status, merr)
	}
	status, _, merr = d.upload([]byte("small"))
	wantNoSpace(t, "small upload", status, merr)
	d.wantHealthy()

	// 3. SIGTERM ends it, within its shutdown_timeout (the context is a
	// deadline for a hang).
	if code := srv.stop(t); code != 0 {
		t.Errorf("exit status %d after SIGTERM on a full disk, want 0", code)
	}

	// 4. It starts again on the still-full disk.
	srv = startServer(t, ctx, cfg)
	d.base = "http://" + srv.addr
	d.wantHealthy()
	for id, b := range acked {
		d.wantDownload(id, b)
	}
	status, _, merr = d.upload([]byte("small"))
	wantNoSpace(t, "upload after restart", status, merr)

	// 5. Space returns: uploads resume without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	body := content(6000, 1<<20)
	status, id, merr = d.upload(body)
	if status != http.StatusOK {
		t.Fatalf("upload once space returned: %d %s %q, want 200", status, merr.Errcode, merr.Error)
	}
	acked[id] = body
	if _, err := os.Stat(filepath.Join(data, "ballast")); err != nil {
		t.Errorf("ballast not re-created once space returned: %v", err)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}

	// 6. Every acknowledged upload, byte for byte; fsck clean.
	code, out, stderr := runBinary(t, ctx, "fsck", "-config", cfg)
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Errorf("fsck: exit %d, stdout %q\n%s", code, out, stderr)
	}
	got := map[string][]byte{}
	for id, b := range acked {
		got[id] = b
	}
	checkDiskStore(t, data, got)
}

// checkDiskStore opens the store in dir and checks that it is healthy and
// holds bodies (media ID -> content on diskHost), byte for byte.
func checkDiskStore(t *testing.T, dir string, bodies map[string][]byte) {
	t.Helper()
	st, _ := mediatest.OpenHealthy(t, dir)
	defer st.Close()
	for id, want := range bodies {
		mediatest.WantContent(t, st, mustMXC(t, diskHost, id), want)
	}
}

// wait returns the exit status of a server that ends by itself, failing
// the test if it does not end within bound (a deadline for a hang).
func (s *server) wait(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(bound):
		t.Fatalf("server still running %v after its store failed:\n%s", bound, s.log)
	}
	return s.exitStatus(t)
}

// TestStoreFailureEndsServer drives the index into a failure the
// free-space check cannot prevent (a threshold of one byte, no ballast,
// index-only writes squeezing into the last pages): the failing request
// gets 503, never a hang, and the process ends by itself with a non-zero
// status instead of staying half alive. Restarted with room, it has every
// acknowledged upload.
func TestStoreFailureEndsServer(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 32<<20)
	data := filepath.Join(mnt, "data")
	cfg := diskConfig(t, data, "1", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := startServer(t, ctx, cfg)
	d := &diskClient{t: t, base: "http://" + srv.addr, c: &http.Client{Timeout: 30 * time.Second}}
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.log)
		}
	}()
	body := content(7000, 10) // one small chunk: stored again, it needs records only
	status, id, merr := d.upload(body)
	if status != http.StatusOK {
		t.Fatalf("upload: %d %v", status, merr)
	}
	acked := map[string][]byte{id: body}

	filler := filepath.Join(mnt, "filler")
	testkit.FillDisk(t, filler)
	fi, err := os.Stat(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filler, fi.Size()-16<<10); err != nil { // room for a few records
		t.Fatal(err)
	}
	name := strings.Repeat("n", 60<<10)
	for i := 0; ; i++ {
		if i == 400 {
			t.Fatal("400 index writes of 60 KiB fitted in 16 KiB")
		}
		path := fmt.Sprintf("/_matrix/media/v3/upload?filename=%s%d", name, i)
		status, b, err := d.do(http.MethodPost, path, body)
		if err != nil {
			t.Fatalf("upload %d: %v (a hang or a dropped connection, not an answer)", i, err)
		}
		if status == http.StatusOK {
			var v struct {
				ContentURI string `json:"content_uri"`
			}
			json.Unmarshal(b, &v)
			acked[strings.TrimPrefix(v.ContentURI, "mxc://"+diskHost+"/")] = body
			continue
		}
		json.Unmarshal(b, &merr)
		if status != http.StatusServiceUnavailable && status != http.StatusInsufficientStorage {
			t.Errorf("upload %d when the index could not write: %d %s %q; want 503 (store failed) or 507", i, status, merr.Errcode, merr.Error)
		}
		if status == http.StatusServiceUnavailable {
			break
		}
	}
	if code := srv.wait(t, 30*time.Second); code == 0 {
		t.Errorf("exit status 0 after the store failed, want non-zero")
	}
	if !strings.Contains(srv.log.String(), "the store failed") {
		t.Errorf("the log does not say the store failed")
	}

	// With room again it starts and has everything it acknowledged.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, ctx, cfg)
	d.base = "http://" + srv.addr
	d.wantHealthy()
	for id, b := range acked {
		d.wantDownload(id, b)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	checkDiskStore(t, data, acked)
}
