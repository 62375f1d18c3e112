package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// FuzzRequestPath sends arbitrary paths and queries through the router and
// the handlers: whatever the path, the answer is never a 500, and every
// error is Matrix JSON with an errcode.
func FuzzRequestPath(f *testing.F) {
	for _, s := range []string{
		"/_matrix/client/v1/media/download/example.org/abc",
		"/_matrix/client/v1/media/download/example.org/abc/name%20x.png",
		"/_matrix/media/v3/download/example.org/a%2Fb",
		"/_matrix/media/v3/download/../../etc/passwd",
		"/_matrix/client/v1/media/thumbnail/example.org/abc?width=-1&height=x",
		"/_matrix/media/v3/upload/example.org/abc?filename=%00",
		"/_matrix/media/r0/config",
		"/_matrix/client/v1/media/download/[::1]:8448/abc?timeout_ms=1",
		"/_matrix/client/v1/media/download/example.org/abc?timeout_ms=99999999999999999999",
	} {
		f.Add(uint8(0), s, true)
	}
	st, err := media.Open(media.Options{Create: true, Dir: f.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	api, err := New(Options{
		Store:       st,
		Homeservers: []Homeserver{{Name: "example.org", ClientAPI: "http://127.0.0.1:9", StaticTokens: map[string]string{"t": "@u:example.org"}}},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead}
	f.Fuzz(func(t *testing.T, method uint8, target string, withToken bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			return
		}
		req := &http.Request{
			Method: methods[int(method)%len(methods)], URL: u, Host: "example.org", RequestURI: target,
			Header: http.Header{}, Body: http.NoBody, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		}
		req = req.WithContext(t.Context())
		if withToken {
			req.Header.Set("Authorization", "Bearer t")
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", req.Method, target, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && req.Method != http.MethodHead {
			var e struct {
				Errcode string `json:"errcode"`
				Error   string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.HasPrefix(e.Errcode, "M_") {
				t.Fatalf("%s %q: %d with body %q, want Matrix JSON", req.Method, target, rec.Code, rec.Body)
			}
		}
	})
}
