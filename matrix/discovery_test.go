package matrix

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeSRV answers SRV lookups from a table keyed "_service._proto.name".
type fakeSRV struct {
	mu      sync.Mutex
	records map[string][]*net.SRV
	calls   int
}

func (f *fakeSRV) lookup(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	key := "_" + service + "._" + proto + "." + name
	if rs, ok := f.records[key]; ok {
		return key, rs, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: key, IsNotFound: true}
}

func (f *fakeSRV) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// wellKnownServer is a TLS server for *.example.com whose
// /.well-known/matrix/server answers depend on the Host header; every
// connection of its client goes to it, whatever the name.
type wellKnownServer struct {
	mu       sync.Mutex
	answers  map[string]wellKnownAnswer
	requests map[string]int
	client   *http.Client
}

type wellKnownAnswer struct {
	status       int
	body         string
	cacheControl string
}

func newWellKnownServer(t *testing.T, answers map[string]wellKnownAnswer) *wellKnownServer {
	t.Helper()
	s := &wellKnownServer{answers: answers, requests: map[string]int{}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.Host]++
		a, ok := s.answers[r.Host]
		s.mu.Unlock()
		if !ok || r.URL.Path != "/.well-known/matrix/server" {
			http.NotFound(w, r)
			return
		}
		if a.cacheControl != "" {
			w.Header().Set("Cache-Control", a.cacheControl)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	client := srv.Client() // trusts the test certificate (127.0.0.1, example.com, *.example.com)
	tr := client.Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	client.Transport = tr
	s.client = client
	return s
}

func (s *wellKnownServer) count(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[host]
}

func TestResolve(t *testing.T) {
	wk := newWellKnownServer(t, map[string]wellKnownAnswer{
		"wk-port.example.com":  {200, `{"m.server":"delegated.example.com:443"}`, ""},
		"wk-srv.example.com":   {200, `{"m.server":"delegated-srv.example.com"}`, ""},
		"wk-plain.example.com": {200, `{"m.server":"plain-delegated.example.com"}`, ""},
		"wk-ip.example.com":    {200, `{"m.server":"10.0.0.1"}`, ""},
		"wk-ip6.example.com":   {200, `{"m.server":"[2001:db8::1]:8000"}`, ""},
		"wk-bad.example.com":   {200, `{"m.server":"not a name!"}`, ""},
		"wk-junk.example.com":  {200, `<html>`, ""},
		"wk-500.example.com":   {500, `{"m.server":"never.example.com"}`, ""},
	})
	srv := &fakeSRV{records: map[string][]*net.SRV{
		"_matrix-fed._tcp.delegated-srv.example.com": {{Target: "backend.example.com.", Port: 8443}},
		"_matrix-fed._tcp.srv.example.com":           {{Target: "fed.example.com.", Port: 8449}},
		"_matrix._tcp.srv.example.com":               {{Target: "wrong.example.com.", Port: 1}},
		"_matrix._tcp.legacy-srv.example.com":        {{Target: "old.example.com.", Port: 8450}},
		"_matrix-fed._tcp.dot.example.com":           {{Target: ".", Port: 0}},
		"_matrix-fed._tcp.1.2.3.4":                   {{Target: "wrong.example.com.", Port: 1}},
		"_matrix-fed._tcp.explicit.example.com":      {{Target: "wrong.example.com.", Port: 1}},
	}}
	r := &Resolver{
		Routes:     map[string]string{"route.example.com": "http://127.0.0.1:9999/"},
		HTTPClient: wk.client,
		LookupSRV:  srv.lookup,
	}
	tests := []struct {
		name string
		want Destination
	}{
		{"route.example.com", Destination{"http://127.0.0.1:9999", "route.example.com", "127.0.0.1"}},
		{"1.2.3.4", Destination{"https://1.2.3.4:8448", "1.2.3.4", "1.2.3.4"}},
		{"1.2.3.4:80", Destination{"https://1.2.3.4:80", "1.2.3.4:80", "1.2.3.4"}},
		{"[::1]", Destination{"https://[::1]:8448", "[::1]", "::1"}},
		{"[::1]:8008", Destination{"https://[::1]:8008", "[::1]:8008", "::1"}},
		{"explicit.example.com:1234", Destination{"https://explicit.example.com:1234", "explicit.example.com:1234", "explicit.example.com"}},
		{"wk-port.example.com", Destination{"https://delegated.example.com:443", "delegated.example.com:443", "delegated.example.com"}},
		{"wk-srv.example.com", Destination{"https://backend.example.com:8443", "delegated-srv.example.com", "delegated-srv.example.com"}},
		{"wk-plain.example.com", Destination{"https://plain-delegated.example.com:8448", "plain-delegated.example.com", "plain-delegated.example.com"}},
		{"wk-ip.example.com", Destination{"https://10.0.0.1:8448", "10.0.0.1", "10.0.0.1"}},
		{"wk-ip6.example.com", Destination{"https://[2001:db8::1]:8000", "[2001:db8::1]:8000", "2001:db8::1"}},
		{"wk-bad.example.com", Destination{"https://wk-bad.example.com:8448", "wk-bad.example.com", "wk-bad.example.com"}},
		{"wk-junk.example.com", Destination{"https://wk-junk.example.com:8448", "wk-junk.example.com", "wk-junk.example.com"}},
		{"wk-500.example.com", Destination{"https://wk-500.example.com:8448", "wk-500.example.com", "wk-500.example.com"}},
		{"srv.example.com", Destination{"https://fed.example.com:8449", "srv.example.com", "srv.example.com"}},
		{"legacy-srv.example.com", Destination{"https://old.example.com:8450", "legacy-srv.example.com", "legacy-srv.example.com"}},
		{"dot.example.com", Destination{"https://dot.example.com:8448", "dot.example.com", "dot.example.com"}},
		{"plain.example.com", Destination{"https://plain.example.com:8448", "plain.example.com", "plain.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(t.Context(), tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q)\n got %+v\nwant %+v", tt.name, got, tt.want)
			}
		})
	}
	// IP literals and explicit ports need no lookups.
	for _, name := range []string{"9.9.9.9", "[::2]:1", "other.example.com:8448"} {
		if _, err := r.Resolve(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	if n := wk.count("9.9.9.9") + wk.count("other.example.com"); n != 0 {
		t.Errorf("well-known fetched %d times for direct names", n)
	}
}

func TestResolveInvalid(t *testing.T) {
	r := &Resolver{LookupSRV: (&fakeSRV{}).lookup, Routes: map[string]string{"r.example.com": "ftp://x"}}
	for _, name := range []string{"", "a/b", "host:0", "[::1", "bad name"} {
		if _, err := r.Resolve(t.Context(), name); !errors.Is(err, ErrInvalid) {
			t.Errorf("Resolve(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := r.Resolve(t.Context(), "r.example.com"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad route: %v", err)
	}
}

func TestResolveCaching(t *testing.T) {
	wk := newWellKnownServer(t, map[string]wellKnownAnswer{
		"default.example.com": {200, `{"m.server":"d.example.com:443"}`, ""},
		"short.example.com":   {200, `{"m.server":"s.example.com:443"}`, "public, max-age=60"},
		"long.example.com":    {200, `{"m.server":"l.example.com:443"}`, "max-age=9999999"},
	})
	clock := newFakeClock()
	srv := &fakeSRV{}
	r := &Resolver{HTTPClient: wk.client, LookupSRV: srv.lookup, Now: clock.Now, CacheTTL: time.Hour}
	resolve := func(name string) {
		t.Helper()
		if _, err := r.Resolve(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"default.example.com", "short.example.com", "long.example.com", "missing.example.com"}
	for _, n := range names {
		resolve(n)
		resolve(n)
	}
	check := func(when string, want map[string]int) {
		t.Helper()
		for host, n := range want {
			if got := wk.count(host); got != n {
				t.Errorf("%s: %s fetched %d times, want %d", when, host, got, n)
			}
		}
	}
	check("start", map[string]int{"default.example.com": 1, "short.example.com": 1, "long.example.com": 1, "missing.example.com": 1})
	srvCalls := srv.callCount()

	clock.Advance(2 * time.Minute) // short's max-age has passed
	for _, n := range names {
		resolve(n)
	}
	check("2 min", map[string]int{"default.example.com": 1, "short.example.com": 2, "long.example.com": 1, "missing.example.com": 1})

	clock.Advance(10 * time.Minute) // the failure of missing has expired
	for _, n := range names {
		resolve(n)
	}
	check("12 min", map[string]int{"default.example.com": 1, "short.example.com": 3, "long.example.com": 1, "missing.example.com": 2})

	clock.Advance(2 * time.Hour) // destinations expired, delegations not
	for _, n := range names {
		resolve(n)
	}
	check("2 h", map[string]int{"default.example.com": 1, "long.example.com": 1})
	if srv.callCount() == srvCalls {
		t.Error("SRV not looked up again after CacheTTL")
	}

	clock.Advance(23 * time.Hour) // default 24 h has passed
	for _, n := range names {
		resolve(n)
	}
	check("25 h", map[string]int{"default.example.com": 2, "long.example.com": 1})

	clock.Advance(24 * time.Hour) // 48 h cap has passed
	resolve("long.example.com")
	check("49 h", map[string]int{"long.example.com": 2})
}

func TestResolveConcurrent(t *testing.T) {
	wk := newWellKnownServer(t, map[string]wellKnownAnswer{
		"c.example.com": {200, `{"m.server":"cc.example.com:443"}`, ""},
	})
	r := &Resolver{HTTPClient: wk.client, LookupSRV: (&fakeSRV{}).lookup}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			d, err := r.Resolve(context.Background(), "c.example.com")
			if err != nil || d.BaseURL != "https://cc.example.com:443" {
				t.Errorf("got %+v, %v", d, err)
			}
		})
	}
	wg.Wait()
	if n := wk.count("c.example.com"); n != 1 {
		t.Errorf("well-known fetched %d times, want 1", n)
	}
}

func TestWellKnownTTL(t *testing.T) {
	tests := []struct {
		cc   string
		want time.Duration
	}{
		{"", 24 * time.Hour},
		{"max-age=3600", time.Hour},
		{"public, Max-Age=120", 2 * time.Minute},
		{"max-age=999999999", 48 * time.Hour},
		{"no-store", 0},
		{"max-age=abc", 24 * time.Hour},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.cc != "" {
			h.Set("Cache-Control", tt.cc)
		}
		if got := wellKnownTTL(h); got != tt.want {
			t.Errorf("wellKnownTTL(%q) = %v, want %v", tt.cc, got, tt.want)
		}
	}
}

func TestFedClientSRVTLSName(t *testing.T) {
	// A destination found by SRV must be checked against the server name,
	// not the SRV target. The test certificate is valid for example.com
	// and *.example.com; every connection goes to the test server.
	var hosts []string
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	refuse := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no .well-known here") }
	c := &FedClient{
		Resolver: &Resolver{
			HTTPClient: &http.Client{Transport: &http.Transport{DialContext: refuse}},
			LookupSRV: (&fakeSRV{records: map[string][]*net.SRV{
				"_matrix-fed._tcp.srv.example.com": {{Target: "backend.example.net.", Port: 8443}},
				"_matrix-fed._tcp.srv.test":        {{Target: "backend.example.com.", Port: 8443}},
			}}).lookup,
		},
		DialContext: dial,
		TLSConfig:   srv.Client().Transport.(*http.Transport).TLSClientConfig,
	}
	for range 2 { // the second time on a fresh connection, checked again
		resp, err := c.getUnsigned(context.Background(), "srv.example.com", "/x")
		if err != nil {
			t.Fatalf("SRV destination whose certificate is valid for the server name: %v", err)
		}
		resp.Body.Close()
	}
	// The certificate is valid for the SRV target but not for srv.test.
	resp, err := c.getUnsigned(context.Background(), "srv.test", "/x")
	if err == nil {
		resp.Body.Close()
		t.Fatal("certificate checked against the SRV target, not the server name")
	}
	// A plain destination is checked against its own host.
	resp, err = c.getUnsigned(context.Background(), "plain.example.com:8448", "/x")
	if err != nil {
		t.Fatalf("plain destination: %v", err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 3 || hosts[0] != "srv.example.com" || hosts[2] != "plain.example.com:8448" {
		t.Errorf("Host headers %q", hosts)
	}
}
