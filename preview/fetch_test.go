package preview_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/netguard"
	"github.com/mxcas/mxcas/preview"
)

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// TestPreviewImageURL: a URL that is an image is its own preview image,
// fetched once, at the URL reached after redirects.
func TestPreviewImageURL(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/go", http.RedirectHandler("/pic.png", http.StatusFound))
	mux.HandleFunc("/pic.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Disposition", `inline; filename="cat.png"`)
		w.Write(pngBytes)
	})
	srv := serve(t, mux)
	got, err := newFetcher(t, loopback).Preview(context.Background(), srv.URL+"/go")
	if err != nil {
		t.Fatal(err)
	}
	img := got.Image
	if img == nil || img.URL != srv.URL+"/pic.png" || !bytes.Equal(img.Body, pngBytes) || img.ContentType != "image/png" {
		t.Fatalf("Image = %+v", img)
	}
	if got.OG["og:description"] != "cat.png" || got.OG["og:title"] != "" {
		t.Errorf("OG = %q, want og:description cat.png and no title (as Synapse)", got.OG)
	}
}

// TestPreviewLargeFile: a file that is neither HTML nor an image is named,
// not downloaded: the server manages to send a small part of it only.
func TestPreviewLargeFile(t *testing.T) {
	const size = 256 << 20
	tests := []struct{ name, path, disposition, want string }{
		{"name from the path", "/files/report.pdf", "", "report.pdf"},
		{"name from Content-Disposition", "/download?id=1", `attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`, "résumé.pdf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := make(chan int64, 1)
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/pdf")
				w.Header().Set("Content-Length", fmt.Sprint(size))
				if tt.disposition != "" {
					w.Header().Set("Content-Disposition", tt.disposition)
				}
				chunk := make([]byte, 64<<10)
				var n int64
				for n < size {
					m, err := w.Write(chunk)
					n += int64(m)
					if err != nil {
						break
					}
				}
				sent <- n
			}))
			got, err := newFetcher(t, loopback).Preview(context.Background(), srv.URL+tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got.OG["og:title"] != tt.want || got.Image != nil {
				t.Errorf("got %+v, want og:title %q and no image", got, tt.want)
			}
			if n := <-sent; n >= size/2 {
				t.Errorf("server sent %d of %d bytes", n, size)
			}
		})
	}
}

// TestPreviewTimeout: a page that does not answer within Timeout is
// unavailable.
func TestPreviewTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	f := newFetcher(t, loopback, func(o *preview.Options) { o.Timeout = 100 * time.Millisecond })
	_, err := f.Preview(context.Background(), srv.URL)
	wantErr(t, err, preview.ErrUnavailable)
}

// TestPreviewRedirects: a chain within MaxRedirects is followed (and the
// page resolved against where it ended), one over it is unavailable.
func TestPreviewRedirects(t *testing.T) {
	mux := http.NewServeMux()
	for i := 1; i <= 3; i++ {
		mux.Handle(fmt.Sprintf("/r%d", i), http.RedirectHandler(fmt.Sprintf("/r%d", i-1), http.StatusFound))
	}
	mux.Handle("/r0", page("text/html", `<title>End</title><meta property="og:image" content="end.png">`))
	srv := serve(t, mux)
	ok := newFetcher(t, loopback, func(o *preview.Options) { o.MaxRedirects = 3 })
	got, err := ok.Preview(context.Background(), srv.URL+"/r3")
	if err != nil {
		t.Fatal(err)
	}
	if got.OG["og:title"] != "End" || got.Image == nil || got.Image.URL != srv.URL+"/end.png" {
		t.Errorf("got %+v", got)
	}
	over := newFetcher(t, loopback, func(o *preview.Options) { o.MaxRedirects = 2 })
	_, err = over.Preview(context.Background(), srv.URL+"/r3")
	wantErr(t, err, preview.ErrUnavailable)
}

// TestPreviewRefused: internal addresses are refused after DNS, on every
// hop and for images; denied domains before any connection.
func TestPreviewRefused(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/page", page("text/html", "<title>reached</title>"))
	srv := serve(t, mux)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	mux.Handle("/to-internal", http.RedirectHandler("http://127.0.0.2:"+port+"/page", http.StatusFound))
	mux.Handle("/to-ftp", http.RedirectHandler("ftp://127.0.0.1/page", http.StatusFound))
	defaultGuard := netguard.New(netguard.Options{})
	public := "http://preview.example.com:" + port + "/page"
	tests := []struct {
		name  string
		f     *preview.Fetcher
		url   string
		image bool
		want  error // nil: reached
	}{
		{"loopback, default guard", newFetcher(t, defaultGuard), srv.URL + "/page", false, preview.ErrForbidden},
		{"loopback, allowed", newFetcher(t, loopback), srv.URL + "/page", false, nil},
		{"redirect to a denied address", newFetcher(t, loopback), srv.URL + "/to-internal", false, preview.ErrForbidden},
		{"redirect to ftp", newFetcher(t, loopback), srv.URL + "/to-ftp", false, preview.ErrUnavailable},
		{"public name resolving to loopback, default guard",
			newFetcher(t, defaultGuard, func(o *preview.Options) { o.DialContext = resolving(defaultGuard, "127.0.0.1") }),
			public, false, preview.ErrForbidden},
		{"public name resolving to loopback, allowed",
			newFetcher(t, loopback, func(o *preview.Options) { o.DialContext = resolving(loopback, "127.0.0.1") }),
			public, false, nil},
		{"denied domain", newFetcher(t, loopback, func(o *preview.Options) {
			o.DialContext = resolving(loopback, "127.0.0.1")
			o.DeniedDomains = []string{"*.EXAMPLE.com"}
		}), public, false, preview.ErrForbidden},
		{"denied domain, allowed again", newFetcher(t, loopback, func(o *preview.Options) {
			o.DialContext = resolving(loopback, "127.0.0.1")
			o.DeniedDomains = []string{"*.example.com"}
			o.AllowedDomains = []string{"preview.example.com"}
		}), public, false, nil},
		{"image on a denied address", newFetcher(t, loopback), "http://127.0.0.2:" + port + "/pic.png", true, preview.ErrForbidden},
		{"image through a redirect to a denied address", newFetcher(t, loopback), srv.URL + "/to-internal", true, preview.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.image {
				_, err = tt.f.Image(context.Background(), tt.url)
			} else {
				var got preview.Result
				got, err = tt.f.Preview(context.Background(), tt.url)
				if err == nil && got.OG["og:title"] != "reached" {
					t.Errorf("OG = %q", got.OG)
				}
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.want)
		})
	}
}

// TestPreviewBadURL: what is not an absolute http(s) URL without userinfo
// is refused before any connection.
func TestPreviewBadURL(t *testing.T) {
	f := newFetcher(t, loopback)
	for _, u := range []string{"ftp://example.org/file", "http://user:pw@example.org/", "http://user@example.org/",
		"file:///etc/passwd", "/relative", "http://", "javascript:alert(1)", "http://[::1", ""} {
		_, err := f.Preview(context.Background(), u)
		wantErr(t, err, preview.ErrBadURL)
		_, err = f.Image(context.Background(), u)
		wantErr(t, err, preview.ErrBadURL)
	}
}

// TestPreviewFailures: error statuses are unavailable; Image refuses what
// is not an image, or is over MaxBytes.
func TestPreviewFailures(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/gone", http.NotFoundHandler())
	mux.Handle("/page", page("text/html", "<title>x</title>"))
	mux.Handle("/big.png", page("image/png", string(pngBytes)+strings.Repeat("\x00", 100)))
	srv := serve(t, mux)
	f := newFetcher(t, loopback, func(o *preview.Options) { o.MaxBytes = 64 })
	_, err := f.Preview(context.Background(), srv.URL+"/gone")
	wantErr(t, err, preview.ErrUnavailable)
	for _, p := range []string{"/gone", "/page", "/big.png"} {
		_, err = f.Image(context.Background(), srv.URL+p)
		wantErr(t, err, preview.ErrUnavailable)
	}
	got, err := f.Preview(context.Background(), srv.URL+"/big.png")
	if err != nil || got.Image != nil || got.OG["og:title"] != "big.png" {
		t.Errorf("image over MaxBytes: got %+v, %v; want a file preview", got, err)
	}
}

// TestPreviewLargePage: an HTML page over MaxBytes is read as far as the
// cap and previewed from that part.
func TestPreviewLargePage(t *testing.T) {
	body := `<title>Start</title><meta property="og:description" content="early">` +
		strings.Repeat("<p>filler</p>", 10000) + `<meta property="og:site_name" content="too late">`
	srv := serve(t, page("text/html", body))
	f := newFetcher(t, loopback, func(o *preview.Options) { o.MaxBytes = 1024 })
	got, err := f.Preview(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, got, map[string]string{"og:title": "Start", "og:description": "early"}, "")
}

// TestPreviewUserAgent: every request carries Options.UserAgent.
func TestPreviewUserAgent(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>%s</title>", r.UserAgent())
	}))
	f := newFetcher(t, loopback, func(o *preview.Options) { o.UserAgent = "test-agent/1" })
	got, err := f.Preview(context.Background(), srv.URL)
	if err != nil || got.OG["og:title"] != "test-agent/1" {
		t.Errorf("got %+v, %v", got, err)
	}
}

// TestNewValidates: options that cannot work are refused.
func TestNewValidates(t *testing.T) {
	bad := []preview.Options{
		{},
		{DialContext: loopback.DialContext, DeniedDomains: []string{"[bad"}},
		{DialContext: loopback.DialContext, MaxBytes: -1},
		{DialContext: loopback.DialContext, Providers: []preview.Provider{{Name: "x", Endpoint: "ftp://x/", Schemes: []string{"https://x/*"}}}},
		{DialContext: loopback.DialContext, Providers: []preview.Provider{{Name: "x", Endpoint: "https://x/", Schemes: []string{"x"}}}},
	}
	for i, o := range bad {
		if _, err := preview.New(o); err == nil {
			t.Errorf("case %d: New accepted %+v", i, o)
		}
	}
}
