package httpapi

import (
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// newTestAPI serves the API on loopback for one homeserver "hs.test" whose
// whoami answers: alice (user), gus (guest), gone (401 soft logout).
func newTestAPI(t *testing.T) *httptest.Server {
	t.Helper()
	return newTestAPIStore(t, media.Options{Dir: t.TempDir()})
}

// newTestAPIStore is newTestAPI over a store opened with o (created, quiet,
// legacy paths frozen, hs.test local).
func newTestAPIStore(t *testing.T, o media.Options) *httptest.Server {
	t.Helper()
	whoami := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer alice":
			io.WriteString(w, `{"user_id":"@alice:hs.test"}`)
		case "Bearer gus":
			io.WriteString(w, `{"user_id":"@gus:hs.test","is_guest":true}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Token expired","soft_logout":true}`)
		}
	}))
	t.Cleanup(whoami.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Create, o.Logger, o.FreezeUnauthenticated = true, quiet, true
	o.Local = func(s string) bool { return s == "hs.test" }
	st, err := media.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{
		Store:       st,
		Homeservers: []Homeserver{{Name: "hs.test", ClientAPI: whoami.URL}},
		Logger:      quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv
}

// answer is a response read in full; what says which request it answers,
// for failure messages.
type answer struct {
	status int
	header http.Header
	body   string
	what   string
}

func call(t *testing.T, srv *httptest.Server, method, path, tok, body string) answer {
	t.Helper()
	return callHost(t, srv, method, "hs.test", path, tok, body)
}

// callHost is call with another Host.
func callHost(t *testing.T, srv *httptest.Server, method, host, path, tok, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return roundTrip(t, srv, req)
}

// roundTrip sends req to srv and reads the whole answer.
func roundTrip(t *testing.T, srv *httptest.Server, req *http.Request) answer {
	t.Helper()
	what := fmt.Sprintf("%s %s (Host %s, %s)", req.Method, req.URL.RequestURI(), req.Host, req.Header.Get("Authorization"))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading body: %v", what, err)
	}
	return answer{resp.StatusCode, resp.Header, string(b), what}
}

func errcode(t *testing.T, a answer) string {
	t.Helper()
	var e struct {
		Errcode string `json:"errcode"`
	}
	json.Unmarshal([]byte(a.body), &e)
	return e.Errcode
}

// wantMatrixError wants the Matrix error status errcode, whose message
// contains msg.
func wantMatrixError(t *testing.T, a answer, status int, errcode, msg string) {
	t.Helper()
	var e struct{ Errcode, Error string }
	json.Unmarshal([]byte(a.body), &e)
	if a.status != status || e.Errcode != errcode || !strings.Contains(e.Error, msg) {
		t.Errorf("%s: got %d %s; want %d %s %q", a.what, a.status, a.body, status, errcode, msg)
	}
}

func TestAPIBehaviours(t *testing.T) {
	srv := newTestAPI(t)
	up := call(t, srv, "POST", "/_matrix/media/v3/upload?filename=a;b.txt", "alice", "data")
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(up.body), &u)
	id := strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
	if up.status != 200 || id == "" {
		t.Fatalf("upload: %d %s", up.status, up.body)
	}

	t.Run("file name with a raw semicolon is kept", func(t *testing.T) {
		a := call(t, srv, "GET", "/_matrix/client/v1/media/download/hs.test/"+id, "alice", "")
		if got := a.header.Get("Content-Disposition"); !strings.Contains(got, "a%3Bb.txt") {
			t.Errorf("Content-Disposition = %q, want the name a;b.txt", got)
		}
	})
	t.Run("trailing slash after the ID", func(t *testing.T) {
		if a := call(t, srv, "GET", "/_matrix/client/v1/media/download/hs.test/"+id+"/", "alice", ""); a.status != 200 || a.body != "data" {
			t.Errorf("got %d %q", a.status, a.body)
		}
	})
	t.Run("HEAD on config", func(t *testing.T) {
		if a := call(t, srv, "HEAD", "/_matrix/client/v1/media/config", "alice", ""); a.status != 200 {
			t.Errorf("got %d", a.status)
		}
	})
	t.Run("guests may download but not upload", func(t *testing.T) {
		if a := call(t, srv, "POST", "/_matrix/media/v3/upload", "gus", "x"); a.status != 403 || errcode(t, a) != "M_GUEST_ACCESS_FORBIDDEN" {
			t.Errorf("guest upload: %d %s", a.status, a.body)
		}
		if a := call(t, srv, "GET", "/_matrix/client/v1/media/download/hs.test/"+id, "gus", ""); a.status != 200 {
			t.Errorf("guest download: %d %s", a.status, a.body)
		}
	})
	t.Run("the homeserver's soft logout reaches the client", func(t *testing.T) {
		a := call(t, srv, "GET", "/_matrix/client/v1/media/download/hs.test/"+id, "expired", "")
		if a.status != 401 || errcode(t, a) != "M_UNKNOWN_TOKEN" || !strings.Contains(a.body, `"soft_logout":true`) {
			t.Errorf("got %d %s", a.status, a.body)
		}
	})
	t.Run("no token is 401 before the host is looked at", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/_matrix/client/v1/media/download/hs.test/"+id, nil)
		req.Host = "unknown.test"
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("got %d", resp.StatusCode)
		}
	})
	t.Run("created ID on the legacy path waits, then 504", func(t *testing.T) {
		cr := call(t, srv, "POST", "/_matrix/media/v1/create", "alice", "")
		json.Unmarshal([]byte(cr.body), &u)
		cid := strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
		a := call(t, srv, "GET", "/_matrix/media/v3/download/hs.test/"+cid+"?timeout_ms=1", "alice", "")
		if a.status != 504 || errcode(t, a) != "M_NOT_YET_UPLOADED" {
			t.Errorf("got %d %s", a.status, a.body)
		}
		if a := call(t, srv, "GET", "/_matrix/client/v1/media/download/hs.test/"+cid+"?timeout_ms=abc", "alice", ""); a.status != 400 {
			t.Errorf("timeout_ms=abc: got %d %s", a.status, a.body)
		}
	})
	t.Run("frozen media on the legacy path", func(t *testing.T) {
		if a := call(t, srv, "GET", "/_matrix/media/v3/download/hs.test/"+id, "", ""); a.status != 404 || errcode(t, a) != "M_NOT_FOUND" {
			t.Errorf("got %d %s", a.status, a.body)
		}
	})
	t.Run("preflight", func(t *testing.T) {
		a := call(t, srv, "OPTIONS", "/_matrix/client/v1/media/download/x/y", "", "")
		if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("got %d %v", a.status, a.header)
		}
	})
}

func TestThumbnailEndpoint(t *testing.T) {
	srv := newTestAPI(t)
	png, err := os.ReadFile("../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	up := call(t, srv, "POST", "/_matrix/media/v3/upload?filename=v.png", "alice", string(png))
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(up.body), &u)
	id := strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
	path := "/_matrix/client/v1/media/thumbnail/hs.test/" + id

	a := call(t, srv, "GET", path+"?width=32&height=32&method=crop", "alice", "")
	if a.status != 200 || a.header.Get("Content-Type") != "image/png" || !strings.HasPrefix(a.header.Get("Content-Disposition"), "inline") {
		t.Fatalf("thumbnail: %d %v", a.status, a.header)
	}
	cfg, _, err := image.DecodeConfig(strings.NewReader(a.body))
	if err != nil || cfg.Width != 32 || cfg.Height != 32 {
		t.Errorf("thumbnail is %dx%d (%v), want 32x32", cfg.Width, cfg.Height, err)
	}
	if b := call(t, srv, "GET", path+"?width=32&height=32&method=crop", "alice", ""); b.body != a.body {
		t.Error("two requests for the same thumbnail gave different bytes")
	}
	// Bigger than the source: the source comes back as it is.
	if b := call(t, srv, "GET", path+"?width=2000&height=2000", "alice", ""); b.status != 200 || b.body != string(png) {
		t.Errorf("oversized request: %d, %d bytes; want the original %d bytes", b.status, len(b.body), len(png))
	}
	for _, q := range []string{"?width=0&height=32", "?width=32", "?width=a&height=1", "?width=32&height=32&method=zoom", "?width=32&height=32&animated=maybe"} {
		if b := call(t, srv, "GET", path+q, "alice", ""); b.status != 400 || !strings.HasPrefix(errcode(t, b), "M_") {
			t.Errorf("%s: %d %s, want 400 with an errcode", q, b.status, b.body)
		}
	}
	if b := call(t, srv, "GET", path+"?width=32&height=32", "", ""); b.status != 401 {
		t.Errorf("no token: %d", b.status)
	}
	// Not an image.
	txt := call(t, srv, "POST", "/_matrix/media/v3/upload", "alice", "just text")
	json.Unmarshal([]byte(txt.body), &u)
	tid := strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
	if b := call(t, srv, "GET", "/_matrix/client/v1/media/thumbnail/hs.test/"+tid+"?width=32&height=32", "alice", ""); b.status != 400 || errcode(t, b) == "" {
		t.Errorf("thumbnail of text: %d %s, want 400 with an errcode", b.status, b.body)
	}
}

func TestThumbnailBombOverHTTP(t *testing.T) {
	srv := newTestAPI(t)
	up := call(t, srv, "POST", "/_matrix/media/v3/upload", "alice", string(testkit.PNGBomb(30000, 30000)))
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(up.body), &u)
	id := strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
	a := call(t, srv, "GET", "/_matrix/client/v1/media/thumbnail/hs.test/"+id+"?width=32&height=32", "alice", "")
	if a.status != 413 || errcode(t, a) != "M_TOO_LARGE" {
		t.Errorf("bomb: %d %s, want 413 M_TOO_LARGE", a.status, a.body)
	}
	if h := call(t, srv, "GET", "/healthz", "", ""); h.status != 200 {
		t.Errorf("healthz after the bomb: %d", h.status)
	}
}

// TestThumbnailErrorAnswers: the thumbnail request and thumbnail errors
// media reports get their Matrix status, errcode and message.
func TestThumbnailErrorAnswers(t *testing.T) {
	srv := newTestAPI(t)
	png, err := os.ReadFile("../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(call(t, srv, "POST", "/_matrix/media/v3/upload", "alice", string(png)).body), &u)
	img := "/_matrix/client/v1/media/thumbnail/hs.test/" + strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
	json.Unmarshal([]byte(call(t, srv, "POST", "/_matrix/media/v3/upload", "alice", "just text").body), &u)
	txt := "/_matrix/client/v1/media/thumbnail/hs.test/" + strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")
	for _, tt := range []struct {
		path    string
		status  int
		errcode string
		msg     string
	}{
		{img + "?height=32", 400, "M_MISSING_PARAM", "Missing width"},
		{img + "?width=32", 400, "M_MISSING_PARAM", "Missing height"},
		{img + "?width=0&height=32", 400, "M_INVALID_PARAM", "width must be a positive integer"},
		{img + "?width=32&height=32&method=zoom", 400, "M_INVALID_PARAM", "method must be crop or scale"},
		{img + "?width=32&height=32&animated=maybe", 400, "M_INVALID_PARAM", "animated must be true or false"},
		{txt + "?width=32&height=32", 400, "M_UNKNOWN", "Cannot generate a thumbnail of this media"},
		{"/_matrix/client/v1/media/thumbnail/hs.test/none?width=32&height=32", 404, "M_NOT_FOUND", "Media not found"},
		// No fetcher: remote media is not available here.
		{"/_matrix/client/v1/media/thumbnail/far.test/abc?width=32&height=32", 404, "M_NOT_FOUND", "Remote media is not available from this server"},
		{"/_matrix/client/v1/media/download/far.test/abc", 404, "M_NOT_FOUND", "Remote media is not available from this server"},
	} {
		wantMatrixError(t, call(t, srv, "GET", tt.path, "alice", ""), tt.status, tt.errcode, tt.msg)
	}
}
