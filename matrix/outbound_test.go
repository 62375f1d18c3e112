package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/testkit"
)

// errRefused stands for the guarded dialer's refusal.
var errRefused = errors.New("test guard: refused")

// newInternalServer is an "internal" listener nothing may reach.
func newInternalServer(t *testing.T) (*httptest.Server, *testkit.CountingListener) {
	t.Helper()
	return testkit.NewCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "SECRET")
	}))
}

// guardDial refuses every address, as the guard refuses loopback.
func guardDial(calls *atomic.Int64) DialFunc {
	return func(_ context.Context, _, addr string) (net.Conn, error) {
		calls.Add(1)
		return nil, fmt.Errorf("%w: %s", errRefused, addr)
	}
}

// TestFedClientOutboundThroughGuard: a route (trusted) answering with a
// Location part or a redirect to an internal listener gets the guard's
// refusal, and the listener is never reached.
func TestFedClientOutboundThroughGuard(t *testing.T) {
	internal, cl := newInternalServer(t)
	var sameOrigin string
	h := newFedHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_matrix/federation/v1/media/download/location":
			b := NewBoundary()
			w.Header().Set("Content-Type", MultipartContentType(b))
			WriteMultipartRedirect(w, b, internal.URL+"/secret")
		case "/_matrix/federation/v1/media/download/redirect":
			http.Redirect(w, r, internal.URL+"/secret", http.StatusFound)
		case "/_matrix/federation/v1/media/download/same":
			http.Redirect(w, r, sameOrigin+"/_matrix/federation/v1/media/download/abc", http.StatusFound)
		case "/_matrix/federation/v1/media/download/same-location":
			b := NewBoundary()
			w.Header().Set("Content-Type", MultipartContentType(b))
			WriteMultipartRedirect(w, b, sameOrigin+"/plain")
		case "/plain":
			io.WriteString(w, "OK")
		default:
			b := NewBoundary()
			w.Header().Set("Content-Type", MultipartContentType(b))
			WriteMultipart(w, b, "text/plain", "inline", strings.NewReader("OK"))
		}
	})
	sameOrigin = h.client.Resolver.Routes[testRemote]
	var calls atomic.Int64
	h.client.DialContext = guardDial(&calls)
	for _, id := range []string{"location", "redirect"} {
		_, closer, err := h.client.DownloadMedia(t.Context(), testRemote, id, nil)
		if err == nil {
			closer.Close()
		}
		if !errors.Is(err, errRefused) {
			t.Errorf("%s to an internal address: %v, want the guard's refusal", id, err)
		}
	}
	if n := cl.Accepts(); n != 0 {
		t.Errorf("the internal listener accepted %d connections", n)
	}
	if calls.Load() != 2 {
		t.Errorf("guard asked %d times, want 2", calls.Load())
	}
	// A redirect or a Location part to the route's own base URL stays
	// trusted: the operator named that host.
	for _, id := range []string{"same", "same-location"} {
		part, closer, err := h.client.DownloadMedia(t.Context(), testRemote, id, nil)
		if err != nil {
			t.Fatalf("%s within the route: %v", id, err)
		}
		b, _ := io.ReadAll(part.Body)
		closer.Close()
		if string(b) != "OK" {
			t.Errorf("%s: body %q", id, b)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("guard asked %d times after the route's own URLs, want still 2", calls.Load())
	}
}

func TestFedClientLocationScheme(t *testing.T) {
	c := &FedClient{DialContext: guardDial(new(atomic.Int64))}
	c.init()
	for _, loc := range []string{"http://cdn.example/x", "ftp://cdn.example/x", "/relative", "file:///etc/passwd"} {
		if _, _, err := c.followLocation(t.Context(), loc, false); !errors.Is(err, ErrRedirectRefused) {
			t.Errorf("Location %q from a discovered server: %v, want ErrRedirectRefused", loc, err)
		}
	}
	if _, _, err := c.followLocation(t.Context(), "http://cdn.example/x", true); !errors.Is(err, errRefused) {
		t.Errorf("http Location from a route: %v, want it dialled (and refused by the guard)", err)
	}
	if _, _, err := c.followLocation(t.Context(), "https://cdn.example/x", false); !errors.Is(err, errRefused) {
		t.Errorf("https Location: %v, want it dialled (and refused by the guard)", err)
	}
}

// TestWellKnownRedirects: a .well-known that redirects https to http, or
// redirects without end, is not followed; discovery falls through.
func TestWellKnownRedirects(t *testing.T) {
	plain, cl := newInternalServer(t)
	var mu sync.Mutex
	requests := map[string]int{}
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.Host]++
		mu.Unlock()
		switch r.Host {
		case "down.example.com":
			http.Redirect(w, r, plain.URL+"/.well-known/matrix/server", http.StatusFound)
		case "loop.example.com":
			http.Redirect(w, r, "https://loop.example.com/.well-known/matrix/server", http.StatusFound)
		}
	}))
	t.Cleanup(tlsSrv.Close)
	client := tlsSrv.Client()
	tr := client.Transport.(*http.Transport).Clone()
	tlsAddr := tlsSrv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasSuffix(addr, ".example.com:443") {
			addr = tlsAddr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	client.Transport = tr
	r := &Resolver{HTTPClient: client, LookupSRV: (&fakeSRV{}).lookup}
	for _, name := range []string{"down.example.com", "loop.example.com"} {
		d, err := r.Resolve(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if want := "https://" + name + ":8448"; d.BaseURL != want {
			t.Errorf("%s: %s, want %s", name, d.BaseURL, want)
		}
	}
	if n := cl.Accepts(); n != 0 {
		t.Errorf("https to http redirect followed: %d connections", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := requests["loop.example.com"]; n != MaxRedirects+1 {
		t.Errorf("endless redirect: %d requests, want %d", n, MaxRedirects+1)
	}
}

// TestManyServerNamesBounded drives thousands of distinct server names
// through the real client (discovery, key fetching, media requests) and
// checks that every cache keyed by them stays at its cap.
func TestManyServerNamesBounded(t *testing.T) {
	const names, capacity = 3000, 100
	var calls atomic.Int64
	dial := guardDial(&calls)
	r := &Resolver{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dial}},
		LookupSRV:  (&fakeSRV{}).lookup,
		CacheSize:  capacity,
	}
	key, _ := GenerateSigningKey("k")
	c := &FedClient{Resolver: r, Origin: testOrigin, Key: key, DialContext: dial}
	f := &KeyFetcher{Client: c, CacheSize: capacity}
	for i := range names {
		name := fmt.Sprintf("n%d.example.net", i)
		if i%2 == 1 {
			name = fmt.Sprintf("10.%d.%d.%d:8448", i>>16&255, i>>8&255, i&255)
		}
		if _, err := f.PublicKey(t.Context(), name, "ed25519:k"); !errors.Is(err, errRefused) {
			t.Fatalf("keys of %s: %v", name, err)
		}
		if _, _, err := c.DownloadMedia(t.Context(), name, "abc", nil); !errors.Is(err, errRefused) {
			t.Fatalf("media of %s: %v", name, err)
		}
	}
	dests, wellKnown := r.CacheLen()
	if dests != capacity || wellKnown != capacity {
		t.Errorf("resolver caches hold %d destinations and %d .well-known answers, want %d each", dests, wellKnown, capacity)
	}
	if n := f.CacheLen(); n != capacity {
		t.Errorf("key cache holds %d servers, want %d", n, capacity)
	}
	if calls.Load() < names {
		t.Errorf("only %d dials for %d names", calls.Load(), names)
	}
	// net/http keeps state per host dialled: the transport that sent to
	// every name has been renewed, and its successor knows a bounded few.
	if hosts, renewed := c.transport.guarded.stats(); hosts > DefaultRecycleHosts || renewed < names/DefaultRecycleHosts {
		t.Errorf("guarded transport: %d hosts, renewed %d times; want at most %d hosts, renewed at least %d times",
			hosts, renewed, DefaultRecycleHosts, names/DefaultRecycleHosts)
	}
}

// TestRecyclingTransport: after maxHosts distinct hosts the transport is
// replaced; hosts seen again do not count twice.
func TestRecyclingTransport(t *testing.T) {
	var calls atomic.Int64
	made := 0
	r := NewRecyclingTransport(func() *http.Transport {
		made++
		return &http.Transport{DialContext: guardDial(&calls)}
	}, 10)
	for i := range 35 {
		for range 2 { // the same host twice
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://h%d.example:8448/x", i), nil)
			if _, err := r.RoundTrip(req); !errors.Is(err, errRefused) {
				t.Fatalf("RoundTrip: %v", err)
			}
		}
	}
	if hosts, renewed := r.stats(); hosts != 5 || renewed != 3 || made != 4 {
		t.Errorf("after 35 hosts with a cap of 10: %d hosts, renewed %d times, %d transports made; want 5, 3, 4", hosts, renewed, made)
	}
}

func TestCheckRedirect(t *testing.T) {
	req := func(s string) *http.Request {
		u, _ := url.Parse(s)
		return &http.Request{URL: u}
	}
	tests := []struct {
		name string
		to   string
		via  []string
		ok   bool
	}{
		{"http to https", "https://b/", []string{"http://a/"}, true},
		{"https to https", "https://b/", []string{"https://a/"}, true},
		{"http to http", "http://b/", []string{"http://a/"}, true},
		{"https to http", "http://b/", []string{"https://a/"}, false},
		{"https, http, then http", "http://c/", []string{"https://a/", "http://b/"}, false},
		{"ftp", "ftp://b/", []string{"https://a/"}, false},
		{"too many", "https://g/", []string{"https://a/", "https://b/", "https://c/", "https://d/", "https://e/", "https://f/"}, false},
		{"just enough", "https://f/", []string{"https://a/", "https://b/", "https://c/", "https://d/", "https://e/"}, true},
	}
	for _, tt := range tests {
		var via []*http.Request
		for _, v := range tt.via {
			via = append(via, req(v))
		}
		err := checkRedirect(req(tt.to), via)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrRedirectRefused)) {
			t.Errorf("%s: %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
