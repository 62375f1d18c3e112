package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/testkit"
)

// internalServer is an internal service (a metadata endpoint, an admin
// port) on network and addr that federation must never reach; it answers
// "SECRET" to anything.
func internalServer(t *testing.T, network, addr string) (*httptest.Server, *testkit.CountingListener) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	cl := &testkit.CountingListener{Listener: ln}
	srv := &httptest.Server{Listener: cl, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "SECRET")
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

// ssrfOrigin is a remote homeserver reached through a route (so trusted)
// whose federation media answers point at target: media "location" is a
// multipart Location part, "redirect" an HTTP 302, "fine" real bytes.
func ssrfOrigin(t *testing.T, target string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b := matrix.NewBoundary()
		switch r.URL.Path {
		case "/_matrix/federation/v1/media/download/location":
			w.Header().Set("Content-Type", matrix.MultipartContentType(b))
			matrix.WriteMultipartRedirect(w, b, target+"/latest/meta-data/")
		case "/_matrix/federation/v1/media/download/redirect":
			http.Redirect(w, r, target+"/latest/meta-data/", http.StatusFound)
		case "/_matrix/federation/v1/media/download/fine":
			w.Header().Set("Content-Type", matrix.MultipartContentType(b))
			matrix.WriteMultipart(w, b, "text/plain", "inline", strings.NewReader("PUBLIC"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// withFederation gives a.test a signing key (so remote media is fetched)
// and routes the server names to base.
func withFederation(t *testing.T, base string, names ...string) func(*config.Config) {
	t.Helper()
	k, err := matrix.GenerateSigningKey("k")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "a.key")
	if err := os.WriteFile(keyFile, k.MarshalFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) {
		c.Homeservers[0].SigningKey = keyFile
		c.Federation.Routes = map[string]string{}
		for _, n := range names {
			c.Federation.Routes[n] = base
		}
	}
}

// TestSSRFLocationAndRedirect: a trusted origin answering a federation
// media request with a Location part or an HTTP redirect to an internal
// address gets a 502 Matrix error, and nothing connects to the internal
// listener. Its own media still comes through (routes are trusted).
func TestSSRFLocationAndRedirect(t *testing.T) {
	internal, cl := internalServer(t, "tcp", "127.0.0.1:0")
	origin, hits := ssrfOrigin(t, internal.URL)
	// One server name per case: a failure backs its server off.
	s := startE2E(t, withFederation(t, origin.URL, "loc.test", "redir.test", "fine.test"))
	for _, c := range []struct{ server, id string }{{"loc.test", "location"}, {"redir.test", "redirect"}} {
		before := hits.Load()
		r := s.download(t, hostA, c.server, c.id, aliceToken)
		wantError(t, r, http.StatusBadGateway, "M_UNKNOWN")
		if strings.Contains(string(r.Body), "SECRET") {
			t.Errorf("%s: internal answer served: %s", r.what, short(r.Body))
		}
		if hits.Load() == before {
			t.Errorf("%s: the origin was not asked", r.what)
		}
		if n := cl.Accepts(); n != 0 {
			t.Errorf("%s: the internal listener accepted %d connections", r.what, n)
		}
		internal.CloseClientConnections() // no connection to reuse
	}
	wantBytes(t, s.download(t, hostA, "fine.test", "fine", aliceToken), []byte("PUBLIC"))
}

// TestSSRFServerNames: mxc:// server names and an X-Matrix origin that are
// loopback addresses make no connection; the answers are 502 and 401.
func TestSSRFServerNames(t *testing.T) {
	_, cl4 := internalServer(t, "tcp4", "127.0.0.1:0")
	s := startE2E(t, withFederation(t, "http://127.0.0.1:1", "unused.test"))
	name4 := cl4.Addr().String()
	wantError(t, s.download(t, hostA, name4, "x", aliceToken), http.StatusBadGateway, "M_UNKNOWN")
	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		cl6 := &testkit.CountingListener{Listener: ln6}
		srv6 := &httptest.Server{Listener: cl6, Config: &http.Server{Handler: http.NotFoundHandler()}}
		srv6.Start()
		defer srv6.Close()
		wantError(t, s.download(t, hostA, cl6.Addr().String(), "x", aliceToken), http.StatusBadGateway, "M_UNKNOWN")
		if n := cl6.Accepts(); n != 0 {
			t.Errorf("the [::1] listener accepted %d connections", n)
		}
	} else {
		t.Logf("no IPv6 loopback (%v): [::1] case skipped", err)
	}

	// A federation request claiming to come from the internal listener:
	// its key is not fetched from there.
	k, _ := matrix.GenerateSigningKey("x")
	path := "/_matrix/federation/v1/media/download/abc"
	auth, err := matrix.SignRequest(http.MethodGet, path, name4, hostA, nil, k)
	if err != nil {
		t.Fatal(err)
	}
	r := s.do(t, http.MethodGet, hostA, path, "", nil, map[string]string{"Authorization": auth})
	wantError(t, r, http.StatusUnauthorized, "")
	if n := cl4.Accepts(); n != 0 {
		t.Errorf("the 127.0.0.1 listener accepted %d connections", n)
	}
}

// TestSSRFAllowedNetworks: allowed_networks is the operator's exception:
// with 127.0.0.0/8 listed, the Location target on loopback is fetched and
// an mxc:// loopback server name is connected to.
func TestSSRFAllowedNetworks(t *testing.T) {
	internal, cl := internalServer(t, "tcp4", "127.0.0.1:0")
	origin, _ := ssrfOrigin(t, internal.URL)
	fed := withFederation(t, origin.URL, "loc.test")
	s := startE2E(t, func(c *config.Config) {
		fed(c)
		c.Federation.AllowedNetworks = []string{"127.0.0.0/8"}
	})
	wantBytes(t, s.download(t, hostA, "loc.test", "location", aliceToken), []byte("SECRET"))
	if n := cl.Accepts(); n != 1 {
		t.Errorf("Location fetch: %d connections, want 1", n)
	}
	// Not TLS, so the fetch fails, but only after connecting.
	wantError(t, s.download(t, hostA, cl.Addr().String(), "x", aliceToken), http.StatusBadGateway, "M_UNKNOWN")
	if n := cl.Accepts(); n != 2 {
		t.Errorf("mxc://%s: %d connections in all, want 2", cl.Addr(), n)
	}
}

// TestSSRFWellKnownLoopback: a server name that resolves to loopback
// ("localhost") makes discovery ask https://localhost/.well-known; that
// connection is refused like any other, so a listener on 127.0.0.1:443
// (when the test may bind it) is never reached.
func TestSSRFWellKnownLoopback(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:443")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:443: %v", err)
	}
	cl := &testkit.CountingListener{Listener: ln}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"m.server":"127.0.0.1:1"}`)
	}))
	srv.Listener = cl
	srv.StartTLS()
	defer srv.Close()
	s := startE2E(t, withFederation(t, "http://127.0.0.1:1", "unused.test"))
	wantError(t, s.download(t, hostA, "localhost", "x", aliceToken), http.StatusBadGateway, "M_UNKNOWN")
	if n := cl.Accepts(); n != 0 {
		t.Errorf("the .well-known listener on 127.0.0.1:443 accepted %d connections", n)
	}
}
