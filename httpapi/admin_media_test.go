package httpapi

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

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
			wantMatrixError(t, at.call(t, e.method, "hs.test", path, "oadmin", nil, false), 403, "M_FORBIDDEN", "")
			if e.targeted {
				wantMatrixError(t, at.call(t, e.method, "other.test", path, "oadmin", nil, false), 403, "M_FORBIDDEN", "not an admin of")
			}
			if a := at.call(t, e.method, "hs.test", path, "admin", nil, false); a.status != 200 {
				t.Errorf("admin: %d %s", a.status, a.body)
			}
		})
	}
	t.Run("unknown and room paths", func(t *testing.T) {
		for _, p := range []string{"/_synapse/admin/v1/nonsense", "/_synapse/admin/v1/room/!r:hs.test/media", "/_mxcas/admin/v1/quarantine/nothing"} {
			wantMatrixError(t, at.call(t, "GET", "hs.test", p, "admin", nil, false), 404, "M_UNRECOGNIZED", "")
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
	if a := at.call(t, "POST", "hs.test", "/_synapse/admin/v1/media/quarantine/hs.test/"+id, "admin", nil, false); a.status != 200 || a.body != "{}\n" {
		t.Fatalf("quarantine: %d %q", a.status, a.body)
	}
	query := func(path string) map[string]any {
		t.Helper()
		a := at.call(t, "GET", "hs.test", path, "admin", nil, false)
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
		"url_cache": nil, "last_access_ts": nil, "quarantined_by": "@admin:hs.test", "authenticated": false,
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
		wantMatrixError(t, at.call(t, "GET", "hs.test", p, "admin", nil, false), 404, "M_NOT_FOUND", "")
	}
	// Quarantined remote media never fetched: still 404 here.
	if a := at.call(t, "POST", "hs.test", "/_synapse/admin/v1/media/quarantine/far.test/other", "admin", nil, false); a.status != 200 {
		t.Fatalf("quarantine uncached remote: %d %s", a.status, a.body)
	}
	wantMatrixError(t, at.call(t, "GET", "hs.test", "/_synapse/admin/v1/media/far.test/other", "admin", nil, false), 404, "M_NOT_FOUND", "")
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
		if a := at.call(t, method, "hs.test", path, "admin", nil, false); a.status != 200 || a.body != want+"\n" {
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
	created := strings.TrimPrefix(contentURI(at.call(t, "POST", "hs.test", "/_matrix/media/v1/create", "alice", nil, false)), "mxc://")
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
