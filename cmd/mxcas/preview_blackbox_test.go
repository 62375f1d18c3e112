package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/testkit"
)

// Black-box checks of preview_url through the real server, as Synapse's
// tests/rest/media/test_url_preview.py makes them: a page whose
// http-equiv names its charset against the header's (test_non_ascii_preview_httpequiv),
// an image inlined as a data: URL stored as our media with int dimensions
// (test_inline_data_url), and, with 127.0.0.1 allowed, IPv4 hosts in other
// forms than dotted decimal refused with 403 M_FORBIDDEN on the client and
// legacy paths before any connection.
func TestPreviewBlackboxE2E(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	pic := b.Bytes()
	srv, cl := testkit.NewCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/charset":
			w.Header().Set("Content-Type", `text/html; charset="utf8"`)
			io.WriteString(w, `<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"/>`+
				"<meta property=\"og:title\" content=\"\xe4\xea\xe0\" /><meta property=\"og:description\" content=\"hi\" /></head></html>")
		case "/inline":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<html><head><img src="data:image/png;base64,`+base64.StdEncoding.EncodeToString(pic)+`" /></head></html>`)
		default:
			http.NotFound(w, r)
		}
	}))
	s := startE2E(t, func(c *config.Config) { c.URLPreviews.AllowedNetworks = []string{"127.0.0.1/32"} })

	preview := func(path, u string) map[string]any {
		t.Helper()
		r := s.do(t, http.MethodGet, hostA, path+"?url="+strings.ReplaceAll(u, "&", "%26"), aliceToken, nil, nil)
		if !wantStatus(t, r, http.StatusOK) {
			return nil
		}
		var og map[string]any
		if err := json.Unmarshal(r.Body, &og); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		return og
	}
	const client, legacy = "/_matrix/client/v1/media/preview_url", "/_matrix/media/v3/preview_url"

	if og := preview(client, srv.URL+"/charset"); og != nil && (og["og:title"] != "дка" || og["og:description"] != "hi") {
		t.Errorf("preview %v, want og:title дка (windows-1251 by http-equiv) and og:description hi", og)
	}

	og := preview(legacy, srv.URL+"/inline")
	for k, want := range map[string]any{"og:image:type": "image/png", "og:image:width": 3.0, "og:image:height": 2.0,
		"matrix:image:size": float64(len(pic))} {
		if og[k] != want {
			t.Errorf("%s = %#v, want %v (preview %v)", k, og[k], want, og)
		}
	}
	img, _ := og["og:image"].(string)
	m, err := matrix.ParseMXC(img)
	if err != nil || m.Server() != hostA {
		t.Fatalf("og:image %q (%v), want an mxc URI of %s", img, err, hostA)
	}
	wantBytes(t, s.download(t, hostA, hostA, m.MediaID(), aliceToken), pic)

	before := cl.Accepts()
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	for _, u := range []string{"http://2130706433:" + port + "/charset", "http://0177.0.0.1:" + port + "/charset",
		"http://127.1:" + port + "/charset", "http://127.0.0.1.:" + port + "/charset"} {
		for _, path := range []string{client, legacy, "/_matrix/media/r0/preview_url"} {
			wantError(t, s.do(t, http.MethodGet, hostA, path+"?url="+u, aliceToken, nil, nil), http.StatusForbidden, "M_FORBIDDEN")
		}
	}
	if n := cl.Accepts() - before; n != 0 {
		t.Errorf("the site accepted %d connections for refused hosts, want none", n)
	}
}
