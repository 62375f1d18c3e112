package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// TestSetHomeservers checks that a new homeserver table applies to the
// next request: a new static token works, a removed one is refused, a
// new admin is one, a new homeserver name is served and a removed one is
// not; an empty table is refused and changes nothing.
func TestSetHomeservers(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Dir: t.TempDir(), Create: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{Store: st, Logger: quiet, Homeservers: []Homeserver{
		{Name: "hs.test", StaticTokens: map[string]string{"old": "@old:hs.test"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); st.Close() })
	const cfgPath, usagePath = "/_matrix/client/v1/media/config", "/_synapse/admin/v1/statistics/users/media"

	if a := call(t, srv, http.MethodGet, cfgPath, "old", ""); a.status != http.StatusOK {
		t.Fatalf("%s: %d %s before the change", a.what, a.status, a.body)
	}
	if err := api.SetHomeservers(nil); err == nil {
		t.Error("SetHomeservers(nil) = nil, want an error")
	}
	if a := call(t, srv, http.MethodGet, cfgPath, "old", ""); a.status != http.StatusOK {
		t.Fatalf("%s: %d %s after a refused change", a.what, a.status, a.body)
	}

	err = api.SetHomeservers([]Homeserver{
		{Name: "hs.test", Admins: []string{"@new:hs.test"}, StaticTokens: map[string]string{"new": "@new:hs.test"}},
		{Name: "added.test", StaticTokens: map[string]string{"added": "@a:added.test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantMatrixError(t, call(t, srv, http.MethodGet, cfgPath, "old", ""), http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "")
	if a := call(t, srv, http.MethodGet, cfgPath, "new", ""); a.status != http.StatusOK {
		t.Errorf("%s: %d %s, want 200", a.what, a.status, a.body)
	}
	if a := call(t, srv, http.MethodGet, usagePath, "new", ""); a.status != http.StatusOK {
		t.Errorf("%s: %d %s, want 200 for the new admin", a.what, a.status, a.body)
	}
	if a := callHost(t, srv, http.MethodGet, "added.test", cfgPath, "added", ""); a.status != http.StatusOK {
		t.Errorf("%s: %d %s, want 200 on the added homeserver", a.what, a.status, a.body)
	}

	if err := api.SetHomeservers([]Homeserver{{Name: "added.test", StaticTokens: map[string]string{"added": "@a:added.test"}}}); err != nil {
		t.Fatal(err)
	}
	wantMatrixError(t, call(t, srv, http.MethodGet, cfgPath, "new", ""), http.StatusNotFound, "M_NOT_FOUND", "")
}
