package media_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/preview"
	"github.com/mxcas/mxcas/testkit"
)

// testPreviewer is a preview.Previewer over in-memory pages and images.
// gate, when not nil, holds every Preview call until it is closed.
type testPreviewer struct {
	mu     sync.Mutex
	pages  map[string]preview.Result
	images map[string]preview.Image
	err    error // returned by Preview when set
	gate   chan struct{}
	pageN  atomic.Int64
	imageN atomic.Int64
}

func (p *testPreviewer) Preview(ctx context.Context, url string) (preview.Result, error) {
	p.pageN.Add(1)
	if p.gate != nil {
		<-p.gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return preview.Result{}, p.err
	}
	r, ok := p.pages[url]
	if !ok {
		return preview.Result{}, preview.ErrUnavailable
	}
	return r, nil
}

func (p *testPreviewer) Image(ctx context.Context, url string) (preview.Image, error) {
	p.imageN.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	img, ok := p.images[url]
	if !ok {
		return preview.Image{}, preview.ErrForbidden
	}
	return img, nil
}

func (p *testPreviewer) setPage(url string, r preview.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pages[url] = r
}

func (p *testPreviewer) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

var _ preview.Previewer = (*testPreviewer)(nil)

const pageURL = "https://example.org/page"

func newTestPreviewer() *testPreviewer {
	return &testPreviewer{pages: map[string]preview.Result{}, images: map[string]preview.Image{}}
}

// previewStore opens a store whose previews come from p, on clock.
func previewStore(t *testing.T, p preview.Previewer, clock *testkit.Clock) *media.Store {
	t.Helper()
	return openStore(t, media.Options{Dir: t.TempDir(), Create: true, Chunker: smallParams, Now: clock.Now, Previews: p})
}

// pageAt1005 opens a store on a clock at 10:05 on 2 Jan 2026 whose
// previewer has pageURL titled title.
func pageAt1005(t *testing.T, title string) (*testPreviewer, *testkit.Clock, *media.Store) {
	t.Helper()
	p := newTestPreviewer()
	p.setPage(pageURL, titled(title))
	clock := testkit.NewClock(time.Date(2026, 1, 2, 10, 5, 0, 0, time.UTC))
	return p, clock, previewStore(t, p, clock)
}

func titled(title string) preview.Result {
	return preview.Result{OG: map[string]string{"og:title": title}}
}

// pngOf is a w x h PNG.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustPreview(t *testing.T, s *media.Store, url string, ts int64) media.Preview {
	t.Helper()
	p, err := s.PreviewURL(context.Background(), server, url, ts)
	if err != nil {
		t.Fatalf("PreviewURL(%s, %d): %v", url, ts, err)
	}
	return p
}

// An hour's preview is served for that hour without a fetch; the next hour
// fetches again; a ts in a past hour gets that hour's preview; a ts in an
// hour without one gets the current hour's, without a fetch.
func TestPreviewCachedByHour(t *testing.T) {
	p, clock, s := pageAt1005(t, "first")
	first := clock.Now().UnixMilli()

	if got := mustPreview(t, s, pageURL, 0)["og:title"]; got != "first" {
		t.Fatalf("og:title = %v, want first", got)
	}
	p.setPage(pageURL, titled("second"))
	clock.Advance(50 * time.Minute) // 10:55, same hour
	if got := mustPreview(t, s, pageURL, 0)["og:title"]; got != "first" {
		t.Errorf("same hour: og:title = %v, want the cached first", got)
	}
	if n := p.pageN.Load(); n != 1 {
		t.Fatalf("same hour: %d fetches, want 1", n)
	}
	clock.Advance(10 * time.Minute) // 11:05
	if got := mustPreview(t, s, pageURL, 0)["og:title"]; got != "second" {
		t.Errorf("next hour: og:title = %v, want second (fetched again)", got)
	}
	if got := mustPreview(t, s, pageURL, first)["og:title"]; got != "first" {
		t.Errorf("ts in the first hour: og:title = %v, want first", got)
	}
	if got := mustPreview(t, s, pageURL, first-5*3600_000)["og:title"]; got != "second" {
		t.Errorf("ts in an hour without a preview: og:title = %v, want the current second", got)
	}
	if got := mustPreview(t, s, pageURL, clock.Now().UnixMilli()+10*3600_000)["og:title"]; got != "second" {
		t.Errorf("ts to come: og:title = %v, want the current second", got)
	}
	if n := p.pageN.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
	// Another homeserver has its own previews.
	if _, err := s.PreviewURL(context.Background(), "other.example", pageURL, 0); err != nil {
		t.Fatal(err)
	}
	if n := p.pageN.Load(); n != 3 {
		t.Errorf("after another server's preview: %d fetches, want 3", n)
	}
}

// Concurrent calls for one URL and hour make one fetch and get the same
// preview.
func TestPreviewSingleFlight(t *testing.T) {
	const n = 8
	p := newTestPreviewer()
	p.setPage(pageURL, titled("once"))
	p.gate = make(chan struct{})
	s := previewStore(t, p, newClock())
	joined := make(chan struct{}, n)
	s.OnPreviewJoined(func() { joined <- struct{}{} })

	results := make([]media.Preview, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = s.PreviewURL(context.Background(), server, pageURL, 0) })
	}
	for range n {
		<-joined // every call is in the flight before the fetch may end
	}
	close(p.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i]["og:title"] != "once" {
			t.Errorf("call %d: %v, %v", i, results[i], errs[i])
		}
	}
	if got := p.pageN.Load(); got != 1 {
		t.Errorf("%d fetches for %d concurrent calls, want 1", got, n)
	}
}

// A call that leads a flight and goes away before the fetch ends leaves the
// waiting call to fetch again, with its own context.
func TestPreviewLeaderGone(t *testing.T) {
	p := newTestPreviewer()
	p.setPage(pageURL, titled("kept"))
	p.gate = make(chan struct{})
	s := previewStore(t, p, newClock())
	joined := make(chan struct{}, 4)
	s.OnPreviewJoined(func() { joined <- struct{}{} })

	ctx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() { _, err := s.PreviewURL(ctx, server, pageURL, 0); leaderErr <- err }()
	<-joined
	follower := make(chan error, 1)
	var got media.Preview
	go func() {
		var err error
		got, err = s.PreviewURL(context.Background(), server, pageURL, 0)
		follower <- err
	}()
	<-joined
	cancel()
	p.setErr(context.Canceled) // what a cancelled fetch returns
	p.gate <- struct{}{}       // the leader's fetch ends, failed
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v, want context.Canceled", err)
	}
	<-joined // the follower leads a new flight
	p.setErr(nil)
	close(p.gate)
	if err := <-follower; err != nil || got["og:title"] != "kept" {
		t.Fatalf("follower: %v, %v", got, err)
	}
}

// Each Previewer error comes back as its media sentinel; forbidden and
// unavailable URLs are answered from memory for a minute, a bad URL is
// not remembered (it costs no fetch).
func TestPreviewFailures(t *testing.T) {
	for _, tc := range []struct {
		err        error
		want       error
		remembered bool
	}{
		{preview.ErrUnavailable, media.ErrPreviewUnavailable, true},
		{preview.ErrForbidden, media.ErrPreviewForbidden, true},
		{preview.ErrBadURL, media.ErrPreviewBadURL, false},
		{errors.New("surprise"), media.ErrPreviewUnavailable, true},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			p := newTestPreviewer()
			p.setErr(tc.err)
			clock := newClock()
			s := previewStore(t, p, clock)
			for i := range 2 {
				if _, err := s.PreviewURL(context.Background(), server, pageURL, 0); !errors.Is(err, tc.want) {
					t.Fatalf("call %d: %v, want %v", i, err, tc.want)
				}
			}
			want := int64(2)
			if tc.remembered {
				want = 1
			}
			if n := p.pageN.Load(); n != want {
				t.Fatalf("%d fetches, want %d", n, want)
			}
			p.setErr(nil)
			p.setPage(pageURL, titled("back"))
			clock.Advance(time.Minute)
			if got := mustPreview(t, s, pageURL, 0)["og:title"]; got != "back" {
				t.Errorf("a minute later: og:title = %v, want back", got)
			}
		})
	}
}

// The image is stored as local media of the server and named in the
// preview with its type, size and dimensions; og:image* keys of the page
// itself are dropped.
func TestPreviewImageStored(t *testing.T) {
	img := pngOf(t, 7, 5)
	for _, tc := range []struct {
		name   string
		ref    preview.ImageRef
		images int64 // Image calls
	}{
		{"fetched", preview.ImageRef{URL: "https://cdn.example.org/i"}, 1},
		{"the url is the image", preview.ImageRef{URL: pageURL, Body: img, ContentType: "image/png"}, 0},
		{"declared as octet-stream", preview.ImageRef{URL: pageURL, Body: img, ContentType: "application/octet-stream"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPreviewer()
			p.images["https://cdn.example.org/i"] = preview.Image{Body: img, ContentType: "image/png; charset=x"}
			p.setPage(pageURL, preview.Result{
				OG:    map[string]string{"og:title": "T", "og:image": "https://evil.example/", "matrix:image:size": "1"},
				Image: &tc.ref,
			})
			s := previewStore(t, p, newClock())
			got := mustPreview(t, s, pageURL, 0)
			m, err := matrix.ParseMXC(got["og:image"].(string))
			if err != nil || m.Server() != server {
				t.Fatalf("og:image = %v (%v), want an mxc URI of %s", got["og:image"], err, server)
			}
			want := media.Preview{"og:title": "T", "og:image": m.String(), "og:image:type": "image/png",
				"og:image:width": 7, "og:image:height": 5, "matrix:image:size": int64(len(img))}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("preview:\n got %v\nwant %v", got, want)
			}
			checkContent(t, s, m.MediaID(), img)
			rec, err := s.Stat(m)
			if err != nil || rec.Uploader != "" || rec.ContentType != "image/png" {
				t.Errorf("image record %+v, %v: want no uploader, image/png", rec, err)
			}
			if n := p.imageN.Load(); n != tc.images {
				t.Errorf("%d image fetches, want %d", n, tc.images)
			}
			// The stored preview says the same.
			if again := mustPreview(t, s, pageURL, 0); !reflect.DeepEqual(again, got) {
				t.Errorf("cached preview %v, want %v", again, got)
			}
		})
	}
}

// An image that cannot be had (refused, unreachable, not an image) leaves
// the preview without one; the page's preview still answers.
func TestPreviewImageMissing(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  preview.ImageRef
	}{
		{"refused", preview.ImageRef{URL: "https://cdn.example.org/denied"}},
		{"not an image", preview.ImageRef{URL: pageURL, Body: []byte("<html>"), ContentType: "text/html"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPreviewer()
			p.setPage(pageURL, preview.Result{OG: map[string]string{"og:title": "T"}, Image: &tc.ref})
			s := previewStore(t, p, newClock())
			got := mustPreview(t, s, pageURL, 0)
			if want := (media.Preview{"og:title": "T"}); !reflect.DeepEqual(got, want) {
				t.Errorf("preview %v, want %v", got, want)
			}
			if _, n, _ := s.UsageCounters(server); n != 0 {
				t.Errorf("%d media stored, want none", n)
			}
		})
	}
}

// A URL that cannot be previewed is refused before any fetch or lookup.
func TestPreviewBadURL(t *testing.T) {
	p := newTestPreviewer()
	s := previewStore(t, p, newClock())
	for _, u := range []string{
		"", "example.org/page", "ftp://example.org/", "file:///etc/passwd", "https://user:pw@example.org/",
		"https:///nohost", "https://example.org/\x00", "https://example.org/\n", "https://example.org/\xff",
		"https://example.org/" + strings.Repeat("a", media.MaxPreviewURLBytes),
	} {
		if _, err := s.PreviewURL(context.Background(), server, u, 0); !errors.Is(err, media.ErrPreviewBadURL) {
			t.Errorf("%q: %v, want ErrPreviewBadURL", u, err)
		}
	}
	if n := p.pageN.Load(); n != 0 {
		t.Errorf("%d fetches, want none", n)
	}
	long := "https://example.org/" + strings.Repeat("a", media.MaxPreviewURLBytes-len("https://example.org/"))
	p.setPage(long, titled("long"))
	if got := mustPreview(t, s, long, 0)["og:title"]; got != "long" {
		t.Errorf("a URL of exactly %d bytes: og:title = %v", media.MaxPreviewURLBytes, got)
	}
}

func TestPreviewsDisabled(t *testing.T) {
	s := openStore(t, media.Options{Dir: t.TempDir(), Create: true})
	if s.PreviewsEnabled() {
		t.Error("PreviewsEnabled with no Previewer")
	}
	if _, err := s.PreviewURL(context.Background(), server, pageURL, 0); !errors.Is(err, media.ErrPreviewsDisabled) {
		t.Errorf("PreviewURL: %v, want ErrPreviewsDisabled", err)
	}
}
