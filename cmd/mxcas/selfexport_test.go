package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mxcas/mxcas/media/mediatest"
)

// TestSelfExportServe runs `mxcas serve` with self-service export off
// (POST /_mxcas/v1/export is 404), turns it on in the file and sends
// SIGHUP: the reload applies it live, alice's export lists parts on the
// Host she asked, she downloads each with her token and the archive holds
// her media byte for byte and not bob's, which bob cannot download.
func TestSelfExportServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mxcas.toml")
	write := func(on bool) {
		t.Helper()
		text := reloadConfig(filepath.Join(dir, "data"), `"alice" = "@alice:hs.test", "bob" = "@bob:hs.test"`, 10<<20) +
			"\n[gdpr]\npart_size = 1048576\nself_service = " + map[bool]string{true: "true", false: "false"}[on] + "\n"
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(false)
	s := startServer(t, ctx, cfgPath)
	do := func(method, path, tok string, body io.Reader) (int, []byte, http.Header) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+s.addr+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "hs.test"
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b, resp.Header
	}
	alice := map[string][]byte{}
	for i, body := range [][]byte{content(1, 3<<20), content(2, 100), content(3, 40<<10)} {
		code, b, _ := do(http.MethodPost, "/_matrix/media/v3/upload", "alice", bytes.NewReader(body))
		var up struct {
			ContentURI string `json:"content_uri"`
		}
		if code != 200 || json.Unmarshal(b, &up) != nil {
			t.Fatalf("upload %d: %d %s", i, code, b)
		}
		alice[strings.TrimPrefix(up.ContentURI, "mxc://hs.test/")] = body
	}
	if code, b, _ := do(http.MethodPost, "/_matrix/media/v3/upload", "bob", strings.NewReader("bob's")); code != 200 {
		t.Fatalf("bob's upload: %d %s", code, b)
	}
	if code, b, _ := do(http.MethodPost, "/_mxcas/v1/export", "alice", nil); code != 404 || !bytes.Contains(b, []byte("M_UNRECOGNIZED")) {
		t.Fatalf("export while off: %d %s, want 404 M_UNRECOGNIZED", code, b)
	}

	write(true)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "config reloaded")
	if log := s.log.String(); !strings.Contains(log, "gdpr.self_service") || strings.Contains(log, "need a restart") {
		t.Errorf("the reload does not apply gdpr.self_service live:\n%s", log)
	}
	code, b, _ := do(http.MethodPost, "/_mxcas/v1/export", "alice", strings.NewReader("{}"))
	var ex struct {
		ExportID  string `json:"export_id"`
		ExpiresTS int64  `json:"expires_ts"`
		Media     int    `json:"media"`
		Bytes     int64  `json:"bytes"`
		Parts     []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
			URL  string `json:"url"`
		} `json:"parts"`
	}
	if code != 200 || json.Unmarshal(b, &ex) != nil || ex.Media != len(alice) || len(ex.Parts) < 2 {
		t.Fatalf("export: %d %s; want alice's %d media and a manifest", code, b, len(alice))
	}
	arch := t.TempDir()
	for _, p := range ex.Parts {
		u, err := url.Parse(p.URL)
		if err != nil || u.Host != "hs.test" || u.Path != "/_mxcas/v1/export/"+ex.ExportID+"/"+p.Name {
			t.Fatalf("part url %q", p.URL)
		}
		code, b, h := do(http.MethodGet, u.Path, "alice", nil)
		if code != 200 || int64(len(b)) != p.Size || h.Get("Content-Type") != "application/gzip" {
			t.Fatalf("GET %s: %d, %d bytes, %s; want the part's %d", u.Path, code, len(b), h.Get("Content-Type"), p.Size)
		}
		if err := os.WriteFile(filepath.Join(arch, p.Name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := do(http.MethodGet, u.Path, "bob", nil); code != 404 {
			t.Errorf("bob's GET of alice's part: %d, want 404", code)
		}
	}
	got := mediatest.ReadArchive(t, os.DirFS(arch))
	if len(got) != len(alice) {
		t.Errorf("archive holds %d media, want alice's %d", len(got), len(alice))
	}
	for id, want := range alice {
		if b := got["mxc://hs.test/"+id]; !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes in the archive, want %d", id, len(b), len(want))
		}
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit status %d:\n%s", code, s.log)
	}
}
