package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/matrix"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestFederationTwoServers runs two real mxcas processes, each serving its
// own homeserver and routed to the other: a user of B gets A's media
// through B, then again from B's cache while A is down.
func TestFederationTwoServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processBound)
	defer cancel()
	dir := t.TempDir()
	ports := map[string]int{"a": freePort(t), "b": freePort(t)}
	cfgs := map[string]string{}
	for name, other := range map[string]string{"a": "b", "b": "a"} {
		k, err := matrix.GenerateSigningKey("k" + name)
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(dir, name+".key")
		os.WriteFile(keyFile, k.MarshalFile(), 0o600)
		cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:%d"
data_dir = %q

[[homeserver]]
name = "%s.test"
signing_key = %q
static_tokens = { "tok-%s" = "@user:%s.test" }

[federation.routes]
"%s.test" = "http://127.0.0.1:%d"
`, ports[name], filepath.Join(dir, name+"-data"), name, keyFile, name, name, other, ports[other])
		p := filepath.Join(dir, name+".toml")
		os.WriteFile(p, []byte(cfg), 0o600)
		cfgs[name] = p
	}
	a := startServer(t, ctx, cfgs["a"])
	b := startServer(t, ctx, cfgs["b"])

	do := func(srv, host, method, path, token string, body io.Reader, ct string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, fmt.Sprintf("http://127.0.0.1:%d%s", ports[srv], path), body)
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, got
	}
	png, _ := os.ReadFile("../../thumbgen/testdata/video-001.png")
	code, _, body := do("a", "a.test", "POST", "/_matrix/media/v3/upload?filename=pic.png", "tok-a", strings.NewReader(string(png)), "image/png")
	if code != 200 {
		t.Fatalf("upload to A: %d %s", code, body)
	}
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(body, &up)
	id := strings.TrimPrefix(up.ContentURI, "mxc://a.test/")

	code, h, got := do("b", "b.test", "GET", "/_matrix/client/v1/media/download/a.test/"+id, "tok-b", nil, "")
	if code != 200 || string(got) != string(png) || h.Get("Content-Type") != "image/png" || !strings.Contains(h.Get("Content-Disposition"), "pic.png") {
		t.Fatalf("A's media through B: %d, %d bytes, %v\nA log:\n%s\nB log:\n%s", code, len(got), h, a.log, b.log)
	}
	code, h, _ = do("b", "b.test", "GET", "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?width=32&height=32&method=crop", "tok-b", nil, "")
	if code != 200 || h.Get("Content-Type") != "image/png" {
		t.Errorf("thumbnail of A's media through B: %d %v", code, h)
	}
	if code, _, body := do("b", "b.test", "GET", "/_matrix/client/v1/media/download/a.test/nosuchmedia", "tok-b", nil, ""); code != 404 || !strings.Contains(string(body), "M_NOT_FOUND") {
		t.Errorf("unknown media of A through B: %d %s", code, body)
	}
	code, _, doc := do("a", "a.test", "GET", "/_matrix/key/v2/server", "", nil, "")
	var kd struct {
		VerifyKeys map[string]struct{ Key string } `json:"verify_keys"`
	}
	if json.Unmarshal(doc, &kd); code != 200 || len(kd.VerifyKeys) != 1 {
		t.Errorf("A's key document: %d %s", code, doc)
	}
	if a.stop(t) != 0 {
		t.Errorf("A did not stop cleanly:\n%s", a.log)
	}
	code, _, got = do("b", "b.test", "GET", "/_matrix/client/v1/media/download/a.test/"+id, "tok-b", nil, "")
	if code != 200 || string(got) != string(png) {
		t.Errorf("cached copy with A down: %d, %d bytes", code, len(got))
	}
	b.stop(t)
}
