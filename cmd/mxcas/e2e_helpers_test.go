package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/config"
)

// The two homeservers every end-to-end server hosts, and the tokens their
// whoami servers know.
const (
	hostA      = "a.test"
	hostB      = "b.test"
	aliceToken = "alice-token" // @alice:a.test on a.test
	bobToken   = "bob-token"   // @bob:a.test on a.test
	carolToken = "carol-token" // @carol:b.test on b.test
)

// e2eBound is a safety net for a request or a shutdown that hangs, not a
// speed check. It is above the 60 s timeout_ms cap.
const e2eBound = 90 * time.Second

// wantCSP is the Content-Security-Policy of every download (matrix-media.md).
const wantCSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; " +
	"style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"

var mediaIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// whoami is an in-test homeserver answering GET
// /_matrix/client/v3/account/whoami for the tokens in users.
type whoami struct {
	srv   *httptest.Server
	users map[string]string // token -> user ID
	calls atomic.Int64
	fail  atomic.Bool // answer 500 to everything
}

func newWhoami(t *testing.T, users map[string]string) *whoami {
	t.Helper()
	w := &whoami{users: users}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.calls.Add(1)
		rw.Header().Set("Content-Type", "application/json")
		if w.fail.Load() {
			rw.WriteHeader(http.StatusInternalServerError)
			io.WriteString(rw, `{"errcode":"M_UNKNOWN","error":"homeserver on fire"}`)
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/_matrix/client/v3/account/whoami" {
			rw.WriteHeader(http.StatusNotFound)
			io.WriteString(rw, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			tok = r.URL.Query().Get("access_token")
		}
		user, ok := w.users[tok]
		if !ok {
			rw.WriteHeader(http.StatusUnauthorized)
			io.WriteString(rw, `{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown access token"}`)
			return
		}
		json.NewEncoder(rw).Encode(map[string]string{"user_id": user})
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// e2eLog collects a server's log for failure messages.
type e2eLog struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed at the next write (see waitFor)
}

func (l *e2eLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return l.b.Write(p)
}

func (l *e2eLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// e2eServer is serve running in this process.
type e2eServer struct {
	addr    string // host:port it listens on
	base    string // http://addr
	dataDir string
	cfg     config.Config
	whoamiA *whoami // a.test's homeserver
	whoamiB *whoami // b.test's homeserver
	client  *http.Client
	log     *e2eLog

	cancel   context.CancelFunc
	done     chan error // gets serve's result
	stopOnce sync.Once
	stopErr  error
}

// startE2E runs serve with two homeservers, a.test and b.test, each
// checking tokens with its own whoami server, and a fresh data directory.
// mutate, when not nil, changes the configuration last (it may point
// DataDir at an existing store). The server stops at the end of the test.
func startE2E(t *testing.T, mutate func(*config.Config)) *e2eServer {
	t.Helper()
	s := &e2eServer{
		whoamiA: newWhoami(t, map[string]string{
			aliceToken:    "@alice:a.test",
			bobToken:      "@bob:a.test",
			"cache-token": "@cache:a.test",
		}),
		whoamiB: newWhoami(t, map[string]string{carolToken: "@carol:b.test"}),
		log:     new(e2eLog),
		done:    make(chan error, 1),
	}
	cfg := config.Default()
	cfg.Source = "e2e test"
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AdminListen = "127.0.0.1:0"
	cfg.Server.DataDir = t.TempDir()
	cfg.Homeservers = []config.Homeserver{
		{Name: hostA, ClientAPI: s.whoamiA.srv.URL},
		{Name: hostB, ClientAPI: s.whoamiB.srv.URL},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	s.cfg, s.dataDir = cfg, cfg.Server.DataDir

	logger := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan string, 1)
	go func() {
		s.done <- serve(ctx, cfg, logger, func(addr string) { ready <- addr })
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	bound := time.NewTimer(e2eBound)
	defer bound.Stop()
	select {
	case s.addr = <-ready:
	case err := <-s.done:
		s.done <- err // for stop
		t.Fatalf("serve returned before listening: %v\n%s", err, s.log)
	case <-bound.C:
		t.Fatalf("server not listening after %v:\n%s", e2eBound, s.log)
	}
	s.base = "http://" + s.addr
	s.client = &http.Client{
		Transport: &http.Transport{DisableCompression: true},
		// Show redirects as they are: a redirect is an answer to check.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       e2eBound,
	}
	return s
}

// withAdmins makes alice the admin of a.test (bob stays a user) and carol
// the admin of b.test, for the admin API's tests.
func withAdmins(c *config.Config) {
	c.Homeservers[0].Admins = []string{"@alice:a.test"}
	c.Homeservers[1].Admins = []string{"@carol:b.test"}
}

// stop cancels serve and waits for it to return; it must return nil. Later
// calls do nothing.
func (s *e2eServer) stop(t *testing.T) {
	t.Helper()
	s.stopOnce.Do(func() {
		s.cancel()
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
		bound := time.NewTimer(e2eBound)
		defer bound.Stop()
		select {
		case s.stopErr = <-s.done:
		case <-bound.C:
			s.stopErr = fmt.Errorf("serve did not return %v after cancel", e2eBound)
		}
		if s.stopErr != nil {
			t.Errorf("serve: %v", s.stopErr)
		}
	})
}

// e2eResp is an answer, read in full.
type e2eResp struct {
	Status int
	Header http.Header
	Body   []byte
	what   string // "METHOD path (Host host)" for messages
}

// request builds a request to path (raw: escapes are sent as written) with
// the given Host; token, when not empty, goes as a Bearer token.
func (s *e2eServer) request(ctx context.Context, method, host, path, token string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Host = host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// roundTrip sends req and reads the whole answer. Safe to call from any
// goroutine.
func (s *e2eServer) roundTrip(req *http.Request) (*e2eResp, error) {
	what := fmt.Sprintf("%s %s (Host %s)", req.Method, req.URL.RequestURI(), req.Host)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: reading body: %w", what, err)
	}
	return &e2eResp{Status: resp.StatusCode, Header: resp.Header, Body: b, what: what}, nil
}

// send is roundTrip for the test's own goroutine: a transport error is
// fatal.
func (s *e2eServer) send(t *testing.T, req *http.Request) *e2eResp {
	t.Helper()
	r, err := s.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// do sends one request; body nil means none, headers are added as given.
func (s *e2eServer) do(t *testing.T, method, host, path, token string, body []byte, headers map[string]string) *e2eResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := s.request(context.Background(), method, host, path, token, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return s.send(t, req)
}

// uploadVia uploads body with POST /_matrix/media/<prefix>/upload; empty
// filename or ctype means none. It wants 200 and an mxc URI on host's
// server name, and returns the media ID.
func (s *e2eServer) uploadVia(t *testing.T, prefix, host, token, filename, ctype string, body []byte) string {
	t.Helper()
	path := "/_matrix/media/" + prefix + "/upload"
	if filename != "" {
		path += "?filename=" + url.QueryEscape(filename)
	}
	var hdr map[string]string
	if ctype != "" {
		hdr = map[string]string{"Content-Type": ctype}
	}
	r := s.do(t, http.MethodPost, host, path, token, body, hdr)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200; body %s", r.what, r.Status, short(r.Body))
	}
	return contentURIID(t, r, serverName(host))
}

// upload is uploadVia on the v3 prefix.
func (s *e2eServer) upload(t *testing.T, host, token, filename, ctype string, body []byte) string {
	t.Helper()
	return s.uploadVia(t, "v3", host, token, filename, ctype, body)
}

// download is the authenticated GET of mxc://server/id through host.
func (s *e2eServer) download(t *testing.T, host, server, id, token string) *e2eResp {
	t.Helper()
	return s.do(t, http.MethodGet, host, "/_matrix/client/v1/media/download/"+server+"/"+id, token, nil, nil)
}

// contentURIID reads {"content_uri": "mxc://server/<id>"} from r and
// returns the ID, which must use only [A-Za-z0-9_-].
func contentURIID(t *testing.T, r *e2eResp, server string) string {
	t.Helper()
	var v struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%s: body %s: %v", r.what, short(r.Body), err)
	}
	id, ok := strings.CutPrefix(v.ContentURI, "mxc://"+server+"/")
	if !ok || !mediaIDRE.MatchString(id) {
		t.Fatalf("%s: content_uri %q, want mxc://%s/<[A-Za-z0-9_-]+>", r.what, v.ContentURI, server)
	}
	return id
}

// serverName drops the port from a Host header.
func serverName(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i]
	}
	return host
}

// wantStatus reports whether r has the status, and says so when not.
func wantStatus(t *testing.T, r *e2eResp, status int) bool {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d; body %s", r.what, r.Status, status, short(r.Body))
		return false
	}
	return true
}

// matrixErrcode checks that r's body is {"errcode": "...", "error": "..."}
// and returns the errcode ("" when it is not).
func matrixErrcode(t *testing.T, r *e2eResp) string {
	t.Helper()
	var e struct {
		Errcode *string `json:"errcode"`
		Error   *string `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Errcode == nil || e.Error == nil || *e.Errcode == "" {
		t.Errorf("%s: status %d, body %s is not a Matrix error {\"errcode\", \"error\"}", r.what, r.Status, short(r.Body))
		return ""
	}
	return *e.Errcode
}

// wantError checks the status and, unless errcode is empty, the errcode of
// a Matrix error.
func wantError(t *testing.T, r *e2eResp, status int, errcode string) {
	t.Helper()
	wantStatus(t, r, status)
	if got := matrixErrcode(t, r); got != "" && errcode != "" && got != errcode {
		t.Errorf("%s: errcode %s, want %s", r.what, got, errcode)
	}
}

// wantClientError checks that r is a 4xx Matrix error (never a 5xx, a
// redirect or a file).
func wantClientError(t *testing.T, r *e2eResp) {
	t.Helper()
	if r.Status < 400 || r.Status > 499 {
		t.Errorf("%s: status %d, want 4xx; body %s", r.what, r.Status, short(r.Body))
	}
	matrixErrcode(t, r)
}

// wantBytes checks a 200 answer carrying want.
func wantBytes(t *testing.T, r *e2eResp, want []byte) {
	t.Helper()
	if !wantStatus(t, r, http.StatusOK) {
		return
	}
	if !bytes.Equal(r.Body, want) {
		t.Errorf("%s: got %d bytes, want %d bytes (equal: false)", r.what, len(r.Body), len(want))
	}
}

// listHas reports whether a comma-separated header value lists item,
// case-insensitively.
func listHas(value, item string) bool {
	for _, v := range strings.Split(value, ",") {
		if strings.EqualFold(strings.TrimSpace(v), item) {
			return true
		}
	}
	return false
}

// short quotes at most 300 bytes of b for messages.
func short(b []byte) string {
	if len(b) > 300 {
		return fmt.Sprintf("%q...", b[:300])
	}
	return fmt.Sprintf("%q", b)
}

// wantDisposition checks Content-Disposition: its type ("inline" or
// "attachment") and its file name, given as the parameter expected:
// "" for none, "filename=name" for a plain token name (quoted is accepted
// too), or "filename*=utf-8”<percent-encoded UTF-8>" (charset and hex
// digits compared case-insensitively).
func wantDisposition(t *testing.T, r *e2eResp, typ, param string) {
	t.Helper()
	cd := r.Header.Get("Content-Disposition")
	lc := strings.ToLower(cd)
	gotType, params, _ := strings.Cut(lc, ";")
	if strings.TrimSpace(gotType) != typ {
		t.Errorf("%s: Content-Disposition %q, want type %s", r.what, cd, typ)
	}
	switch {
	case param == "":
		if strings.Contains(params, "filename") {
			t.Errorf("%s: Content-Disposition %q, want no file name", r.what, cd)
		}
	case strings.HasPrefix(param, "filename*="):
		if !strings.Contains(lc, strings.ToLower(param)) {
			t.Errorf("%s: Content-Disposition %q, want %s", r.what, cd, param)
		}
	default:
		name := strings.TrimPrefix(param, "filename=")
		if !strings.Contains(cd, "filename="+name) && !strings.Contains(cd, `filename="`+name+`"`) {
			t.Errorf("%s: Content-Disposition %q, want %s", r.what, cd, param)
		}
		if strings.Contains(lc, "filename*") {
			t.Errorf("%s: Content-Disposition %q: a plain token name needs no filename*", r.what, cd)
		}
	}
}
