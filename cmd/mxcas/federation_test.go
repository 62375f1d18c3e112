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
	keys := map[string]matrix.SigningKey{}
	for name, other := range map[string]string{"a": "b", "b": "a"} {
		k, err := matrix.GenerateSigningKey("k" + name)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
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
	// B serves its own media over federation only to correctly signed
	// requests; B checks A's signature with A's key, fetched from A.
	code, _, body = do("b", "b.test", "POST", "/_matrix/media/v3/upload", "tok-b", strings.NewReader("b's media"), "text/plain")
	if code != 200 {
		t.Fatalf("upload to B: %d %s", code, body)
	}
	json.Unmarshal(body, &up)
	bid := strings.TrimPrefix(up.ContentURI, "mxc://b.test/")
	fedPath := "/_matrix/federation/v1/media/download/" + bid
	forger, _ := matrix.GenerateSigningKey("ka")
	signed := func(dest string, k matrix.SigningKey) string {
		h, err := matrix.SignRequest("GET", fedPath, "a.test", dest, nil, k)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	fed := func(auth string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", ports["b"], fedPath), nil)
		req.Host = "b.test"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		_, part, err := matrix.ReadMultipart(resp.Header.Get("Content-Type"), resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part.Body)
		return 200, string(b)
	}
	if code, got := fed(signed("b.test", keys["a"])); code != 200 || got != "b's media" {
		t.Errorf("signed federation download: %d %q\nB log:\n%s", code, got, b.log)
	}
	for name, auth := range map[string]string{
		"unsigned": "", "forged": signed("b.test", forger), "wrong destination": signed("c.test", keys["a"]),
	} {
		if code, body := fed(auth); code != 401 {
			t.Errorf("%s federation request: %d %s, want 401", name, code, body)
		}
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
