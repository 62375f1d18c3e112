package media_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// TestFederationFetcherLegacyFallback: an origin that does not know the
// federation media endpoint is fetched through the legacy path with
// allow_remote=false; an origin answering with a Location part is followed.
func TestFederationFetcherLegacyFallback(t *testing.T) {
	var legacyQuery string
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/gif")
		io.WriteString(w, "from the CDN")
	}))
	defer cdn.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/_matrix/federation/v1/media/download/old":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		case r.URL.Path == "/_matrix/media/v3/download/legacy.test/old":
			legacyQuery = r.URL.RawQuery
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Disposition", `attachment; filename*=utf-8''na%C3%AFve.txt`)
			io.WriteString(w, "legacy bytes")
		case r.URL.Path == "/_matrix/federation/v1/media/download/moved":
			b := matrix.NewBoundary()
			w.Header().Set("Content-Type", matrix.MultipartContentType(b))
			matrix.WriteMultipartRedirect(w, b, cdn.URL+"/file")
		default:
			http.NotFound(w, r)
		}
	}))
	defer origin.Close()
	key, _ := matrix.GenerateSigningKey("k")
	fc := &matrix.FedClient{Resolver: &matrix.Resolver{Routes: map[string]string{"legacy.test": origin.URL}}, Origin: "us.test", Key: key}
	f := media.FederationFetcher{Client: fc}

	rm, err := f.Fetch(context.Background(), mustMXC("legacy.test", "old"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rm.Body)
	rm.Body.Close()
	if string(b) != "legacy bytes" || rm.ContentType != "text/plain" || rm.UploadName != "naïve.txt" {
		t.Errorf("legacy fallback: %q %q %q", b, rm.ContentType, rm.UploadName)
	}
	if !strings.Contains(legacyQuery, "allow_remote=false") {
		t.Errorf("legacy query %q lacks allow_remote=false", legacyQuery)
	}
	rm, err = f.Fetch(context.Background(), mustMXC("legacy.test", "moved"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rm.Body)
	rm.Body.Close()
	if string(b) != "from the CDN" || rm.ContentType != "image/gif" {
		t.Errorf("Location: %q %q", b, rm.ContentType)
	}
	if _, err := f.Fetch(context.Background(), mustMXC("legacy.test", "gone")); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("unknown media: %v, want ErrNotFound", err)
	}
}
