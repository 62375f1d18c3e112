package matrix

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fedHarness is a remote server reachable through Resolver.Routes that
// checks X-Matrix on every request it is told to.
type fedHarness struct {
	t      *testing.T
	key    SigningKey
	client *FedClient

	mu    sync.Mutex
	hosts []string
	auths []error
}

const (
	testOrigin = "origin.example"
	testRemote = "remote.example"
)

func newFedHarness(t *testing.T, handler http.HandlerFunc) *fedHarness {
	t.Helper()
	key, err := GenerateSigningKey("test")
	if err != nil {
		t.Fatal(err)
	}
	h := &fedHarness{t: t, key: key}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hosts = append(h.hosts, r.Host)
		h.auths = append(h.auths, h.checkAuth(r))
		h.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	h.client = &FedClient{
		Resolver: &Resolver{Routes: map[string]string{testRemote: srv.URL}},
		Origin:   testOrigin,
		Key:      key,
	}
	return h
}

// checkAuth verifies the request's X-Matrix header like a receiving server.
func (h *fedHarness) checkAuth(r *http.Request) error {
	x, err := ParseXMatrix(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if x.Origin != testOrigin || x.Destination != testRemote || x.KeyID != h.key.ID {
		return fmt.Errorf("X-Matrix %+v", x)
	}
	return VerifyRequest(r.Method, r.URL.RequestURI(), nil, x, h.key.Public())
}

func (h *fedHarness) lastRequest() (host string, auth error) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.hosts) == 0 {
		h.t.Fatal("no request reached the remote")
	}
	return h.hosts[len(h.hosts)-1], h.auths[len(h.auths)-1]
}

func TestFedClientGetSigns(t *testing.T) {
	var gotURI string
	h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) {
		gotURI = r.URL.RequestURI()
		io.WriteString(w, "{}")
	})
	resp, err := h.client.Get(t.Context(), testRemote, "/_matrix/federation/v1/version?a=b%20c&x=%2F")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	host, auth := h.lastRequest()
	if auth != nil {
		t.Errorf("X-Matrix does not verify: %v", auth)
	}
	if host != testRemote {
		t.Errorf("Host = %q, want %q", host, testRemote)
	}
	if want := "/_matrix/federation/v1/version?a=b%20c&x=%2F"; gotURI != want {
		t.Errorf("request URI = %q, want %q", gotURI, want)
	}
}

func TestFedClientDownloadMedia(t *testing.T) {
	h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/federation/v1/media/download/abcDEF" {
			http.NotFound(w, r)
			return
		}
		b := NewBoundary()
		w.Header().Set("Content-Type", MultipartContentType(b))
		WriteMultipart(w, b, "image/png", `inline; filename="a.png"`, strings.NewReader("PNGDATA"))
	})
	part, closer, err := h.client.DownloadMedia(t.Context(), testRemote, "abcDEF", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	body, err := io.ReadAll(part.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "PNGDATA" || part.ContentType != "image/png" || part.ContentDisposition != `inline; filename="a.png"` {
		t.Errorf("got %q %q %q", body, part.ContentType, part.ContentDisposition)
	}
	host, auth := h.lastRequest()
	if auth != nil {
		t.Errorf("X-Matrix does not verify: %v", auth)
	}
	if host != testRemote {
		t.Errorf("Host = %q, want %q", host, testRemote)
	}
}

func TestFedClientDownloadThumbnail(t *testing.T) {
	var gotURI string
	h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) {
		gotURI = r.URL.RequestURI()
		b := NewBoundary()
		w.Header().Set("Content-Type", MultipartContentType(b))
		WriteMultipart(w, b, "image/jpeg", "inline", strings.NewReader("THUMB"))
	})
	q := url.Values{"width": {"32"}, "height": {"32"}, "method": {"crop"}}
	part, closer, err := h.client.DownloadMedia(t.Context(), testRemote, "abc", q)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if b, _ := io.ReadAll(part.Body); string(b) != "THUMB" {
		t.Errorf("body = %q", b)
	}
	if want := "/_matrix/federation/v1/media/thumbnail/abc?height=32&method=crop&width=32"; gotURI != want {
		t.Errorf("URI = %q, want %q", gotURI, want)
	}
	if _, auth := h.lastRequest(); auth != nil {
		t.Errorf("X-Matrix does not verify: %v", auth)
	}
}

func TestFedClientDownloadMediaLocation(t *testing.T) {
	var cdnAuth string
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdnAuth = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Disposition", "attachment; filename=v.mp4")
		io.WriteString(w, "MOVIE")
	}))
	defer cdn.Close()
	h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) {
		b := NewBoundary()
		w.Header().Set("Content-Type", MultipartContentType(b))
		if err := WriteMultipartRedirect(w, b, cdn.URL+"/media/xyz"); err != nil {
			t.Error(err)
		}
	})
	part, closer, err := h.client.DownloadMedia(t.Context(), testRemote, "xyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	body, _ := io.ReadAll(part.Body)
	if string(body) != "MOVIE" || part.ContentType != "video/mp4" || part.ContentDisposition != "attachment; filename=v.mp4" {
		t.Errorf("got %q %q %q", body, part.ContentType, part.ContentDisposition)
	}
	if part.Location != "" {
		t.Errorf("Location = %q, want it consumed", part.Location)
	}
	if cdnAuth != "" {
		t.Errorf("Location fetch sent Authorization %q", cdnAuth)
	}
}

func TestFedClientUnsupported(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		unsupported bool
	}{
		{"404 M_UNRECOGNIZED", 404, "application/json", `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`, true},
		{"405 M_UNRECOGNIZED", 405, "application/json", `{"errcode":"M_UNRECOGNIZED","error":"x"}`, true},
		{"404 HTML", 404, "text/html", "<html>Not Found</html>", true},
		{"400 text", 400, "text/plain", "bad request", true},
		{"404 M_NOT_FOUND", 404, "application/json", `{"errcode":"M_NOT_FOUND","error":"no such media"}`, false},
		{"400 M_UNKNOWN", 400, "application/json", `{"errcode":"M_UNKNOWN","error":"x"}`, false},
		{"500 text", 500, "text/plain", "boom", false},
		{"403 M_FORBIDDEN", 403, "application/json", `{"errcode":"M_FORBIDDEN","error":"x"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, _, err := h.client.DownloadMedia(t.Context(), testRemote, "abc", nil)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ErrFederationUnsupported); got != tt.unsupported {
				t.Errorf("errors.Is(%v, ErrFederationUnsupported) = %v, want %v", err, got, tt.unsupported)
			}
			var re *RemoteError
			if !errors.As(err, &re) || re.StatusCode != tt.status {
				t.Errorf("error %v: want a *RemoteError with status %d", err, tt.status)
			}
		})
	}
}

func TestFedClientDownloadLegacy(t *testing.T) {
	var gotURI, gotAuth string
	h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) {
		gotURI, gotAuth = r.URL.RequestURI(), r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	})
	resp, err := h.client.DownloadLegacy(t.Context(), testRemote, testRemote, "abc")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if want := "/_matrix/media/v3/download/remote.example/abc?allow_remote=false&allow_redirect=true"; gotURI != want {
		t.Errorf("URI = %q, want %q", gotURI, want)
	}
	if gotAuth != "" {
		t.Errorf("legacy request sent Authorization %q", gotAuth)
	}
	if host, _ := h.lastRequest(); host != testRemote {
		t.Errorf("Host = %q", host)
	}
}

func TestFedClientRejectsBadInput(t *testing.T) {
	h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) { t.Error("request sent") })
	if _, _, err := h.client.DownloadMedia(t.Context(), testRemote, "../etc", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad media ID: %v", err)
	}
	if _, err := h.client.Get(t.Context(), "bad name!", "/_matrix/x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad server name: %v", err)
	}
	if _, err := h.client.DownloadLegacy(t.Context(), testRemote, "a/b", "abc"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad legacy server name: %v", err)
	}
}
