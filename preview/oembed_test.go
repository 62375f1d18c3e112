package preview_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/preview"
)

// TestPreviewOEmbedDiscovery: a page naming its oEmbed answer gets the
// answer's title, site and thumbnail; the page's tags fill what the answer
// lacks; the answer's html never comes through.
func TestPreviewOEmbedDiscovery(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/watch", page("text/html", `<head>
		<link rel="alternate" type="application/json+oembed" href="/oembed?id=1">
		<meta property="og:description" content="From the page."></head>`))
	mux.Handle("/oembed", page("application/json", `{"version": "1.0", "type": "video", "title": "Clip &amp; title",
		"provider_name": "Tube", "author_name": "Ann", "thumbnail_url": "/thumb.jpg", "description": "x",
		"html": "<iframe src=\"https://evil.example/\"></iframe><script>alert(1)</script>"}`))
	srv := serve(t, mux)
	got, err := newFetcher(t, loopback).Preview(context.Background(), srv.URL+"/watch")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"og:url": srv.URL + "/watch", "og:title": "Clip & title", "og:site_name": "Tube",
		"og:type": "video.other", "og:description": "From the page."}
	checkResult(t, got, want, srv.URL+"/thumb.jpg")
}

// TestPreviewOEmbedProvider: a URL a provider's scheme matches is asked of
// the provider, not fetched; a photo's url is the image, the author the
// title of last resort.
func TestPreviewOEmbedProvider(t *testing.T) {
	mux := http.NewServeMux()
	asked := make(chan url.Values, 1)
	mux.HandleFunc("/api/oembed.json", func(w http.ResponseWriter, r *http.Request) {
		asked <- r.URL.Query()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"version": 1, "type": "photo", "author_name": "Bob", "url": "/full.jpg",
			"thumbnail_url": "/small.jpg", "html": "<b>never</b>"}`))
	})
	mux.HandleFunc("/photos/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the page %s was fetched", r.URL)
	})
	srv := serve(t, mux)
	host := strings.TrimPrefix(srv.URL, "http://")
	f := newFetcher(t, loopback, func(o *preview.Options) {
		o.Providers = []preview.Provider{{Name: "Test", Endpoint: srv.URL + "/api/oembed.{format}",
			Schemes: []string{"https://" + host + "/photos/*"}}}
	})
	target := srv.URL + "/photos/42?x=1"
	got, err := f.Preview(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if q := <-asked; q.Get("url") != target || q.Get("format") != "json" {
		t.Errorf("provider asked %v", q)
	}
	want := map[string]string{"og:url": target, "og:title": "Bob"}
	checkResult(t, got, want, srv.URL+"/full.jpg")
}

// TestDefaultProviders: the shipped list is valid and matches what it
// should, and only that.
func TestDefaultProviders(t *testing.T) {
	ps := preview.DefaultProviders()
	if _, err := preview.New(preview.Options{DialContext: loopback.DialContext, Providers: ps}); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range ps {
		names[p.Name] = true
	}
	for _, n := range []string{"YouTube", "Vimeo", "Twitter", "Flickr", "SoundCloud", "Spotify", "Reddit", "TikTok"} {
		if !names[n] {
			t.Errorf("no provider %s", n)
		}
	}
}
