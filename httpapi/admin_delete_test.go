package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
)

// TestAdminDeleteEndpoints: each deletion endpoint's access (401, 403 for
// a user and for another homeserver's admin), Synapse's parameter errors,
// and its answer; deleted media is 404 afterwards and its ID not reused.
func TestAdminDeleteEndpoints(t *testing.T) {
	at := newAdminTest(t)
	at.store(t, "hs.test", "one", 10)
	at.store(t, "hs.test", "big", 100)
	at.store(t, "hs.test", "small", 5)
	at.store(t, "other.test", "theirs", 100)
	at.clk.Advance(48 * time.Hour)
	cutoff := strconv.FormatInt(at.clk.Now().Add(-time.Hour).UnixMilli(), 10)
	const v1 = "/_synapse/admin/v1"

	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, v1 + "/media/hs.test/one"},
		{http.MethodPost, v1 + "/media/delete?before_ts=" + cutoff},
		{http.MethodPost, v1 + "/media/hs.test/delete?before_ts=" + cutoff},
		{http.MethodPost, v1 + "/purge_media_cache?before_ts=" + cutoff},
	} {
		wantMatrixError(t, at.hs(t, c.method, c.path, ""), 401, "M_MISSING_TOKEN", "")
		wantMatrixError(t, at.hs(t, c.method, c.path, "alice"), 403, "M_FORBIDDEN", "")
		if strings.Contains(c.path, "hs.test") {
			wantMatrixError(t, at.call(t, c.method, "other.test", c.path, "oadmin", nil, false), 403, "M_FORBIDDEN", "")
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
		tok := "admin"
		if c.host == "other.test" {
			tok = "oadmin"
		}
		t.Run(c.what, func(t *testing.T) {
			a := at.call(t, c.method, c.host, c.path, tok, nil, false)
			if c.status != http.StatusOK {
				wantMatrixError(t, a, c.status, c.want, "")
				return
			}
			wantOK(t, a, c.want)
		})
	}
	for _, id := range []string{"one", "big", "small"} {
		wantMatrixError(t, at.hs(t, http.MethodGet, "/_matrix/client/v1/media/download/hs.test/"+id, "alice"), 404, "M_NOT_FOUND", "")
		if _, err := at.st.Create(media.CreateInfo{MXC: mustMXC(t, "hs.test", id), Uploader: "@alice:hs.test"}); !errors.Is(err, media.ErrExists) {
			t.Errorf("Create of deleted %s = %v, want ErrExists", id, err)
		}
	}
	a := at.call(t, http.MethodGet, "other.test", "/_matrix/client/v1/media/download/other.test/theirs", "oadmin", nil, false)
	if a.status != http.StatusOK || len(a.body) != 100 {
		t.Errorf("other.test's media: %d with %d bytes, want it whole", a.status, len(a.body))
	}
}
