package main

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/matrix"
)

// TestQuarantineE2E: with the real server, media quarantined by ID and by
// content is 404 M_NOT_FOUND on all six serving paths (client, legacy and
// signed federation download and thumbnail), lifting either restores them,
// a re-upload of quarantined content is 403 and stores nothing, and an
// admin of b.test has no say over a.test's media.
func TestQuarantineE2E(t *testing.T) {
	s, keyB := startFederatedE2E(t, withAdmins)
	png, err := os.ReadFile("../../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	id := s.upload(t, hostA, bobToken, "pic.png", "image/png", png)

	const thumb = "?width=32&height=32&method=crop"
	paths := []string{
		"/_matrix/client/v1/media/download/a.test/" + id,
		"/_matrix/client/v1/media/thumbnail/a.test/" + id + thumb,
		"/_matrix/media/v3/download/a.test/" + id,
		"/_matrix/media/v3/thumbnail/a.test/" + id + thumb,
		"/_matrix/federation/v1/media/download/" + id,
		"/_matrix/federation/v1/media/thumbnail/" + id + thumb,
	}
	read := func(path string) *e2eResp {
		t.Helper()
		if !strings.HasPrefix(path, "/_matrix/federation/") {
			return s.do(t, http.MethodGet, hostA, path, bobToken, nil, nil)
		}
		auth, err := matrix.SignRequest(http.MethodGet, path, hostB, hostA, nil, keyB)
		if err != nil {
			t.Fatal(err)
		}
		return s.do(t, http.MethodGet, hostA, path, "", nil, map[string]string{"Authorization": auth})
	}
	served := func(want bool) {
		t.Helper()
		for _, p := range paths {
			r := read(p)
			if want {
				wantStatus(t, r, http.StatusOK)
			} else {
				wantError(t, r, http.StatusNotFound, "M_NOT_FOUND")
			}
		}
	}
	admin := func(method, path, token string, status int) {
		t.Helper()
		wantStatus(t, s.do(t, method, hostA, path, token, []byte("{}"), nil), status)
	}
	served(true)

	// By ID.
	admin(http.MethodPost, "/_synapse/admin/v1/media/quarantine/a.test/"+id, aliceToken, http.StatusOK)
	served(false)
	admin(http.MethodPost, "/_synapse/admin/v1/media/unquarantine/a.test/"+id, aliceToken, http.StatusOK)
	served(true)

	// Not by a user, nor by b.test's admin, from either Host.
	admin(http.MethodPost, "/_mxcas/admin/v1/quarantine/content/a.test/"+id, bobToken, http.StatusForbidden)
	wantError(t, s.do(t, http.MethodPost, hostB, "/_mxcas/admin/v1/quarantine/content/a.test/"+id, carolToken, nil, nil),
		http.StatusForbidden, "M_FORBIDDEN")
	served(true)

	// By content.
	admin(http.MethodPost, "/_mxcas/admin/v1/quarantine/content/a.test/"+id, aliceToken, http.StatusOK)
	served(false)
	wantError(t, s.do(t, http.MethodPost, hostA, "/_matrix/media/v3/upload", bobToken, png, nil), http.StatusForbidden, "M_FORBIDDEN")
	// b.test is not affected: its users may upload the same content.
	s.upload(t, hostB, carolToken, "pic.png", "image/png", png)
	admin(http.MethodDelete, "/_mxcas/admin/v1/quarantine/content/a.test/"+id, aliceToken, http.StatusOK)
	served(true)
}

// mustKey is a new signing key with ID version v.
func mustKey(t *testing.T, v string) matrix.SigningKey {
	t.Helper()
	k, err := matrix.GenerateSigningKey(v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
