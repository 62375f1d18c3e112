package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/testkit"
)

// previewSite is a site on loopback: /page is an OpenGraph page whose
// image is the relative /img.png, a 6x4 PNG. It counts connections.
func previewSite(t *testing.T) (base string, pic []byte, cl *testkit.CountingListener) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 6, 4))); err != nil {
		t.Fatal(err)
	}
	pic = b.Bytes()
	srv, cl := testkit.NewCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!doctype html><html><head><title>Not this</title>
<meta property="og:title" content="A page">
<meta property="og:description" content="About it">
<meta property="og:image" content="/img.png">
</head><body>SECRET</body></html>`)
		case "/img.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(pic)
		default:
			http.NotFound(w, r)
		}
	}))
	return srv.URL, pic, cl
}

func previewPath(u string) string {
	return "/_matrix/client/v1/media/preview_url?url=" + url.QueryEscape(u)
}

// The real server previews a page on loopback when allowed_networks allows
// it: the OpenGraph object, its image stored as a.test's media with type,
// size and dimensions, downloadable by the client.
func TestPreviewE2E(t *testing.T) {
	base, pic, _ := previewSite(t)
	s := startE2E(t, func(c *config.Config) { c.URLPreviews.AllowedNetworks = []string{"127.0.0.1/32"} })
	r := s.do(t, http.MethodGet, hostA, previewPath(base+"/page"), aliceToken, nil, nil)
	if !wantStatus(t, r, http.StatusOK) {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var og map[string]any
	if err := json.Unmarshal(r.Body, &og); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	for k, want := range map[string]any{"og:title": "A page", "og:description": "About it", "og:image:type": "image/png",
		"og:image:width": 6.0, "og:image:height": 4.0, "matrix:image:size": float64(len(pic))} {
		if og[k] != want {
			t.Errorf("%s = %v, want %v (preview %s)", k, og[k], want, r.Body)
		}
	}
	img, _ := og["og:image"].(string)
	m, err := matrix.ParseMXC(img)
	if err != nil || m.Server() != hostA {
		t.Fatalf("og:image %q (%v), want an mxc URI of %s", img, err, hostA)
	}
	d := s.download(t, hostA, hostA, m.MediaID(), aliceToken)
	if wantStatus(t, d, http.StatusOK) && !bytes.Equal(d.Body, pic) {
		t.Errorf("the stored image differs from the site's (%d bytes, want %d)", len(d.Body), len(pic))
	}
}

// With the default configuration the loopback site is refused before a
// connection is made.
func TestPreviewE2EDefaultRefusesLoopback(t *testing.T) {
	base, _, cl := previewSite(t)
	s := startE2E(t, nil)
	wantError(t, s.do(t, http.MethodGet, hostA, previewPath(base+"/page"), aliceToken, nil, nil), http.StatusForbidden, "M_FORBIDDEN")
	if n := cl.Accepts(); n != 0 {
		t.Errorf("the site accepted %d connections, want none", n)
	}
}

// enabled = false: the endpoint is unrecognised and nothing is fetched.
func TestPreviewE2EDisabled(t *testing.T) {
	base, _, cl := previewSite(t)
	s := startE2E(t, func(c *config.Config) {
		c.URLPreviews.Enabled = false
		c.URLPreviews.AllowedNetworks = []string{"127.0.0.1/32"}
	})
	wantError(t, s.do(t, http.MethodGet, hostA, previewPath(base+"/page"), aliceToken, nil, nil), http.StatusNotFound, "M_UNRECOGNIZED")
	wantError(t, s.do(t, http.MethodGet, hostA, previewPath(base+"/page"), "", nil, nil), http.StatusUnauthorized, "M_MISSING_TOKEN")
	if n := cl.Accepts(); n != 0 {
		t.Errorf("the site accepted %d connections, want none", n)
	}
}
