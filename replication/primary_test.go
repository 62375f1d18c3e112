package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// call sends a request signed with key at signedAt (nil body: GET) and
// returns the status and the body.
func call(t *testing.T, base, method, pathQuery string, body []byte, key []byte, signedAt time.Time) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+pathQuery, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		req.Header.Set("Authorization", authorization(key, method, req.URL.RequestURI(), signedAt, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// wantError fails unless the answer is status with a JSON error of code.
func wantError(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e errorBody
	if status != wantStatus || json.Unmarshal(body, &e) != nil || e.Code != wantCode || e.Message == "" {
		t.Errorf("%s: %d %s, want %d with errcode %s", what, status, body, wantStatus, wantCode)
	}
}

// TestPrimaryAuth: unsigned, wrongly signed, stale, future-dated and
// replayed-elsewhere requests get 401 and nothing else; a good signature
// gets the answer.
func TestPrimaryAuth(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	upload(t, primary, "a", randBytes(1, 100_000)) // chunk files: small media are inline
	srv, _ := newPrimary(t, primary, clock.Now)
	now := clock.Now()
	chunk := chunkHashes(t, primary.Dir())[0]

	status, body := call(t, srv.URL, "GET", pathStatus, nil, secret, now)
	var sb statusBody
	if status != http.StatusOK || json.Unmarshal(body, &sb) != nil || sb.Head != primary.Head() {
		t.Fatalf("signed status: %d %s, want head %d", status, body, primary.Head())
	}
	for _, c := range []struct {
		name     string
		path     string
		body     []byte
		key      []byte
		signedAt time.Time
	}{
		{"unsigned", pathChanges, nil, nil, now},
		{"wrong secret", pathChanges, nil, []byte("not the secret, but long"), now},
		{"stale timestamp", pathChanges, nil, secret, now.Add(-maxClockSkew - time.Second)},
		{"future timestamp", pathChanges, nil, secret, now.Add(maxClockSkew + time.Second)},
		{"unsigned chunks", pathChunks, chunk[:], nil, now},
		{"stale chunks", pathChunks, chunk[:], secret, now.Add(-time.Hour)},
	} {
		method := "GET"
		if c.body != nil {
			method = "POST"
		}
		status, body := call(t, srv.URL, method, c.path, c.body, c.key, c.signedAt)
		wantError(t, c.name, status, body, http.StatusUnauthorized, "MXCAS_UNAUTHORIZED")
		if bytes.Contains(body, chunk[:8]) {
			t.Errorf("%s: answer holds chunk bytes", c.name)
		}
	}

	// A captured header is good for its own request only, and only within
	// the clock window.
	header := authorization(secret, "GET", pathStatus, now, nil)
	send := func(path string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(pathChanges + "?after=0"); got != http.StatusUnauthorized {
		t.Errorf("status's signature replayed on changes: %d, want 401", got)
	}
	if got := send(pathStatus); got != http.StatusOK {
		t.Errorf("signature replayed at once on its own request: %d", got)
	}
	clock.Advance(maxClockSkew + time.Second)
	if got := send(pathStatus); got != http.StatusUnauthorized {
		t.Errorf("signature replayed after %s: %d, want 401", maxClockSkew, got)
	}

	// A POST's signature covers its body.
	other := cas.Sum([]byte("other"))
	req, _ := http.NewRequest("POST", srv.URL+pathChunks, bytes.NewReader(other[:]))
	req.Header.Set("Authorization", authorization(secret, "POST", pathChunks, clock.Now(), chunk[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST with another body than signed: %d, want 401", resp.StatusCode)
	}
}

// TestPrimaryRefusesBadRequests: malformed parameters and bodies, unknown
// paths and wrong methods get their JSON error.
func TestPrimaryRefusesBadRequests(t *testing.T) {
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	srv, _ := newPrimary(t, primary, nil)
	now := time.Now()
	for _, c := range []struct {
		method, path string
		body         []byte
		status       int
		code         string
	}{
		{"GET", pathChanges + "?limit=0", nil, 400, "MXCAS_BAD_REQUEST"},
		{"GET", pathChanges + "?limit=1001", nil, 400, "MXCAS_BAD_REQUEST"},
		{"GET", pathChanges + "?after=x", nil, 400, "MXCAS_BAD_REQUEST"},
		{"GET", pathChanges + "?wait_ms=30001", nil, 400, "MXCAS_BAD_REQUEST"},
		{"POST", pathChunks, make([]byte, 33), 400, "MXCAS_BAD_REQUEST"},
		{"POST", pathChunks, []byte{}, 400, "MXCAS_BAD_REQUEST"},
		{"POST", pathChunks, make([]byte, 257*cas.HashSize), 413, "MXCAS_TOO_LARGE"},
		{"GET", pathChunks, nil, 405, "MXCAS_METHOD"},
		{"POST", pathStatus, []byte{}, 405, "MXCAS_METHOD"},
		{"GET", pathPrefix + "nothing", nil, 404, "MXCAS_NOT_FOUND"},
	} {
		status, body := call(t, srv.URL, c.method, c.path, c.body, secret, now)
		wantError(t, c.method+" "+c.path, status, body, c.status, c.code)
	}
}

// TestPrimaryChanges: the changes endpoint serves the log in order from
// after, up to limit, answers a standby that is ahead at once, and a long
// poll ends with the change committed while it waited.
func TestPrimaryChanges(t *testing.T) {
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	for i := range 3 {
		upload(t, primary, string(rune('a'+i)), randBytes(uint64(i), 100))
	}
	srv, tp := newPrimary(t, primary, nil)
	c := clientFor(srv.URL, secret, http.DefaultClient, nil)
	ctx := context.Background()
	head := primary.Head()
	b, err := c.changes(ctx, 1, "", 1, 0)
	if err != nil || b.Head != head || len(b.Changes) != 1 || b.Changes[0].Seq != 2 {
		t.Fatalf("changes after 1, limit 1: %+v %v", b, err)
	}
	want, _ := primary.Changes(1, 1)
	if !bytes.Equal(b.Changes[0].Ops, want[0].Ops) {
		t.Error("change 2's operations differ from the log's")
	}
	if b, err := c.changes(ctx, head+5, "", 10, maxWait); err != nil || len(b.Changes) != 0 || b.Head != head {
		t.Errorf("changes after %d (past the head): %+v %v, want none at once", head+5, b, err)
	}

	done := make(chan changesBody, 1)
	go func() {
		b, err := c.changes(ctx, head, "", 10, maxWait)
		if err != nil {
			t.Error(err)
		}
		done <- b
	}()
	for after := ""; after != "3"; after = <-tp.polls {
	}
	upload(t, primary, "d", randBytes(9, 100))
	tctx, cancel := context.WithTimeout(ctx, maxWait/3)
	defer cancel()
	select {
	case b := <-done:
		if len(b.Changes) != 1 || b.Changes[0].Seq != head+1 {
			t.Errorf("long poll answered %+v, want change %d", b, head+1)
		}
	case <-tctx.Done():
		t.Fatal("the long poll did not end when a change was committed")
	}
}

// TestChunkSource: a ChunkSource reads a peer's chunk verified, reports a
// chunk the peer lacks as cas.ErrNotFound and a wrong secret as
// ErrUnauthorized.
func TestChunkSource(t *testing.T) {
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	upload(t, primary, "a", randBytes(1, 200<<10))
	srv, _ := newPrimary(t, primary, nil)
	src := NewChunkSource(srv.URL, secret, nil)
	hs := chunkHashes(t, primary.Dir())
	if len(hs) < 2 {
		t.Fatalf("%d chunks, want several", len(hs))
	}
	for _, h := range hs {
		want, err := primary.ReadChunk(h, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.ReadChunk(h, make([]byte, 0, 1<<20))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadChunk(%s): %d bytes, %v; want %d bytes", h.Short(), len(got), err, len(want))
		}
	}
	if _, err := src.ReadChunk(cas.Sum([]byte("absent")), nil); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("ReadChunk of an absent chunk: %v, want cas.ErrNotFound", err)
	}
	n := 0
	err := src.ReadChunks(context.Background(), append(hs, hs...), nil, func(h cas.Hash, data []byte) error {
		if cas.Sum(data) != h || h != hs[n%len(hs)] {
			t.Errorf("ReadChunks: chunk %d out of order or wrong", n)
		}
		n++
		return nil
	})
	if err != nil || n != 2*len(hs) {
		t.Errorf("ReadChunks: %d chunks, %v", n, err)
	}
	bad := NewChunkSource(srv.URL, []byte("another secret, long enough"), nil)
	if _, err := bad.ReadChunk(hs[0], nil); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("ReadChunk with a wrong secret: %v, want ErrUnauthorized", err)
	}
}

// TestPrimaryDoneEndsLongPoll: closing PrimaryOptions.Done answers a
// waiting long poll at once, with no change.
func TestPrimaryDoneEndsLongPoll(t *testing.T) {
	// A poll that nothing but Done can end within the test's time.
	old := maxWait
	maxWait = 24 * time.Hour
	t.Cleanup(func() { maxWait = old })
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	done := make(chan struct{})
	h, err := NewPrimary(PrimaryOptions{Store: primary, Secret: secret, Done: done})
	if err != nil {
		t.Fatal(err)
	}
	tp := newTap(h)
	srv := httptest.NewServer(tp)
	defer srv.Close()
	c := clientFor(srv.URL, secret, http.DefaultClient, nil)
	answered := make(chan error, 1)
	go func() {
		b, err := c.changes(context.Background(), 0, "", 10, maxWait)
		if err == nil && len(b.Changes) != 0 {
			err = errors.New("changes in the answer")
		}
		answered <- err
	}()
	<-tp.polls
	close(done)
	if err := <-answered; err != nil {
		t.Error(err)
	}
}
