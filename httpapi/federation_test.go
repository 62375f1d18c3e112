package httpapi

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// keyTable is a KeySource over fixed keys.
type keyTable map[string]ed25519.PublicKey

func (k keyTable) PublicKey(_ context.Context, server, keyID string) (ed25519.PublicKey, error) {
	if pub, ok := k[server+" "+keyID]; ok {
		return pub, nil
	}
	return nil, errors.New("unknown key")
}

func TestFederationServing(t *testing.T) {
	ours, _ := matrix.GenerateSigningKey("ours")
	origin, _ := matrix.GenerateSigningKey("o1")
	forger, _ := matrix.GenerateSigningKey("o1") // same ID, other key
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	api, err := New(Options{
		Store:       st,
		Homeservers: []Homeserver{{Name: "hs.test", StaticTokens: map[string]string{"alice": "@alice:hs.test"}, SigningKey: &ours}},
		Keys:        keyTable{"origin.test " + origin.ID: origin.Public()},
		Logger:      quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()

	png, _ := os.ReadFile("../thumbgen/testdata/video-001.png")
	up := call(t, srv, "POST", "/_matrix/media/v3/upload?filename=v.png", "alice", string(png))
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(up.body), &u)
	id := strings.TrimPrefix(u.ContentURI, "mxc://hs.test/")

	fed := func(path, auth string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Host = "hs.test"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	sign := func(path, dest string, k matrix.SigningKey) string {
		h, err := matrix.SignRequest("GET", path, "origin.test", dest, nil, k)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	t.Run("key document verifies", func(t *testing.T) {
		resp := fed("/_matrix/key/v2/server", "")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		if err := matrix.VerifyJSON(b, "hs.test", ours.ID, ours.Public()); err != nil {
			t.Errorf("key document: %v\n%s", err, b)
		}
	})
	t.Run("signed download is multipart", func(t *testing.T) {
		path := "/_matrix/federation/v1/media/download/" + id
		resp := fed(path, sign(path, "hs.test", origin))
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		meta, part, err := matrix.ReadMultipart(resp.Header.Get("Content-Type"), resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(part.Body)
		if string(meta) != "{}" || part.ContentType != "application/octet-stream" || string(body) != string(png) {
			t.Errorf("meta %s, type %q, %d bytes (want %d)", meta, part.ContentType, len(body), len(png))
		}
	})
	t.Run("signed thumbnail equals the client one", func(t *testing.T) {
		path := "/_matrix/federation/v1/media/thumbnail/" + id + "?width=32&height=32&method=crop"
		resp := fed(path, sign(path, "hs.test", origin))
		defer resp.Body.Close()
		_, part, err := matrix.ReadMultipart(resp.Header.Get("Content-Type"), resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(part.Body)
		client := call(t, srv, "GET", "/_matrix/client/v1/media/thumbnail/hs.test/"+id+"?width=32&height=32&method=crop", "alice", "")
		if part.ContentType != "image/png" || string(body) != client.body {
			t.Errorf("federation thumbnail (%q, %d bytes) differs from the client one (%d bytes)", part.ContentType, len(body), len(client.body))
		}
	})
	path := "/_matrix/federation/v1/media/download/" + id
	for name, auth := range map[string]string{
		"unsigned":          "",
		"forged signature":  sign(path, "hs.test", forger),
		"wrong destination": sign(path, "other.test", origin),
		"signed other path": sign("/_matrix/federation/v1/media/download/other", "hs.test", origin),
		"garbage header":    "X-Matrix nonsense",
	} {
		t.Run(name, func(t *testing.T) {
			resp := fed(path, auth)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || !strings.Contains(string(b), "M_UNAUTHORIZED") {
				t.Errorf("got %d %s, want 401 M_UNAUTHORIZED", resp.StatusCode, b)
			}
		})
	}
	t.Run("unknown media", func(t *testing.T) {
		p := "/_matrix/federation/v1/media/download/nosuchmedia"
		resp := fed(p, sign(p, "hs.test", origin))
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("got %d, want 404", resp.StatusCode)
		}
	})
}
