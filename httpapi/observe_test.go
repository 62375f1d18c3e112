package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// newObservedAPI serves the API for hs.test (whoami knows alice) with
// Observe sending every RequestInfo to the returned channel.
func newObservedAPI(t *testing.T) (*httptest.Server, *API, <-chan RequestInfo) {
	t.Helper()
	whoami := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer alice" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"no"}`)
			return
		}
		io.WriteString(w, `{"user_id":"@alice:hs.test"}`)
	}))
	t.Cleanup(whoami.Close)
	quiet := slog.New(slog.DiscardHandler)
	st, err := media.Open(media.Options{Dir: t.TempDir(), Create: true, Logger: quiet,
		Local: func(s string) bool { return s == "hs.test" }})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan RequestInfo, 16)
	api, err := New(Options{Store: st, Homeservers: []Homeserver{{Name: "hs.test", ClientAPI: whoami.URL}},
		Logger: quiet, Observe: func(ri RequestInfo) { seen <- ri }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv, api, seen
}

// Every answered request reaches Observe once, with its route pattern
// (never the path), a bounded method, its status and body sizes both ways.
func TestObserveRequests(t *testing.T) {
	srv, api, seen := newObservedAPI(t)
	check := func(a answer, want RequestInfo) {
		t.Helper()
		got := <-seen
		if got.Duration < 0 {
			t.Errorf("%s: negative duration", a.what)
		}
		got.Duration = 0
		if want.BytesOut < 0 {
			want.BytesOut = int64(len(a.body))
		}
		if got != want {
			t.Errorf("%s: Observe got %+v, want %+v", a.what, got, want)
		}
	}
	up := call(t, srv, http.MethodPost, "/_matrix/media/v3/upload?filename=a.txt", "alice", "hello")
	check(up, RequestInfo{Route: "/_matrix/media/v3/upload", Method: "POST", Status: 200, BytesIn: 5, BytesOut: -1})
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.Unmarshal([]byte(up.body), &u); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
	dl := call(t, srv, http.MethodGet, "/_matrix/client/v1/media/download/hs.test/"+id, "alice", "")
	check(dl, RequestInfo{Route: "/_matrix/client/v1/media/download/:server/:id", Method: "GET", Status: 200, BytesOut: 5})
	nf := call(t, srv, http.MethodGet, "/_matrix/client/v1/media/download/hs.test/nosuchmedia", "alice", "")
	check(nf, RequestInfo{Route: "/_matrix/client/v1/media/download/:server/:id", Method: "GET", Status: 404, BytesOut: -1})
	check(call(t, srv, "BREW", "/coffee/pot", "", ""), RequestInfo{Route: RouteUnmatched, Method: "other", Status: 404, BytesOut: -1})
	check(call(t, srv, http.MethodOptions, "/_matrix/media/v3/upload", "", ""), RequestInfo{Route: RoutePreflight, Method: "OPTIONS", Status: 200, BytesOut: 2})
	adm := call(t, srv, http.MethodGet, "/_synapse/admin/v1/media/hs.test/"+id, "alice", "")
	check(adm, RequestInfo{Route: "/_synapse/admin/v1/media/:server/:id", Method: "GET", Status: 403, BytesOut: -1})
	check(call(t, srv, http.MethodGet, "/healthz", "", ""), RequestInfo{Route: "/healthz", Method: "GET", Status: 200, BytesOut: 3})

	// alice's token was checked with the homeserver once, then cached.
	if st := api.Stats(); st.WhoamiCacheMisses != 1 || st.WhoamiCacheHits != 3 {
		t.Errorf("Stats = %+v, want 1 miss and 3 hits", st)
	}
}
