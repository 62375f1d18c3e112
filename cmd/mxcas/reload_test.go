package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mxcas/mxcas/config"
)

// reloadConfig is the file of TestReloadOnSIGHUP: one homeserver whose
// tokens are static, and a given upload limit (a key that needs a
// restart).
func reloadConfig(dataDir, tokens string, maxUpload int) string {
	return fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
data_dir = %q
max_upload_bytes = %d

[[homeserver]]
name = "hs.test"
static_tokens = { %s }
`, dataDir, maxUpload, tokens)
}

// TestReloadOnSIGHUP runs `mxcas serve`, edits its file and sends SIGHUP:
// a new static token works and the removed one is refused; a changed
// max_upload_bytes is logged as needing a restart and not applied; a file
// with an error is refused (logged) and the server keeps serving with
// what it had; a keep-alive connection opened before the reloads still
// serves after them.
func TestReloadOnSIGHUP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mxcas.toml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConfig(filepath.Join(dir, "data"), `"old-token" = "@old:hs.test"`, 1000))
	s := startServer(t, ctx, cfgPath)
	hup := func() {
		t.Helper()
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	// One client, one connection: it must be reused across the reloads.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	var conns []bool // per request: was the connection reused
	get := func(path, token string) (int, string) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { conns = append(conns, i.Reused) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, "http://"+s.addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "hs.test"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	const cfgEndpoint = "/_matrix/client/v1/media/config"
	uploadSize := func(token string) int64 {
		t.Helper()
		status, body := get(cfgEndpoint, token)
		var c struct {
			Size int64 `json:"m.upload.size"`
		}
		if err := json.Unmarshal([]byte(body), &c); status != http.StatusOK || err != nil {
			t.Fatalf("GET %s with %s: %d %s", cfgEndpoint, token, status, body)
		}
		return c.Size
	}
	wantRefused := func(token string) {
		t.Helper()
		if status, body := get(cfgEndpoint, token); status != http.StatusUnauthorized || !strings.Contains(body, "M_UNKNOWN_TOKEN") {
			t.Errorf("GET %s with %s: %d %s, want 401 M_UNKNOWN_TOKEN", cfgEndpoint, token, status, body)
		}
	}

	if got := uploadSize("old-token"); got != 1000 {
		t.Fatalf("m.upload.size %d, want 1000", got)
	}
	wantRefused("new-token")
	if status, body := get("/readyz", ""); status != http.StatusOK {
		t.Errorf("/readyz: %d %s, want 200 while serving", status, body)
	}

	// reloadWith rewrites the file and reloads; the upload limit stays
	// 1000 whatever the file says.
	reloadWith := func(tokens string, maxUpload int, logged string) {
		t.Helper()
		write(reloadConfig(filepath.Join(dir, "data"), tokens, maxUpload))
		hup()
		waitLog(t, s, logged)
		if got := uploadSize("new-token"); got != 1000 {
			t.Errorf("after %q: m.upload.size %d, want 1000 (max_upload_bytes needs a restart)", logged, got)
		}
	}

	reloadWith(`"new-token" = "@new:hs.test"`, 2000, "config reloaded")
	wantRefused("old-token")
	if log := s.log.String(); !strings.Contains(log, "need a restart") || !strings.Contains(log, "server.max_upload_bytes") {
		t.Errorf("the changed max_upload_bytes is not logged as needing a restart:\n%s", log)
	}

	reloadWith(`"bad-token" = "not a user"`, 1000, "config reload refused")
	wantRefused("bad-token")
	if log := s.log.String(); !strings.Contains(log, "static_tokens") {
		t.Errorf("the refusal does not name the bad key:\n%s", log)
	}

	if i := slices.Index(conns[1:], false); i >= 0 {
		t.Errorf("request %d opened a new connection (reused: %v)", i+2, conns)
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit status %d:\n%s", code, s.log)
	}
}

// TestReloadPlan checks which keys a reload changes live and which it
// keeps for a restart, and that the running configuration after it keeps
// the restart-only values.
func TestReloadPlan(t *testing.T) {
	cur := config.Default()
	cur.Homeservers = []config.Homeserver{{Name: "a.test", ClientAPI: "http://127.0.0.1:1", Admins: []string{"@x:a.test"}}}
	next := cur
	next.Homeservers = []config.Homeserver{
		{Name: "A.test", ClientAPI: "http://127.0.0.1:2", Admins: []string{"@y:a.test"}, StaticTokens: map[string]string{"t": "@t:a.test"}},
		{Name: "added.test", ClientAPI: "http://127.0.0.1:3"},
	}
	next.Server.Listen = "127.0.0.1:9999"
	next.Server.DataDir = "elsewhere"
	next.Server.LogLevel = "debug"
	next.Federation.Routes = map[string]string{"r.test": "http://127.0.0.1:4"}
	next.Thumbnails.Sizes = []config.ThumbnailSize{{Width: 10, Height: 10, Method: "crop"}}
	next.URLPreviews.DeniedDomains = []string{"*.bad.test"}
	next.URLPreviews.CacheDuration = config.Duration{Duration: 2 * next.URLPreviews.CacheDuration.Duration}

	applied := liveConfig(cur, next)
	changed, restart := reloadPlan(cur, next, applied)
	wantChanged := []string{"server.log_level", "thumbnails.sizes[0].width", "thumbnails.sizes", "homeserver[0].client_api",
		"homeserver[0].admins", "homeserver[0].static_tokens", "federation.routes", "url_previews.denied_domains"}
	wantRestart := []string{"server.listen", "server.data_dir", "homeserver", "url_previews.cache_duration"}
	slices.Sort(changed)
	slices.Sort(restart)
	slices.Sort(wantRestart)
	// thumbnails.sizes changed length: one change, not per element.
	wantChanged = slices.DeleteFunc(wantChanged, func(k string) bool { return k == "thumbnails.sizes[0].width" })
	slices.Sort(wantChanged)
	if !slices.Equal(changed, wantChanged) {
		t.Errorf("changed live %q, want %q", changed, wantChanged)
	}
	if !slices.Equal(restart, wantRestart) {
		t.Errorf("need a restart %q, want %q", restart, wantRestart)
	}
	if applied.Server.Listen != cur.Server.Listen || applied.Server.DataDir != cur.Server.DataDir ||
		len(applied.Homeservers) != 1 || applied.Homeservers[0].Name != "a.test" {
		t.Errorf("restart-only values changed in the running configuration: %+v %+v", applied.Server, applied.Homeservers)
	}
	if applied.URLPreviews.CacheDuration != cur.URLPreviews.CacheDuration {
		t.Errorf("url_previews.cache_duration applied live")
	}

	// The same file again: nothing changes, the restart keys are still
	// named (they still differ from what runs).
	changed, restart = reloadPlan(applied, next, liveConfig(applied, next))
	if len(changed) != 0 || len(restart) != len(wantRestart) {
		t.Errorf("second reload of the same file: changed %q, restart %q", changed, restart)
	}
}

// waitLog waits for a line of s's log holding msg.
func waitLog(t *testing.T, s *server, msg string) {
	t.Helper()
	if !s.log.waitFor(processBound, msg) {
		t.Fatalf("no %q in the log after %v:\n%s", msg, processBound, s.log)
	}
}
