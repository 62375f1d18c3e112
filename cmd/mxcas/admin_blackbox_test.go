package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
)

// startFederatedE2E is startE2E with the legacy paths unfrozen and a
// signing key for each homeserver; b.test's key, returned for signing
// federation requests, is fetched from this very server. mutate, when not
// nil, changes the configuration last.
func startFederatedE2E(t *testing.T, mutate func(*config.Config)) (*e2eServer, matrix.SigningKey) {
	t.Helper()
	keyB := mustKey(t, "kb")
	keyFiles := map[string]string{}
	for name, k := range map[string]matrix.SigningKey{hostA: mustKey(t, "ka"), hostB: keyB} {
		keyFiles[name] = filepath.Join(t.TempDir(), name+".key")
		if err := os.WriteFile(keyFiles[name], k.MarshalFile(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	s := startE2E(t, func(c *config.Config) {
		c.Server.Listen = fmt.Sprintf("127.0.0.1:%d", port)
		c.Server.FreezeUnauthenticated = false // the legacy paths serve new media
		c.Homeservers[0].SigningKey = keyFiles[hostA]
		c.Homeservers[1].SigningKey = keyFiles[hostB]
		c.Federation.Routes = map[string]string{hostB: fmt.Sprintf("http://127.0.0.1:%d", port)}
		if mutate != nil {
			mutate(c)
		}
	})
	return s, keyB
}

// TestAdminSharedContentE2E: two media with the same content, both read
// on all six serving paths first (so their thumbnails exist). Quarantining
// one by ID, then deleting it, makes that one 404 M_NOT_FOUND on every
// path, HEAD included, while the other, sharing its object and
// thumbnails, is still served everywhere; the admin API answers HEAD as
// GET.
func TestAdminSharedContentE2E(t *testing.T) {
	s, keyB := startFederatedE2E(t, func(c *config.Config) {
		c.Homeservers[0].Admins = []string{"@bob:a.test"}
	})
	png, err := os.ReadFile("../../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	gone := s.upload(t, hostA, aliceToken, "pic.png", "image/png", png)
	kept := s.upload(t, hostA, bobToken, "pic.png", "image/png", png)

	read := func(method, id string) []*e2eResp {
		t.Helper()
		const thumb = "?width=32&height=32&method=crop"
		var rs []*e2eResp
		for _, p := range []string{
			"/_matrix/client/v1/media/download/a.test/" + id,
			"/_matrix/client/v1/media/thumbnail/a.test/" + id + thumb,
			"/_matrix/media/v3/download/a.test/" + id,
			"/_matrix/media/v3/thumbnail/a.test/" + id + thumb,
		} {
			rs = append(rs, s.do(t, method, hostA, p, aliceToken, nil, nil))
		}
		for _, p := range []string{"/_matrix/federation/v1/media/download/" + id,
			"/_matrix/federation/v1/media/thumbnail/" + id + thumb} {
			auth, err := matrix.SignRequest(method, p, hostB, hostA, nil, keyB)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, s.do(t, method, hostA, p, "", nil, map[string]string{"Authorization": auth}))
		}
		return rs
	}
	served := func(id string, want bool) {
		t.Helper()
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			for _, r := range read(method, id) {
				if want {
					wantStatus(t, r, http.StatusOK)
				} else if r.Status != http.StatusNotFound {
					t.Errorf("%s: %d, want 404", r.what, r.Status)
				} else if method == http.MethodGet {
					wantError(t, r, http.StatusNotFound, "M_NOT_FOUND")
				}
			}
		}
	}
	admin := func(method, path string, status int) *e2eResp {
		t.Helper()
		r := s.do(t, method, hostA, path, bobToken, nil, nil)
		wantStatus(t, r, status)
		return r
	}
	served(gone, true)
	served(kept, true)

	admin(http.MethodPost, "/_synapse/admin/v1/media/quarantine/a.test/"+gone, http.StatusOK)
	served(gone, false)
	served(kept, true)
	admin(http.MethodPost, "/_synapse/admin/v1/media/unquarantine/a.test/"+gone, http.StatusOK)

	if r := admin(http.MethodHead, "/_synapse/admin/v1/media/a.test/"+gone, http.StatusOK); len(r.Body) != 0 {
		t.Errorf("HEAD query media: body %q, want none", r.Body)
	}
	admin(http.MethodDelete, "/_synapse/admin/v1/media/a.test/"+gone, http.StatusOK)
	served(gone, false)
	served(kept, true)
	admin(http.MethodGet, "/_synapse/admin/v1/media/a.test/"+gone, http.StatusNotFound)
	admin(http.MethodHead, "/_synapse/admin/v1/media/a.test/"+gone, http.StatusNotFound)
	if r := admin(http.MethodGet, "/_synapse/admin/v1/users/@alice:a.test/media", http.StatusOK); !strings.Contains(string(r.Body), `"total":0`) {
		t.Errorf("alice's media after the deletion: %s", r.Body)
	}
}
