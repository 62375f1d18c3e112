package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/httpapi"
	"github.com/mxcas/mxcas/media"
)

// TestReadyzWhileStoreOpens runs serve and asks, on the listener that
// opens before the store does: /readyz is 503 "starting", /healthz 200
// and an API request 503 M_UNKNOWN; once serving, /readyz is 200.
func TestReadyzWhileStoreOpens(t *testing.T) {
	cfg := config.Default()
	cfg.Server.Listen, cfg.Server.AdminListen, cfg.Server.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Homeservers = []config.Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"t": "@u:hs.test"}}}
	get := func(addr, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.Host = "hs.test"
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var log e2eLog
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	var starting [3]int
	var startBody string
	go func() {
		done <- serveWith(ctx, cfg, slog.New(slog.NewTextHandler(&log, nil)), serveHooks{
			accepting: func(addr string) { // before the store opens
				starting[0], startBody = get(addr, "/readyz")
				starting[1], _ = get(addr, "/healthz")
				starting[2], _ = get(addr, "/_matrix/client/v1/media/config")
			},
			ready: func(addr string) { ready <- addr },
		})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, &log)
	}
	if starting != [3]int{503, 200, 503} || startBody != "starting\n" {
		t.Errorf("while the store opens: /readyz, /healthz, config = %v (readyz %q), want [503 200 503] \"starting\"", starting, startBody)
	}
	if status, body := get(addr, "/readyz"); status != http.StatusOK || body != "ready\n" {
		t.Errorf("serving: /readyz %d %q, want 200 ready", status, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v\n%s", err, &log)
	}
}

// TestGateStopping checks that /readyz is 503 once the stop signal came,
// while other requests are still served.
func TestGateStopping(t *testing.T) {
	var g gate
	g.stop()
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "starting") {
		t.Errorf("before open: %d %q", rec.Code, rec.Body)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Dir: t.TempDir(), Create: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	api, err := httpapi.New(httpapi.Options{Store: st, Logger: quiet, Homeservers: []httpapi.Homeserver{{Name: "example.com", ClientAPI: "http://127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	g.open(api, st)
	rec = httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "shutting down\n" {
		t.Errorf("stopping: /readyz %d %q, want 503 shutting down", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("stopping: /healthz %d %q, want 200 (requests are still served)", rec.Code, rec.Body)
	}
}
