package httpapi

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/media"
)

// TestSmallDownload: an object no larger than smallBody, several chunks
// long, is written from memory (writeSmall). Its whole GET is exactly its
// bytes with the headers of the file path; HEAD, a range and a conditional
// request still answer as http.ServeContent does; damage in its last chunk
// is a 500 before the headers, not a cut connection.
func TestSmallDownload(t *testing.T) {
	dir := t.TempDir()
	params := chunker.Params{Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}
	srv := newTestAPIStore(t, media.Options{Dir: dir, Chunker: params})
	data := make([]byte, smallBody-100)
	rng := rand.New(rand.NewChaCha8([32]byte{3}))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var chunks []cas.Hash
	chunker.Split(data, params, func(c []byte) error { chunks = append(chunks, cas.Sum(c)); return nil })
	if len(chunks) < 3 {
		t.Fatalf("%d bytes are %d chunks, want several", len(data), len(chunks))
	}
	up := call(t, srv, "POST", "/_matrix/media/v3/upload?filename=s.bin", "alice", string(data))
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(up.body), &u)
	path := "/_matrix/client/v1/media/download/hs.test/" + strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")

	get := call(t, srv, "GET", path, "alice", "")
	if get.status != 200 || get.body != string(data) {
		t.Fatalf("GET: %d, %d bytes, want 200 and the %d uploaded", get.status, len(get.body), len(data))
	}
	for k, want := range map[string]string{
		"Content-Length": strconv.Itoa(len(data)), "Accept-Ranges": "bytes",
		"Content-Type": "application/octet-stream", "Content-Disposition": "attachment; filename=s.bin",
		"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
		"Access-Control-Allow-Origin": "*",
	} {
		if got := get.header.Get(k); got != want {
			t.Errorf("GET: %s = %q, want %q", k, got, want)
		}
	}
	if get.header.Get("Last-Modified") == "" || len(get.header.Get("ETag")) != 66 {
		t.Errorf("GET: Last-Modified %q, ETag %q", get.header.Get("Last-Modified"), get.header.Get("ETag"))
	}
	t.Run("HEAD", func(t *testing.T) {
		a := call(t, srv, "HEAD", path, "alice", "")
		if a.status != 200 || a.body != "" || a.header.Get("Content-Length") != strconv.Itoa(len(data)) {
			t.Errorf("got %d, %d bytes, Content-Length %q", a.status, len(a.body), a.header.Get("Content-Length"))
		}
	})
	t.Run("range", func(t *testing.T) {
		a := callWith(t, srv, path, "Range", "bytes=5000-5099")
		if a.status != 206 || a.body != string(data[5000:5100]) {
			t.Errorf("got %d, %d bytes", a.status, len(a.body))
		}
	})
	t.Run("If-None-Match", func(t *testing.T) {
		if a := callWith(t, srv, path, "If-None-Match", get.header.Get("ETag")); a.status != 304 || a.body != "" {
			t.Errorf("got %d, %d bytes", a.status, len(a.body))
		}
	})
	t.Run("damage in the last chunk file is 500 before the headers", func(t *testing.T) {
		// The last chunk is inline in the index (16 KiB at most).
		p, err := media.ChunkPath(dir, chunks[len(chunks)-2])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[0] ^= 1
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		a := call(t, srv, "GET", path, "alice", "")
		if a.status != 500 || errcode(t, a) != "M_UNKNOWN" || a.header.Get("Accept-Ranges") != "" || a.header.Get("Last-Modified") != "" {
			t.Errorf("got %d %v %s", a.status, a.header, a.body)
		}
	})
}

// callWith is a GET of path by alice with one more request header.
func callWith(t *testing.T, srv *httptest.Server, path, key, value string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "hs.test"
	req.Header.Set("Authorization", "Bearer alice")
	req.Header.Set(key, value)
	return roundTrip(t, srv, req)
}
