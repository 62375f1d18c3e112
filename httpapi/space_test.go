package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/media"
)

// spaceAPI serves a store whose free space and clock (seconds past an
// epoch) the test sets, for homeserver hs.test with the static token
// "alice".
func spaceAPI(t *testing.T, dir string, free, secs *atomic.Uint64, ballast int64) (*httptest.Server, *media.Store) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	epoch := time.Now()
	now := func() time.Time { return epoch.Add(time.Duration(secs.Load()) * time.Second) }
	st, err := media.Open(media.Options{Create: true, Dir: dir, Logger: quiet, MinFreeBytes: 1 << 20, BallastBytes: ballast, KeepBallast: true, Now: now,
		FreeSpace: func() (uint64, uint64, error) { return free.Load(), 1 << 30, nil }})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{Store: st, Logger: quiet,
		Homeservers: []Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"alice": "@alice:hs.test"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, st
}

// A write refused for lack of space is 507 M_UNKNOWN with a message that
// says so; the server stays healthy and downloads go on.
func TestNoSpaceAnswer(t *testing.T) {
	var free, secs atomic.Uint64
	free.Store(1 << 30)
	srv, st := spaceAPI(t, t.TempDir(), &free, &secs, -1)
	defer st.Close()
	up := call(t, srv, http.MethodPost, "/_matrix/media/v3/upload", "alice", "kept")
	if up.status != http.StatusOK {
		t.Fatalf("upload: %d %s", up.status, up.body)
	}
	var v struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(up.body), &v)

	free.Store(100 << 10)
	secs.Add(2) // past the last reading, which left room
	for _, path := range []string{"/_matrix/media/v3/upload", "/_matrix/media/v1/create"} {
		wantMatrixError(t, call(t, srv, http.MethodPost, path, "alice", "more"),
			http.StatusInsufficientStorage, "M_UNKNOWN", "no space left on the media store")
	}
	if a := call(t, srv, http.MethodGet, "/healthz", "", ""); a.status != http.StatusOK {
		t.Errorf("/healthz on a full disk: %d %q, want 200", a.status, a.body)
	}
	dl := call(t, srv, http.MethodGet, "/_matrix/client/v1/media/download/"+strings.TrimPrefix(v.ContentURI, "mxc://"), "alice", "")
	if dl.status != http.StatusOK || dl.body != "kept" {
		t.Errorf("download on a full disk: %d %q", dl.status, dl.body)
	}
}

// A store whose index failed (here: a disk really full, the free-space
// reading lying, no ballast) answers writes with 503 at once and /healthz
// with 503 and the reason, instead of a 500 and hanging requests.
func TestFailedStoreAnswers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o750)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=33554432"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if unix.Unmount(mnt, 0) != nil {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	var free, secs atomic.Uint64
	free.Store(1 << 30)
	srv, _ := spaceAPI(t, filepath.Join(mnt, "data"), &free, &secs, -1) // a failed store is not closed
	if a := call(t, srv, http.MethodPost, "/_matrix/media/v3/upload", "alice", "stored"); a.status != http.StatusOK {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	f, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{64 << 10, 4096} {
		for {
			if _, err := f.Write(make([]byte, n)); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	f.Close()
	// Stored content again, under long names: only index writes, until
	// Pebble needs a new write-ahead log it cannot write.
	name := strings.Repeat("n", 60<<10)
	var last answer
	for i := 0; i < 400; i++ {
		last = call(t, srv, http.MethodPost, fmt.Sprintf("/_matrix/media/v3/upload?filename=%s%d", name, i), "alice", "stored")
		if last.status != http.StatusOK {
			break
		}
	}
	wantMatrixError(t, last, http.StatusServiceUnavailable, "M_UNKNOWN", "failed")
	wantMatrixError(t, call(t, srv, http.MethodPost, "/_matrix/media/v3/upload?filename=x", "alice", "stored"),
		http.StatusServiceUnavailable, "M_UNKNOWN", "failed")
	h := call(t, srv, http.MethodGet, "/healthz", "", "")
	if h.status != http.StatusServiceUnavailable || !strings.Contains(h.body, "index: failed") {
		t.Errorf("/healthz of a failed store: %d %q, want 503 naming the failure", h.status, h.body)
	}
}
