package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/preview"
)

// sitePreviewer previews https://site.test/<path>: "ok" has a title,
// "forbidden", "down" and "bad" fail as their names say.
type sitePreviewer struct{}

func (sitePreviewer) Preview(_ context.Context, u string) (preview.Result, error) {
	switch u {
	case "https://site.test/ok":
		return preview.Result{OG: map[string]string{"og:title": "OK"}}, nil
	case "https://site.test/forbidden":
		return preview.Result{}, preview.ErrForbidden
	case "https://site.test/bad":
		return preview.Result{}, preview.ErrBadURL
	}
	return preview.Result{}, preview.ErrUnavailable
}

func (sitePreviewer) Image(context.Context, string) (preview.Image, error) {
	return preview.Image{}, preview.ErrUnavailable
}

var previewPaths = []string{
	"/_matrix/client/v1/media/preview_url",
	"/_matrix/media/v3/preview_url",
	"/_matrix/media/r0/preview_url",
	"/_matrix/media/v1/preview_url",
}

func previewQuery(u string) string { return "?url=" + url.QueryEscape(u) }

func TestPreviewURLEndpoint(t *testing.T) {
	srv := newTestAPIStore(t, media.Options{Dir: t.TempDir(), Previews: sitePreviewer{}})
	for _, p := range previewPaths {
		a := call(t, srv, "GET", p+previewQuery("https://site.test/ok")+"&ts=1700000000000", "alice", "")
		var og map[string]any
		if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(a.body), &og) != nil || og["og:title"] != "OK" {
			t.Errorf("%s: %d %q %s; want 200 application/json with og:title OK", a.what, a.status, a.header.Get("Content-Type"), a.body)
		}
		if h := call(t, srv, "HEAD", p+previewQuery("https://site.test/ok"), "alice", ""); h.status != http.StatusOK || h.body != "" {
			t.Errorf("%s: %d %q, want 200 without a body", h.what, h.status, h.body)
		}
		// The token is checked first, also when parameters are wrong.
		wantMatrixError(t, call(t, srv, "GET", p, "", ""), http.StatusUnauthorized, "M_MISSING_TOKEN", "")
		wantMatrixError(t, call(t, srv, "GET", p+previewQuery("https://site.test/ok"), "gone", ""), http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "")
		wantMatrixError(t, call(t, srv, "GET", p+previewQuery("https://site.test/ok"), "gus", ""), http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "")
	}
	const p = "/_matrix/client/v1/media/preview_url"
	for _, tc := range []struct {
		query   string
		status  int
		errcode string
		msg     string
	}{
		{"", http.StatusBadRequest, "M_MISSING_PARAM", "url"},
		{"?url=", http.StatusBadRequest, "M_MISSING_PARAM", "url"},
		{previewQuery("https://site.test/ok") + "&ts=soon", http.StatusBadRequest, "M_INVALID_PARAM", "ts"},
		{previewQuery("https://site.test/ok") + "&ts=-1", http.StatusBadRequest, "M_INVALID_PARAM", "ts"},
		{previewQuery("ftp://site.test/ok"), http.StatusBadRequest, "M_INVALID_PARAM", "http"},
		{previewQuery("https://site.test/bad"), http.StatusBadRequest, "M_INVALID_PARAM", "bad url"},
		{previewQuery("https://site.test/forbidden"), http.StatusForbidden, "M_FORBIDDEN", "may not be previewed"},
		{previewQuery("https://site.test/down"), http.StatusBadGateway, "M_UNKNOWN", "unreachable"},
	} {
		wantMatrixError(t, call(t, srv, "GET", p+tc.query, "alice", ""), tc.status, tc.errcode, tc.msg)
	}
}

// With previews off the endpoint is unrecognised, after the token check.
func TestPreviewURLDisabled(t *testing.T) {
	srv := newTestAPI(t)
	for _, p := range previewPaths {
		wantMatrixError(t, call(t, srv, "GET", p+previewQuery("https://site.test/ok"), "alice", ""), http.StatusNotFound, "M_UNRECOGNIZED", "disabled")
		wantMatrixError(t, call(t, srv, "GET", p, "", ""), http.StatusUnauthorized, "M_MISSING_TOKEN", "")
	}
}
