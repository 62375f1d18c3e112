package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// fetcher serves fixed remote media and counts fetches.
type fetcher struct {
	files   map[string][]byte
	calls   atomic.Int64
	fail    error
	release chan struct{} // when set, fetches wait for it
}

func (f *fetcher) Fetch(_ context.Context, m matrix.MXC) (media.RemoteMedia, error) {
	f.calls.Add(1)
	if f.release != nil {
		<-f.release
	}
	if f.fail != nil {
		return media.RemoteMedia{}, f.fail
	}
	b, ok := f.files[m.String()]
	if !ok {
		return media.RemoteMedia{}, fmt.Errorf("%w: remote 404", media.ErrNotFound)
	}
	return media.RemoteMedia{Body: io.NopCloser(bytes.NewReader(b)), ContentType: "image/png", UploadName: "r.png", Size: -1}, nil
}

func openRemote(t *testing.T, f *fetcher, max int64) *media.Store {
	t.Helper()
	s, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Remote: media.RemoteOptions{
		Fetcher: f, MaxBytes: max,
	}, Local: func(s string) bool { return s == "ours.test" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFetchRemote(t *testing.T) {
	content := bytes.Repeat([]byte("remote media "), 20000)
	m := mustMXC("far.test", "abc")
	f := &fetcher{files: map[string][]byte{m.String(): content}, release: make(chan struct{})}
	s := openRemote(t, f, 1<<20)

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.FetchRemote(context.Background(), m); err != nil {
				t.Error(err)
			}
		}()
	}
	close(f.release)
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Errorf("8 concurrent requests made %d fetches, want 1", n)
	}
	r, rec, err := s.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, content) || !rec.Remote || rec.ContentType != "image/png" || rec.UploadName != "r.png" {
		t.Errorf("cached copy: %d bytes, %+v", len(got), rec)
	}
	// Served from the cache afterwards, even with the origin gone.
	f.fail = errors.New("origin down")
	if _, err := s.FetchRemote(context.Background(), m); err != nil || f.calls.Load() != 1 {
		t.Errorf("second request: %v, %d fetches", err, f.calls.Load())
	}
}

func TestFetchRemoteErrors(t *testing.T) {
	big := mustMXC("far.test", "big")
	f := &fetcher{files: map[string][]byte{big.String(): make([]byte, 5000)}}
	s := openRemote(t, f, 1000)
	if _, err := s.FetchRemote(context.Background(), big); !errors.Is(err, media.ErrRemoteTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := s.Stat(big); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("a refused remote file was stored: %v", err)
	}
	if _, err := s.FetchRemote(context.Background(), mustMXC("far.test", "none")); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("remote 404: %v", err)
	}
	before := f.calls.Load()
	if _, err := s.FetchRemote(context.Background(), mustMXC("ours.test", "x")); !errors.Is(err, media.ErrNotFound) || f.calls.Load() != before {
		t.Errorf("our own server name was fetched: %v", err)
	}
	// A failing server is backed off: the second request does not ask it.
	f.fail = errors.New("connection refused")
	down := mustMXC("down.test", "x")
	if _, err := s.FetchRemote(context.Background(), down); !errors.Is(err, media.ErrRemoteUnavailable) {
		t.Fatalf("fetch from a failing server: %v, want ErrRemoteUnavailable", err)
	}
	n := f.calls.Load()
	if _, err := s.FetchRemote(context.Background(), mustMXC("down.test", "y")); !errors.Is(err, media.ErrRemoteUnavailable) || f.calls.Load() != n {
		t.Errorf("backed-off server: %v, fetches %d -> %d", err, n, f.calls.Load())
	}
}

// TestBackoffOnlyForFailingServers: an answer about one media (403, 404)
// does not stop the next media of that server from being fetched.
func TestBackoffOnlyForFailingServers(t *testing.T) {
	f := &fetcher{files: map[string][]byte{"mxc://far.test/ok": []byte("fine")}}
	s := openRemote(t, f, 1<<20)
	f.fail = &matrix.RemoteError{StatusCode: 403, ErrCode: "M_FORBIDDEN"}
	if _, err := s.FetchRemote(context.Background(), mustMXC("far.test", "secret")); err == nil {
		t.Fatal("403 from the origin fetched something")
	}
	f.fail = nil
	if _, err := s.FetchRemote(context.Background(), mustMXC("far.test", "ok")); err != nil {
		t.Errorf("after a 403 for other media, the server was backed off: %v", err)
	}
}
