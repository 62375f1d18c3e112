package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

type pipeFetcher struct {
	body  io.ReadCloser
	calls atomic.Int64
}

func (p *pipeFetcher) Fetch(context.Context, matrix.MXC) (media.RemoteMedia, error) {
	p.calls.Add(1)
	return media.RemoteMedia{Body: p.body, ContentType: "video/mp4", UploadName: "v.mp4", Size: -1}, nil
}

// TestRemoteStreamsToFirstClient: the first client of uncached remote media
// gets bytes while the origin is still sending them, and the stored copy
// then serves everyone else.
func TestRemoteStreamsToFirstClient(t *testing.T) {
	pr, pw := io.Pipe()
	f := &pipeFetcher{body: pr}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet, Remote: media.RemoteOptions{Fetcher: f}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	api, _ := New(Options{Store: st, Homeservers: []Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"t": "@u:hs.test"}}}, Logger: quiet})
	srv := httptest.NewServer(api)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/_matrix/client/v1/media/download/far.test/abc", nil)
	req.Host = "hs.test"
	req.Header.Set("Authorization", "Bearer t")
	first := make(chan []byte, 1)
	rest := make(chan []byte, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			close(first)
			return
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "video/mp4" {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		b := make([]byte, 5)
		io.ReadFull(resp.Body, b)
		first <- b
		more, _ := io.ReadAll(resp.Body)
		rest <- more
	}()
	// More than the server reads ahead of an unknown length (4 MiB), so
	// streaming must start while the origin is still sending.
	head := append([]byte("hello"), bytes.Repeat([]byte("x"), 5<<20)...)
	go pw.Write(head)
	select {
	case b := <-first:
		if string(b) != "hello" {
			t.Fatalf("first bytes %q", b)
		}
	case <-ctx.Done():
		t.Fatal("the client got nothing while the origin was still sending: not streamed")
	}
	pw.Write([]byte(", world"))
	pw.Close()
	want := string(head[5:]) + ", world"
	if got := <-rest; string(got) != want {
		t.Errorf("rest: %d bytes, want %d", len(got), len(want))
	}
	a := call(t, srv, "GET", "/_matrix/client/v1/media/download/far.test/abc", "t", "")
	if a.status != 200 || a.body != string(head)+", world" || f.calls.Load() != 1 {
		t.Errorf("second client: %d, %d bytes, fetches %d", a.status, len(a.body), f.calls.Load())
	}
}

type bigFetcher struct{}

func (bigFetcher) Fetch(context.Context, matrix.MXC) (media.RemoteMedia, error) {
	return media.RemoteMedia{Body: io.NopCloser(bytes.NewReader(make([]byte, 5000))), ContentType: "image/png", Size: -1}, nil
}

// TestRemoteTooLargeIsAnError: remote media over the cap, of unknown length,
// is refused with 502 M_TOO_LARGE before anything is streamed.
func TestRemoteTooLargeIsAnError(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet, Remote: media.RemoteOptions{Fetcher: bigFetcher{}, MaxBytes: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	api, _ := New(Options{Store: st, Homeservers: []Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"t": "@u:hs.test"}}}, Logger: quiet})
	srv := httptest.NewServer(api)
	defer srv.Close()
	a := call(t, srv, "GET", "/_matrix/client/v1/media/download/far.test/big", "t", "")
	if a.status != 502 || errcode(t, a) != "M_TOO_LARGE" {
		t.Errorf("got %d %q, want 502 M_TOO_LARGE", a.status, a.body)
	}
}

// countingFetcher answers every fetch with the same small text file.
type countingFetcher struct{ calls atomic.Int64 }

func (f *countingFetcher) Fetch(context.Context, matrix.MXC) (media.RemoteMedia, error) {
	f.calls.Add(1)
	return media.RemoteMedia{Body: io.NopCloser(strings.NewReader("remote bytes")), ContentType: "text/plain", Size: 12}, nil
}

// TestLegacyPathsUnderFreezeNeverFetchRemote: with the freeze on, the
// unauthenticated legacy download and thumbnail paths neither fetch remote
// media nor serve remote media cached after the freeze; the authenticated
// path fetches it. Without the freeze the legacy path fetches as before.
func TestLegacyPathsUnderFreezeNeverFetchRemote(t *testing.T) {
	newAPI := func(t *testing.T, freeze bool) (*httptest.Server, *countingFetcher) {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		f := &countingFetcher{}
		st, err := media.Open(media.Options{Dir: t.TempDir(), Create: true, Logger: quiet, Remote: media.RemoteOptions{Fetcher: f}, FreezeUnauthenticated: freeze})
		if err != nil {
			t.Fatal(err)
		}
		api, err := New(Options{Store: st, Logger: quiet,
			Homeservers: []Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"t": "@u:hs.test"}}}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api)
		t.Cleanup(func() { srv.Close(); st.Close() })
		return srv, f
	}
	legacy := []string{
		"/_matrix/media/v3/download/far.test/abc",
		"/_matrix/media/r0/download/far.test/abc/name.txt",
		"/_matrix/media/v3/thumbnail/far.test/abc?width=32&height=32",
		"/_matrix/media/v3/download/far.test/abc?allow_remote=true",
	}

	t.Run("frozen", func(t *testing.T) {
		srv, f := newAPI(t, true)
		for _, p := range legacy {
			if a := call(t, srv, "GET", p, "", ""); a.status != 404 || errcode(t, a) != "M_NOT_FOUND" {
				t.Errorf("GET %s before caching: %d %s, want 404 M_NOT_FOUND", p, a.status, a.body)
			}
		}
		if n := f.calls.Load(); n != 0 {
			t.Fatalf("legacy requests under the freeze made %d remote fetches, want 0", n)
		}
		if a := call(t, srv, "GET", "/_matrix/client/v1/media/download/far.test/abc", "t", ""); a.status != 200 || a.body != "remote bytes" {
			t.Fatalf("authenticated download: %d %q", a.status, a.body)
		}
		// Now cached, but stored after the freeze: still not on legacy paths.
		for _, p := range legacy {
			if a := call(t, srv, "GET", p, "", ""); a.status != 404 || errcode(t, a) != "M_NOT_FOUND" {
				t.Errorf("GET %s after caching: %d %s, want 404 M_NOT_FOUND", p, a.status, a.body)
			}
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("%d remote fetches, want 1", n)
		}
	})
	t.Run("not frozen", func(t *testing.T) {
		srv, f := newAPI(t, false)
		if a := call(t, srv, "GET", legacy[0], "", ""); a.status != 200 || a.body != "remote bytes" {
			t.Fatalf("legacy download without the freeze: %d %q", a.status, a.body)
		}
		if a := call(t, srv, "GET", "/_matrix/media/v3/download/far.test/other?allow_remote=false", "", ""); a.status != 404 {
			t.Errorf("allow_remote=false: %d %s, want 404", a.status, a.body)
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("%d remote fetches, want 1", n)
		}
	})
}

// TestDotDotServerNameIsBadRequest: a server name of dot segments, however
// encoded, is refused as a bad parameter before any lookup or fetch.
func TestDotDotServerNameIsBadRequest(t *testing.T) {
	srv, f := func() (*httptest.Server, *countingFetcher) {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		f := &countingFetcher{}
		st, err := media.Open(media.Options{Dir: t.TempDir(), Create: true, Logger: quiet, Remote: media.RemoteOptions{Fetcher: f}})
		if err != nil {
			t.Fatal(err)
		}
		api, _ := New(Options{Store: st, Logger: quiet, Homeservers: []Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"t": "@u:hs.test"}}}})
		srv := httptest.NewServer(api)
		t.Cleanup(func() { srv.Close(); st.Close() })
		return srv, f
	}()
	for _, p := range []string{
		"/_matrix/client/v1/media/download/%2e%2e/x",
		"/_matrix/client/v1/media/download/%2E%2E/x",
		"/_matrix/client/v1/media/download/a..b/x",
		"/_matrix/client/v1/media/download/./x",
		"/_matrix/client/v1/media/thumbnail/%2e%2e/x?width=32&height=32",
		"/_matrix/media/v3/download/%2e%2e/x",
		"/_matrix/client/v1/media/download/%2e%2e%3A8448/x",
	} {
		if a := call(t, srv, "GET", p, "t", ""); a.status != 400 || errcode(t, a) != "M_INVALID_PARAM" {
			t.Errorf("GET %s: %d %s, want 400 M_INVALID_PARAM", p, a.status, a.body)
		}
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("%d remote fetches, want 0", n)
	}
}
