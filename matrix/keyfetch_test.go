package matrix

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mxcas/mxcas/testkit"
)

// newFakeClock is a settable clock for tests, at a fixed start.
func newFakeClock() *testkit.Clock { return testkit.NewClock(time.UnixMilli(1_700_000_000_000)) }

// keyServer serves a key document and counts the requests.
type keyServer struct {
	mu       sync.Mutex
	doc      []byte
	status   int
	requests atomic.Int32
	release  chan struct{} // when set, requests wait for it
}

func (s *keyServer) set(status int, doc []byte) {
	s.mu.Lock()
	s.status, s.doc = status, doc
	s.mu.Unlock()
}

// ServeHTTP answers GET KeyServerPath with Host testRemote by the document
// and status set, after release is closed where it is set.
func (s *keyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.release != nil {
		<-s.release
	}
	if r.URL.Path != KeyServerPath || r.Host != testRemote {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	status, doc := s.status, s.doc
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(doc)
}

func newKeyFetcher(t *testing.T, clock *testkit.Clock) (*KeyFetcher, *keyServer) {
	t.Helper()
	ks := &keyServer{status: http.StatusOK}
	srv := httptest.NewServer(ks)
	t.Cleanup(srv.Close)
	f := &KeyFetcher{
		Client: &FedClient{Resolver: &Resolver{Routes: map[string]string{testRemote: srv.URL}}},
		Now:    clock.Now,
	}
	return f, ks
}

// newPipeKeyFetcher is newKeyFetcher for a testing/synctest bubble: the key
// server is a real http.Server and the fetcher's FedClient its real route
// transport, but they talk over net.Pipe (see pipeListener) instead of
// loopback TCP, whose reads synctest does not count as durably blocked. Call
// it inside the bubble; the cleanup closes both ends there.
func newPipeKeyFetcher(t *testing.T, clock *testkit.Clock) (*KeyFetcher, *keyServer) {
	t.Helper()
	ks := &keyServer{status: http.StatusOK}
	ln := newPipeListener()
	srv := &http.Server{Handler: ks}
	go srv.Serve(ln)
	client := &FedClient{Resolver: &Resolver{Routes: map[string]string{testRemote: "http://" + testRemote}}}
	client.init()
	client.transport.route.DialContext = ln.DialContext // the one change to the real transport
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close()
	})
	return &KeyFetcher{Client: client, Now: clock.Now}, ks
}

func mustKey(t *testing.T, version string) SigningKey {
	t.Helper()
	k, err := GenerateSigningKey(version)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeyDocument(t *testing.T, server string, k SigningKey, validUntil time.Time) []byte {
	t.Helper()
	doc, err := KeyDocument(server, k, validUntil)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestKeyDocumentShape(t *testing.T) {
	k := mustKey(t, "a1")
	until := time.UnixMilli(1_800_000_000_000)
	doc := mustKeyDocument(t, testRemote, k, until)
	if err := VerifyJSON(doc, testRemote, k.ID, k.Public()); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	var got struct {
		ServerName   string                       `json:"server_name"`
		ValidUntilTS int64                        `json:"valid_until_ts"`
		VerifyKeys   map[string]map[string]string `json:"verify_keys"`
		OldKeys      map[string]any               `json:"old_verify_keys"`
	}
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	if got.ServerName != testRemote || got.ValidUntilTS != until.UnixMilli() || got.OldKeys == nil {
		t.Errorf("document = %s", doc)
	}
	if want := base64.RawStdEncoding.EncodeToString(k.Public()); got.VerifyKeys[k.ID]["key"] != want {
		t.Errorf("verify key = %q, want %q", got.VerifyKeys[k.ID]["key"], want)
	}
}

func TestKeyFetcherFetchesAndCaches(t *testing.T) {
	clock := newFakeClock()
	f, ks := newKeyFetcher(t, clock)
	k := mustKey(t, "a1")
	ks.set(200, mustKeyDocument(t, testRemote, k, clock.Now().Add(time.Hour)))

	for range 3 {
		pub, err := f.PublicKey(t.Context(), testRemote, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(k.Public()) {
			t.Fatal("wrong key")
		}
	}
	if n := ks.requests.Load(); n != 1 {
		t.Errorf("requests = %d, want 1 (cached)", n)
	}
	// Past valid_until_ts the document is fetched again.
	clock.Advance(2 * time.Hour)
	ks.set(200, mustKeyDocument(t, testRemote, k, clock.Now().Add(30*24*time.Hour)))
	if _, err := f.PublicKey(t.Context(), testRemote, k.ID); err != nil {
		t.Fatal(err)
	}
	if n := ks.requests.Load(); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
	// valid_until_ts 30 days away is capped at 7 days.
	clock.Advance(6 * 24 * time.Hour)
	f.PublicKey(t.Context(), testRemote, k.ID)
	if n := ks.requests.Load(); n != 2 {
		t.Errorf("after 6 days requests = %d, want 2", n)
	}
	clock.Advance(25 * time.Hour)
	f.PublicKey(t.Context(), testRemote, k.ID)
	if n := ks.requests.Load(); n != 3 {
		t.Errorf("after 7 days requests = %d, want 3", n)
	}
}

func TestKeyFetcherSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := newFakeClock()
		f, ks := newPipeKeyFetcher(t, clock)
		k := mustKey(t, "a1")
		ks.set(200, mustKeyDocument(t, testRemote, k, clock.Now().Add(time.Hour)))
		ks.release = make(chan struct{})

		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Go(func() {
				_, err := f.PublicKey(t.Context(), testRemote, k.ID)
				errs <- err
			})
		}
		// Every caller is now blocked for good: one in the key server,
		// held by release, the others waiting on its flight.
		synctest.Wait()
		if n := ks.requests.Load(); n != 1 {
			t.Errorf("requests in flight = %d, want 1", n)
		}
		close(ks.release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if n := ks.requests.Load(); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
}

func TestKeyFetcherOldKeys(t *testing.T) {
	clock := newFakeClock()
	f, ks := newKeyFetcher(t, clock)
	cur, old := mustKey(t, "new"), mustKey(t, "old")
	doc := map[string]any{
		"server_name":    testRemote,
		"valid_until_ts": clock.Now().Add(time.Hour).UnixMilli(),
		"verify_keys":    map[string]any{cur.ID: map[string]string{"key": base64.RawStdEncoding.EncodeToString(cur.Public())}},
		"old_verify_keys": map[string]any{old.ID: map[string]any{
			"key": base64.RawStdEncoding.EncodeToString(old.Public()), "expired_ts": clock.Now().Add(-time.Hour).UnixMilli(),
		}},
	}
	raw, _ := json.Marshal(doc)
	signed, err := SignJSON(raw, testRemote, cur)
	if err != nil {
		t.Fatal(err)
	}
	ks.set(200, signed)
	pub, err := f.PublicKey(t.Context(), testRemote, old.ID)
	if err != nil || !pub.Equal(old.Public()) {
		t.Fatalf("old key: %v", err)
	}
	if _, err := f.PublicKey(t.Context(), testRemote, cur.ID); err != nil {
		t.Fatal(err)
	}
	if n := ks.requests.Load(); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestKeyFetcherRejects(t *testing.T) {
	clock := newFakeClock()
	k, other := mustKey(t, "a1"), mustKey(t, "a1")
	valid := clock.Now().Add(time.Hour)
	tampered := bytes.Replace(mustKeyDocument(t, testRemote, k, valid), []byte(`"valid_until_ts":`), []byte(`"valid_until_ts":1`), 1)
	// A document listing k but signed by another key with the same ID.
	forged, _ := SignJSON(bytes.Replace(mustKeyDocument(t, testRemote, k, valid), []byte(`"signatures"`), []byte(`"unsigned"`), 1), testRemote, other)

	tests := []struct {
		name string
		doc  []byte
		want error
	}{
		{"other server", mustKeyDocument(t, "evil.example", k, valid), ErrBadKeyDocument},
		{"tampered", tampered, ErrBadKeyDocument},
		{"forged", forged, ErrBadKeyDocument},
		{"unsigned", []byte(`{"server_name":"remote.example","valid_until_ts":1800000000000,"verify_keys":{"ed25519:a1":{"key":"` + base64.RawStdEncoding.EncodeToString(k.Public()) + `"}}}`), ErrBadKeyDocument},
		{"expired", mustKeyDocument(t, testRemote, k, clock.Now().Add(-time.Minute)), ErrBadKeyDocument},
		{"not JSON", []byte("<html>"), ErrBadKeyDocument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ks := newKeyFetcher(t, clock)
			ks.set(200, tt.doc)
			if _, err := f.PublicKey(t.Context(), testRemote, k.ID); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKeyFetcherNegativeCache(t *testing.T) {
	clock := newFakeClock()
	f, ks := newKeyFetcher(t, clock)
	k := mustKey(t, "a1")
	ks.set(500, []byte(`{"errcode":"M_UNKNOWN","error":"down"}`))

	for range 3 {
		if _, err := f.PublicKey(t.Context(), testRemote, k.ID); err == nil {
			t.Fatal("no error from a failing server")
		}
	}
	if n := ks.requests.Load(); n != 1 {
		t.Errorf("requests = %d, want 1 (failure cached)", n)
	}
	clock.Advance(2 * time.Minute)
	ks.set(200, mustKeyDocument(t, testRemote, k, clock.Now().Add(time.Hour)))
	if _, err := f.PublicKey(t.Context(), testRemote, k.ID); err != nil {
		t.Fatal(err)
	}

	// A key ID the fresh document lacks is not refetched at once...
	if _, err := f.PublicKey(t.Context(), testRemote, "ed25519:other"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("err = %v, want ErrKeyNotFound", err)
	}
	if n := ks.requests.Load(); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
	// ...but is after the failure TTL, in case the server rotated.
	clock.Advance(2 * time.Minute)
	f.PublicKey(t.Context(), testRemote, "ed25519:other")
	if n := ks.requests.Load(); n != 3 {
		t.Errorf("requests = %d, want 3", n)
	}
}

func TestKeyFetcherVerifiesRequest(t *testing.T) {
	// End to end: a key fetched by KeyFetcher verifies a FedClient request.
	clock := newFakeClock()
	f, ks := newKeyFetcher(t, clock)
	k := mustKey(t, "a1")
	ks.set(200, mustKeyDocument(t, testRemote, k, clock.Now().Add(time.Hour)))
	auth, err := SignRequest("GET", "/_matrix/federation/v1/media/download/abc", testRemote, testOrigin, nil, k)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseXMatrix(auth)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := f.PublicKey(t.Context(), x.Origin, x.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRequest("GET", "/_matrix/federation/v1/media/download/abc", nil, x, ed25519.PublicKey(pub)); err != nil {
		t.Error(err)
	}
}
