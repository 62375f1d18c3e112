package preview_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/png"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/netguard"
	"github.com/mxcas/mxcas/preview"
)

// Black-box cases from Synapse's own tests (tests/media/test_html_preview.py,
// tests/rest/media/test_url_preview.py), served over loopback and
// previewed by a real Fetcher. Where Synapse answers "og:title": null, we
// leave the key out.
func TestBlackboxSynapsePages(t *testing.T) {
	const html = "text/html"
	tests := []struct {
		name, ct, body string
		want           map[string]string
	}{
		{"simple", html, "<html><head><title>Foo</title></head><body>\nSome text.\n</body></html>",
			map[string]string{"og:title": "Foo", "og:description": "Some text."}},
		{"comment splits text nodes", html, "<html><head><title>Foo</title></head><body>\nSome text.\n" +
			"<!-- HTML comment -->\nSome more text.\n<p>Text</p>\nMore text\n</body></html>",
			map[string]string{"og:title": "Foo", "og:description": "Some text.\n\nSome more text.\n\nText\n\nMore text"}},
		{"nested nodes, each a paragraph", html, `<a href="somewhere">Welcome <b>the bold <u>and underlined text <svg>
			with a cheeky SVG</svg></u> and <strong>some</strong> tail text</b></a>`,
			map[string]string{"og:description": "Welcome\n\nthe bold\n\nand underlined text\n\nand\n\nsome\n\ntail text"}},
		{"empty title, h1", html, "<html><head><title></title></head><body><h1>Title</h1></body></html>",
			map[string]string{"og:title": "Title", "og:description": "Title"}},
		{"broken h1", html, `<html><body><h1><a href="foo"/></h1>Some text.</body></html>`,
			map[string]string{"og:description": "Some text."}},
		{"NUL body", html, "\x00", map[string]string{}},
		{"control characters dropped", html, "<title>a\x01b\x7fc</title>", map[string]string{"og:title": "abc"}},
		{"undeclared invalid UTF-8 is windows-1252", html, "<html><head><title>\xff\xff Foo</title></head><body>Some text.</body></html>",
			map[string]string{"og:title": "ÿÿ Foo", "og:description": "Some text."}},
		{"declared UTF-8 that is not: windows-1252", "text/html; charset=utf-8", "<title>\xff\xff Foo</title>",
			map[string]string{"og:title": "ÿÿ Foo"}},
		{"unknown charset ignored", "text/html; charset=invalid-encoding", "<title>Foo</title>",
			map[string]string{"og:title": "Foo"}},
		{"http-equiv beats the header", `text/html; charset="utf8"`,
			`<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"/>` +
				"<meta property=\"og:title\" content=\"\xe4\xea\xe0\" /><meta property=\"og:description\" content=\"hi\" /></head></html>",
			map[string]string{"og:title": "дка", "og:description": "hi"}},
		{"meta charset beats the header", "text/html; charset=iso-8859-1", "<meta charset=\"Shift_JIS\"><title>\x93\xfa\x96\x7b</title>",
			map[string]string{"og:title": "日本"}},
		{"malformed header's charset", `text/html; charset="windows-1251;`, "<title>\xe4\xea\xe0</title>",
			map[string]string{"og:title": "дка"}},
		{"XML declaration", html, `<?xml version="1.0" encoding="windows-1251"?>` + "<html><title>\xe4\xea\xe0</title></html>",
			map[string]string{"og:title": "дка"}},
		{"overlong title dropped", `text/html; charset="windows-1251"`,
			"<html><head><title>" + strings.Repeat("x", 2000) + "</title><meta property=\"og:description\" content=\"hi\" /></head></html>",
			map[string]string{"og:description": "hi"}},
		{"twitter:site is og:site_name", html, `<meta name="twitter:card" content="summary">
			<meta name="twitter:description" content="Description"><meta name="twitter:site" content="@matrixdotorg">`,
			map[string]string{"og:description": "Description", "og:site_name": "@matrixdotorg"}},
		{"twitter does not override og", html, `<meta name="twitter:card" content="summary">
			<meta name="twitter:description" content="Description"><meta property="og:description" content="Real Description">
			<meta name="twitter:site" content="@matrixdotorg"><meta property="og:site_name" content="matrix.org">`,
			map[string]string{"og:description": "Real Description", "og:site_name": "matrix.org"}},
		{"extended OpenGraph", html, `<meta property="og:description" content="My description" />
			<meta property="profile:username" content="myname"><meta property="article:published_time" content="2026-04-07T10:07:37Z">`,
			map[string]string{"og:description": "My description", "profile:username": "myname",
				"article:published_time": "2026-04-07T10:07:37Z"}},
	}
	var pages []pageTest
	for _, tt := range tests {
		pages = append(pages, pageTest{name: tt.name, ct: tt.ct, body: tt.body, want: tt.want})
	}
	runPageTests(t, pages)
}

// An image inlined in the page as a data: URL is the preview's image,
// decoded (Synapse's test_inline_data_url); one whose bytes are not an
// image gives none (only the first <img> is a candidate, as in Synapse).
func TestBlackboxDataURLImage(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	pic := b.Bytes()
	mux := http.NewServeMux()
	mux.Handle("/inline", page("text/html", `<html><head><img src="data:image/png;base64,`+
		base64.StdEncoding.EncodeToString(pic)+`" /></head></html>`))
	mux.Handle("/fake", page("text/html", `<img src="data:image/png;base64,AAAA"><img src="/real.png">`))
	srv := serve(t, mux)
	f := newFetcher(t, loopback)

	got, err := f.Preview(context.Background(), srv.URL+"/inline")
	if err != nil {
		t.Fatal(err)
	}
	if got.Image == nil || !bytes.Equal(got.Image.Body, pic) || got.Image.ContentType != "image/png" || got.Image.URL != "" {
		t.Fatalf("image = %+v, want the inlined PNG (%d bytes), image/png, no URL", got.Image, len(pic))
	}
	got, err = f.Preview(context.Background(), srv.URL+"/fake")
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, got, map[string]string{}, "")
}

// A discovered oEmbed answer overlays the page (Synapse: {**html, **oembed}):
// its title and image win, og:url is the page's URL.
func TestBlackboxOEmbedOverlaysPage(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/watch", page("text/html", `<head><title>Page title</title>
		<meta property="og:url" content="https://elsewhere.example/">
		<meta property="og:image" content="/page.png"><meta property="og:description" content="Page text.">
		<link rel="alternate" type="application/json+oembed" href="/oembed"></head>`))
	mux.Handle("/oembed", page("application/json", `{"version": "1.0", "type": "photo", "title": "Answer title",
		"url": "/photo.png", "author_name": "Ann"}`))
	srv := serve(t, mux)
	got, err := newFetcher(t, loopback).Preview(context.Background(), srv.URL+"/watch")
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, got, map[string]string{"og:title": "Answer title", "og:description": "Page text.",
		"og:url": srv.URL + "/watch"}, srv.URL+"/photo.png")
}

// Every SSRF form the issue and the review list is refused with
// ErrForbidden before or at the dial, and the server on loopback sees no
// request: even with 127.0.0.1 allowed, IPv4 hosts in decimal, octal,
// hexadecimal or short form, or with a trailing dot, are refused (who
// reads them how is not ours to guess); with the default guard, loopback
// in every spelling is, a name's trailing dot included.
func TestBlackboxSSRFForms(t *testing.T) {
	var hits atomic.Int64 // requests for anything but /redirect
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
			return
		}
		hits.Add(1)
		page("text/html", "<title>reached</title>")(w, r)
	}))
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://127.0.0.1"), ":")
	allowing := newFetcher(t, loopback)
	strict := newFetcher(t, netguard.New(netguard.Options{}))
	resolvingToLoopback := newFetcher(t, netguard.New(netguard.Options{}), func(o *preview.Options) {
		o.DialContext = resolving(netguard.New(netguard.Options{}), "127.0.0.1")
	})
	tests := []struct {
		name string
		f    *preview.Fetcher
		url  string
	}{
		{"decimal", allowing, "http://2130706433:" + port + "/"},
		{"octal", allowing, "http://0177.0.0.1:" + port + "/"},
		{"hexadecimal", allowing, "http://0x7f.0.0.1:" + port + "/"},
		{"short form", allowing, "http://127.1:" + port + "/"},
		{"trailing dot on an address", allowing, "http://127.0.0.1.:" + port + "/"},
		{"redirect to a decimal address", allowing, srv.URL + "/redirect?to=http://2130706433:" + port + "/"},
		{"loopback", strict, srv.URL + "/"},
		{"localhost", strict, "http://localhost:" + port + "/"},
		{"localhost with a trailing dot", strict, "http://LOCALHOST.:" + port + "/"},
		{"IPv4-mapped IPv6 literal", strict, "http://[::ffff:127.0.0.1]:" + port + "/"},
		{"IPv6 loopback", strict, "http://[::1]:" + port + "/"},
		{"unspecified IPv4", strict, "http://0.0.0.0:" + port + "/"},
		{"unspecified IPv6", strict, "http://[::]:" + port + "/"},
		{"metadata address", strict, "http://169.254.169.254/latest/meta-data/"},
		{"a public name resolving to loopback", resolvingToLoopback, "http://public.example:" + port + "/"},
		{"same, with a trailing dot", resolvingToLoopback, "http://public.example.:" + port + "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			_, err := tt.f.Preview(context.Background(), tt.url)
			wantErr(t, err, preview.ErrForbidden)
			_, err = tt.f.Image(context.Background(), tt.url)
			wantErr(t, err, preview.ErrForbidden)
			if n := hits.Load() - before; n != 0 {
				t.Errorf("the server was reached %d times, want none", n)
			}
		})
	}
	// With 127.0.0.1 allowed, its address and names that resolve to it,
	// trailing dot or not, reach it.
	for _, u := range []string{srv.URL + "/", "http://localhost:" + port + "/", "http://localhost.:" + port + "/"} {
		if got, err := allowing.Preview(context.Background(), u); err != nil || got.OG["og:title"] != "reached" {
			t.Errorf("%s with 127.0.0.1 allowed: %v, %v", u, got.OG, err)
		}
	}
}
