package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// adminServers is the API over a real store for two homeservers,
// hs.test (admin "adm", user "usr") and other.test (admin "oadm"), with
// static tokens; the store's clock is clk.
func adminServers(t *testing.T, clk *testkit.Clock) (*httptest.Server, *media.Store) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet, Now: clk.Now,
		Local: func(s string) bool { return s == "hs.test" || s == "other.test" }})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{Store: st, Logger: quiet, Homeservers: []Homeserver{
		{Name: "hs.test", Admins: []string{"@adm:hs.test"}, StaticTokens: map[string]string{"adm": "@adm:hs.test", "usr": "@usr:hs.test"}},
		{Name: "other.test", Admins: []string{"@oadm:other.test"}, StaticTokens: map[string]string{"oadm": "@oadm:other.test"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv, st
}

func storeMedia(t *testing.T, st *media.Store, server, id string, size int) {
	t.Helper()
	m, err := matrix.NewMXC(server, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Upload(context.Background(), media.UploadInfo{MXC: m, Uploader: "@usr:" + server, Size: int64(size)},
		bytes.NewReader(bytes.Repeat([]byte{'x'}, size))); err != nil {
		t.Fatal(err)
	}
}

func wantAnswer(t *testing.T, a answer, what string, status int, errcodeOrBody string) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: %d %s, want %d", what, a.status, a.body, status)
		return
	}
	if status != http.StatusOK {
		if got := errcode(t, a); got != errcodeOrBody {
			t.Errorf("%s: errcode %s (%s), want %s", what, got, a.body, errcodeOrBody)
		}
		return
	}
	var got, want any
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatalf("%s: %s: %v", what, a.body, err)
	}
	json.Unmarshal([]byte(errcodeOrBody), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s: body %s, want %s", what, gb, wb)
	}
}

// TestAdminDeleteEndpoints: each deletion endpoint's access (401, 403 for
// a user and for another homeserver's admin), Synapse's parameter errors,
// and its answer; deleted media is 404 afterwards and its ID not reused.
func TestAdminDeleteEndpoints(t *testing.T) {
	clk := testkit.NewClock(time.Now().Add(-48 * time.Hour))
	srv, st := adminServers(t, clk)
	storeMedia(t, st, "hs.test", "one", 10)
	storeMedia(t, st, "hs.test", "big", 100)
	storeMedia(t, st, "hs.test", "small", 5)
	storeMedia(t, st, "other.test", "theirs", 100)
	clk.Advance(48 * time.Hour)
	cutoff := strconv.FormatInt(clk.Now().Add(-time.Hour).UnixMilli(), 10)
	const v1 = "/_synapse/admin/v1"

	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, v1 + "/media/hs.test/one"},
		{http.MethodPost, v1 + "/media/delete?before_ts=" + cutoff},
		{http.MethodPost, v1 + "/media/hs.test/delete?before_ts=" + cutoff},
		{http.MethodPost, v1 + "/purge_media_cache?before_ts=" + cutoff},
	} {
		what := c.method + " " + c.path
		wantAnswer(t, callHost(t, srv, c.method, "hs.test", c.path, "", ""), what+" without token", 401, "M_MISSING_TOKEN")
		wantAnswer(t, callHost(t, srv, c.method, "hs.test", c.path, "usr", ""), what+" by a user", 403, "M_FORBIDDEN")
		if strings.Contains(c.path, "hs.test") {
			wantAnswer(t, callHost(t, srv, c.method, "other.test", c.path, "oadm", ""), what+" by other.test's admin", 403, "M_FORBIDDEN")
		}
	}

	for _, c := range []struct {
		what, method, host, path string
		status                   int
		want                     string
	}{
		{"remote media", http.MethodDelete, "hs.test", v1 + "/media/far.test/x", 400, "M_UNKNOWN"},
		{"unknown media", http.MethodDelete, "hs.test", v1 + "/media/hs.test/nope", 404, "M_NOT_FOUND"},
		{"no before_ts", http.MethodPost, "hs.test", v1 + "/media/delete", 400, "M_MISSING_PARAM"},
		{"negative before_ts", http.MethodPost, "hs.test", v1 + "/media/delete?before_ts=-1", 400, "M_INVALID_PARAM"},
		{"before_ts in seconds", http.MethodPost, "hs.test", v1 + "/media/delete?before_ts=1700000000", 400, "M_INVALID_PARAM"},
		{"negative size_gt", http.MethodPost, "hs.test", v1 + "/media/delete?before_ts=" + cutoff + "&size_gt=-1", 400, "M_INVALID_PARAM"},
		{"bad keep_profiles", http.MethodPost, "hs.test", v1 + "/media/delete?before_ts=" + cutoff + "&keep_profiles=yes", 400, "M_INVALID_PARAM"},
		{"legacy form, remote server", http.MethodPost, "hs.test", v1 + "/media/far.test/delete?before_ts=" + cutoff, 400, "M_UNKNOWN"},
		{"purge without before_ts", http.MethodPost, "hs.test", v1 + "/purge_media_cache", 400, "M_MISSING_PARAM"},
		{"purge before_ts in seconds", http.MethodPost, "hs.test", v1 + "/purge_media_cache?before_ts=1700000000", 400, "M_INVALID_PARAM"},
		{"delete one", http.MethodDelete, "hs.test", v1 + "/media/hs.test/one", 200, `{"deleted_media":["one"],"total":1}`},
		{"delete it again", http.MethodDelete, "hs.test", v1 + "/media/hs.test/one", 404, "M_NOT_FOUND"},
		{"by date and size", http.MethodPost, "hs.test", v1 + "/media/delete?before_ts=" + cutoff + "&size_gt=50&keep_profiles=false", 200, `{"deleted_media":["big"],"total":1}`},
		{"legacy form", http.MethodPost, "hs.test", v1 + "/media/hs.test/delete?before_ts=" + cutoff, 200, `{"deleted_media":["small"],"total":1}`},
		{"nothing left", http.MethodPost, "hs.test", v1 + "/media/delete?before_ts=" + cutoff, 200, `{"deleted_media":[],"total":0}`},
		{"purge, nothing cached", http.MethodPost, "other.test", v1 + "/purge_media_cache?before_ts=" + cutoff, 200, `{"deleted":0}`},
	} {
		tok := "adm"
		if c.host == "other.test" {
			tok = "oadm"
		}
		wantAnswer(t, callHost(t, srv, c.method, c.host, c.path, tok, ""), c.what, c.status, c.want)
	}
	for _, id := range []string{"one", "big", "small"} {
		a := callHost(t, srv, http.MethodGet, "hs.test", "/_matrix/client/v1/media/download/hs.test/"+id, "usr", "")
		wantAnswer(t, a, "download of deleted "+id, 404, "M_NOT_FOUND")
		m, _ := matrix.NewMXC("hs.test", id)
		if _, err := st.Create(media.CreateInfo{MXC: m, Uploader: "@usr:hs.test"}); !errors.Is(err, media.ErrExists) {
			t.Errorf("Create of deleted %s = %v, want ErrExists", id, err)
		}
	}
	a := callHost(t, srv, http.MethodGet, "other.test", "/_matrix/client/v1/media/download/other.test/theirs", "oadm", "")
	if a.status != http.StatusOK || len(a.body) != 100 {
		t.Errorf("other.test's media: %d with %d bytes, want it whole", a.status, len(a.body))
	}
}
