package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// remoteFiles is an origin server's media, served to the store's fetches.
type remoteFiles map[string][]byte

func (f remoteFiles) Fetch(_ context.Context, m matrix.MXC) (media.RemoteMedia, error) {
	b, ok := f[m.String()]
	if !ok {
		return media.RemoteMedia{}, fmt.Errorf("%w: remote 404", media.ErrNotFound)
	}
	return media.RemoteMedia{Body: io.NopCloser(bytes.NewReader(b)), ContentType: "image/png", UploadName: "r.png", Size: int64(len(b))}, nil
}

// adminTest is an API serving two homeservers, hs.test (admin @root) and
// other.test (admin @boss), whose tokens (alice, root, boss) both know,
// with remote media from far.test and federation requests from
// origin.test.
type adminTest struct {
	srv    *httptest.Server
	st     *media.Store
	origin matrix.SigningKey
	remote remoteFiles
}

func newAdminTest(t *testing.T) *adminTest {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	at := &adminTest{remote: remoteFiles{}}
	at.origin, _ = matrix.GenerateSigningKey("o1")
	ours, _ := matrix.GenerateSigningKey("ours")
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet,
		Local:  func(s string) bool { return s == "hs.test" || s == "other.test" },
		Remote: media.RemoteOptions{Fetcher: at.remote}})
	if err != nil {
		t.Fatal(err)
	}
	at.st = st
	tokens := map[string]string{"alice": "@alice:hs.test", "root": "@root:hs.test", "boss": "@boss:other.test"}
	api, err := New(Options{
		Store: st,
		Homeservers: []Homeserver{
			{Name: "hs.test", StaticTokens: tokens, Admins: []string{"@root:hs.test"}, SigningKey: &ours},
			{Name: "other.test", StaticTokens: tokens, Admins: []string{"@boss:other.test"}},
		},
		Keys:   keyTable{"origin.test " + at.origin.ID: at.origin.Public()},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	at.srv = httptest.NewServer(api)
	t.Cleanup(func() { at.srv.Close(); st.Close() })
	return at
}

// call is a request to Host host with token tok (none when empty), and
// X-Matrix signed by origin.test when fed.
func (at *adminTest) call(t *testing.T, method, host, path, tok string, body []byte, fed bool) answer {
	t.Helper()
	req, err := http.NewRequest(method, at.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if fed {
		h, err := matrix.SignRequest(method, path, "origin.test", host, nil, at.origin)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", h)
	}
	resp, err := at.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// upload stores body as alice's on hs.test and returns its media ID.
func (at *adminTest) upload(t *testing.T, body []byte) string {
	t.Helper()
	a := at.call(t, "POST", "hs.test", "/_matrix/media/v3/upload", "alice", body, false)
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(a.body), &u)
	id, ok := strings.CutPrefix(u.ContentURI, "mxc://hs.test/")
	if a.status != 200 || !ok {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	return id
}

// servingPaths are the six ways media id of hs.test is read, with whether
// the request is a federation one.
func servingPaths(id string) []struct {
	path string
	fed  bool
} {
	const thumb = "?width=32&height=32&method=crop"
	return []struct {
		path string
		fed  bool
	}{
		{"/_matrix/client/v1/media/download/hs.test/" + id, false},
		{"/_matrix/client/v1/media/thumbnail/hs.test/" + id + thumb, false},
		{"/_matrix/media/v3/download/hs.test/" + id, false},
		{"/_matrix/media/v3/thumbnail/hs.test/" + id + thumb, false},
		{"/_matrix/federation/v1/media/download/" + id, true},
		{"/_matrix/federation/v1/media/thumbnail/" + id + thumb, true},
	}
}

// checkServed fails unless all six paths serve id (want) or answer 404
// M_NOT_FOUND.
func (at *adminTest) checkServed(t *testing.T, id string, want bool) {
	t.Helper()
	for _, p := range servingPaths(id) {
		a := at.call(t, "GET", "hs.test", p.path, "alice", nil, p.fed)
		switch {
		case want && a.status != 200:
			t.Errorf("%s: %d %s, want 200", p.path, a.status, a.body)
		case !want && (a.status != 404 || errcode(t, a) != "M_NOT_FOUND"):
			t.Errorf("%s: %d %s, want 404 M_NOT_FOUND", p.path, a.status, a.body)
		}
	}
}

// Every endpoint of the slice: an admin 200, a non-admin 403, no token
// 401, and an admin of the other homeserver 403, on its Host and on
// this one's.
func TestAdminMediaAccess(t *testing.T) {
	at := newAdminTest(t)
	type endpoint struct {
		method string
		path   func(id string) string
		// targeted: the path names a server or user, so the other
		// homeserver's admin can name this one's from their own Host.
		targeted bool
	}
	for _, e := range []endpoint{
		{"GET", func(id string) string { return "/_synapse/admin/v1/media/hs.test/" + id }, true},
		{"POST", func(id string) string { return "/_synapse/admin/v1/media/quarantine/hs.test/" + id }, true},
		{"POST", func(id string) string { return "/_synapse/admin/v1/media/unquarantine/hs.test/" + id }, true},
		{"POST", func(string) string { return "/_synapse/admin/v1/user/@alice:hs.test/media/quarantine" }, true},
		{"POST", func(id string) string { return "/_synapse/admin/v1/media/protect/" + id }, false},
		{"POST", func(id string) string { return "/_synapse/admin/v1/media/unprotect/" + id }, false},
		{"POST", func(id string) string { return "/_mxcas/admin/v1/quarantine/content/hs.test/" + id }, true},
		{"DELETE", func(id string) string { return "/_mxcas/admin/v1/quarantine/content/hs.test/" + id }, true},
	} {
		id := at.upload(t, []byte("media for "+e.method+e.path("")))
		path := e.path(id)
		t.Run(e.method+" "+e.path("ID"), func(t *testing.T) {
			wantMatrixError(t, at.call(t, e.method, "hs.test", path, "", nil, false), 401, "M_MISSING_TOKEN", "")
			wantMatrixError(t, at.call(t, e.method, "hs.test", path, "alice", nil, false), 403, "M_FORBIDDEN", "")
			wantMatrixError(t, at.call(t, e.method, "hs.test", path, "boss", nil, false), 403, "M_FORBIDDEN", "")
			if e.targeted {
				wantMatrixError(t, at.call(t, e.method, "other.test", path, "boss", nil, false), 403, "M_FORBIDDEN", "not an admin of")
			}
			if a := at.call(t, e.method, "hs.test", path, "root", nil, false); a.status != 200 {
				t.Errorf("admin: %d %s", a.status, a.body)
			}
		})
	}
	t.Run("unknown and room paths", func(t *testing.T) {
		for _, p := range []string{"/_synapse/admin/v1/nonsense", "/_synapse/admin/v1/room/!r:hs.test/media", "/_mxcas/admin/v1/quarantine/nothing"} {
			wantMatrixError(t, at.call(t, "GET", "hs.test", p, "root", nil, false), 404, "M_UNRECOGNIZED", "")
		}
	})
}

func TestAdminQueryMedia(t *testing.T) {
	at := newAdminTest(t)
	id := at.upload(t, []byte("hello"))
	far := mustMXC(t, "far.test", "cached")
	at.remote[far.String()] = []byte("remote bytes")
	if a := at.call(t, "GET", "hs.test", "/_matrix/client/v1/media/download/far.test/cached", "alice", nil, false); a.status != 200 {
		t.Fatalf("remote download: %d %s", a.status, a.body)
	}
	remote, err := at.st.Stat(far)
	if err != nil {
		t.Fatal(err)
	}
	if a := at.call(t, "POST", "hs.test", "/_synapse/admin/v1/media/quarantine/hs.test/"+id, "root", nil, false); a.status != 200 || a.body != "{}\n" {
		t.Fatalf("quarantine: %d %q", a.status, a.body)
	}
	query := func(path string) map[string]any {
		t.Helper()
		a := at.call(t, "GET", "hs.test", path, "root", nil, false)
		var got struct {
			MediaInfo map[string]any `json:"media_info"`
		}
		if err := json.Unmarshal([]byte(a.body), &got); a.status != 200 || err != nil {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
		return got.MediaInfo
	}
	local := query("/_synapse/admin/v1/media/hs.test/" + id)
	rec, _ := at.st.Stat(mustMXC(t, "hs.test", id))
	wantLocal := map[string]any{
		"media_origin": nil, "user_id": "@alice:hs.test", "media_id": id, "media_type": "application/octet-stream",
		"media_length": 5.0, "upload_name": nil, "created_ts": float64(rec.Created), "filesystem_id": nil,
		"url_cache": nil, "last_access_ts": nil, "quarantined_by": "@root:hs.test", "authenticated": false,
		"safe_from_quarantine": false, "sha256": nil,
	}
	checkFields(t, "local", local, wantLocal)
	wantRemote := map[string]any{
		"media_origin": "far.test", "user_id": nil, "media_id": "cached", "media_type": "image/png",
		"media_length": 12.0, "upload_name": "r.png", "created_ts": float64(remote.Created),
		"filesystem_id": remote.Object.String(), "url_cache": nil, "last_access_ts": nil, "quarantined_by": nil,
		"authenticated": false, "safe_from_quarantine": nil, "sha256": nil,
	}
	checkFields(t, "remote", query("/_synapse/admin/v1/media/far.test/cached"), wantRemote)
	for _, p := range []string{"/_synapse/admin/v1/media/far.test/notcached", "/_synapse/admin/v1/media/hs.test/unknown"} {
		wantMatrixError(t, at.call(t, "GET", "hs.test", p, "root", nil, false), 404, "M_NOT_FOUND", "")
	}
	// Quarantined remote media never fetched: still 404 here.
	if a := at.call(t, "POST", "hs.test", "/_synapse/admin/v1/media/quarantine/far.test/other", "root", nil, false); a.status != 200 {
		t.Fatalf("quarantine uncached remote: %d %s", a.status, a.body)
	}
	wantMatrixError(t, at.call(t, "GET", "hs.test", "/_synapse/admin/v1/media/far.test/other", "root", nil, false), 404, "M_NOT_FOUND", "")
}

// checkFields compares a decoded JSON object with want, key by key, both
// ways.
func checkFields(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: %s = %#v (present %v), want %#v", what, k, g, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected field %s", what, k)
		}
	}
}

// Quarantine by ID, by user and by content on all six serving paths, and
// re-uploads of quarantined content.
func TestAdminQuarantineServing(t *testing.T) {
	at := newAdminTest(t)
	png, err := os.ReadFile("../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	id := at.upload(t, png)
	at.checkServed(t, id, true)

	admin := func(method, path string, want string) {
		t.Helper()
		if a := at.call(t, method, "hs.test", path, "root", nil, false); a.status != 200 || a.body != want+"\n" {
			t.Fatalf("%s %s: %d %q, want 200 %s", method, path, a.status, a.body, want)
		}
	}
	admin("POST", "/_synapse/admin/v1/media/quarantine/hs.test/"+id, "{}")
	at.checkServed(t, id, false)
	admin("POST", "/_synapse/admin/v1/media/unquarantine/hs.test/"+id, "{}")
	at.checkServed(t, id, true)

	// A user's media, but not what is protected.
	sticker := at.upload(t, []byte("sticker"))
	admin("POST", "/_synapse/admin/v1/media/protect/"+sticker, "{}")
	admin("POST", "/_synapse/admin/v1/user/@alice:hs.test/media/quarantine", `{"num_quarantined":1}`)
	at.checkServed(t, id, false)
	if a := at.call(t, "GET", "hs.test", "/_matrix/client/v1/media/download/hs.test/"+sticker, "alice", nil, false); a.status != 200 {
		t.Errorf("protected media: %d %s", a.status, a.body)
	}
	admin("POST", "/_synapse/admin/v1/media/unquarantine/hs.test/"+id, "{}")

	// By content: a second copy and the original are blocked, uploads of
	// it refused.
	copyID := at.upload(t, png)
	admin("POST", "/_mxcas/admin/v1/quarantine/content/hs.test/"+copyID, `{"num_quarantined":2}`)
	at.checkServed(t, id, false)
	at.checkServed(t, copyID, false)
	wantMatrixError(t, at.call(t, "POST", "hs.test", "/_matrix/media/v3/upload", "alice", png, false), 403, "M_FORBIDDEN", "quarantined")
	cr := at.call(t, "POST", "hs.test", "/_matrix/media/v1/create", "alice", nil, false)
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(cr.body), &u)
	created := strings.TrimPrefix(u.ContentURI, "mxc://")
	wantMatrixError(t, at.call(t, "PUT", "hs.test", "/_matrix/media/v3/upload/"+created, "alice", png, false), 403, "M_FORBIDDEN", "quarantined")
	// Remote media with that content is refused when fetched, then 404.
	at.remote["mxc://far.test/same"] = png
	wantMatrixError(t, at.call(t, "GET", "hs.test", "/_matrix/client/v1/media/thumbnail/far.test/same?width=32&height=32", "alice", nil, false), 403, "M_FORBIDDEN", "quarantined")
	wantMatrixError(t, at.call(t, "GET", "hs.test", "/_matrix/client/v1/media/download/far.test/same", "alice", nil, false), 404, "M_NOT_FOUND", "")

	admin("DELETE", "/_mxcas/admin/v1/quarantine/content/hs.test/"+id, `{"num_unquarantined":2}`)
	at.checkServed(t, id, true)
	at.checkServed(t, copyID, true)
	if a := at.call(t, "PUT", "hs.test", "/_matrix/media/v3/upload/"+created, "alice", png, false); a.status != 200 {
		t.Errorf("fill after lifting: %d %s", a.status, a.body)
	}
}

// mustMXC is matrix.NewMXC for an ID the test knows is valid.
func mustMXC(t *testing.T, server, id string) matrix.MXC {
	t.Helper()
	m, err := matrix.NewMXC(server, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
