package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A standby's API refuses every write (uploads, creates and their PUTs,
// URL previews, every admin request but GETs) with 503 M_UNKNOWN naming
// the primary, and changes nothing; reads are served; SetStandby("") lifts
// the refusal at once.
func TestStandbyRefusesWrites(t *testing.T) {
	const primary = "http://primary.test:8009"
	at := newAdminTest(t, func(o *Options) { o.Standby = primary })
	api := at.srv.Config.Handler.(*API)
	at.store(t, "hs.test", "kept", 100)
	head := at.st.Head()

	type req struct{ method, path, tok, body string }
	writes := []req{
		{"POST", "/_matrix/media/v3/upload", "alice", "new"},
		{"POST", "/_matrix/media/r0/upload", "alice", "new"},
		{"POST", "/_matrix/media/v1/upload", "alice", "new"},
		{"POST", "/_matrix/media/v1/create", "alice", ""},
		{"POST", "/_matrix/media/v3/create", "alice", ""},
		{"PUT", "/_matrix/media/v3/upload/hs.test/kept", "alice", "new"},
		{"PUT", "/_matrix/media/r0/upload/hs.test/kept", "alice", "new"},
		{"GET", "/_matrix/media/v3/preview_url?url=" + url.QueryEscape("https://example.org/"), "alice", ""},
		{"GET", "/_matrix/client/v1/media/preview_url?url=" + url.QueryEscape("https://example.org/"), "alice", ""},
	}
	fill := strings.NewReplacer(":server", "hs.test", ":id", "kept", ":user_id", url.PathEscape("@alice:hs.test"))
	nAdmin := 0
	for _, rt := range api.adminRouteTable() {
		if rt.method != http.MethodGet {
			writes = append(writes, req{rt.method, fill.Replace(rt.pattern), "admin", "{}"})
			nAdmin++
		}
	}
	if nAdmin < 10 {
		t.Fatalf("%d admin write routes found; the table walk is broken", nAdmin)
	}
	for _, w := range writes {
		a := at.call(t, w.method, "hs.test", w.path, w.tok, []byte(w.body), false)
		var e struct{ Errcode, Error string }
		json.Unmarshal([]byte(a.body), &e)
		if a.status != http.StatusServiceUnavailable || e.Errcode != "M_UNKNOWN" ||
			e.Error != "this server is a read-only standby of "+primary+"; write to the primary" {
			t.Errorf("%s %s on a standby: %d %s; want 503 M_UNKNOWN naming the primary", w.method, w.path, a.status, a.body)
		}
	}
	if got := at.st.Head(); got != head {
		t.Errorf("the refused writes changed the store: head %d, want %d", got, head)
	}

	reads := []req{
		{"GET", "/_matrix/client/v1/media/download/hs.test/kept", "bob", ""},
		{"GET", "/_matrix/client/v1/media/config", "bob", ""},
		{"GET", "/_synapse/admin/v1/media/hs.test/kept", "admin", ""},
		{"GET", "/_mxcas/admin/v1/usage", "admin", ""},
	}
	for _, r := range reads {
		if a := at.call(t, r.method, "hs.test", r.path, r.tok, nil, false); a.status != http.StatusOK {
			t.Errorf("%s %s on a standby: %d %s; want 200", r.method, r.path, a.status, a.body)
		}
	}

	api.SetStandby("") // promoted
	at.upload(t, []byte("after promotion"))
	if at.st.Head() == head {
		t.Errorf("an upload after SetStandby(\"\") did not reach the store")
	}
}
