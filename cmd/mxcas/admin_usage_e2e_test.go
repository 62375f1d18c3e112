package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
)

// uniqueChunkBytes is the size of the unique chunks of contents, cut as a
// new store cuts them.
func uniqueChunkBytes(t *testing.T, contents ...[]byte) int64 {
	t.Helper()
	seen := make(map[cas.Hash]bool)
	var n int64
	for _, c := range contents {
		err := chunker.Split(c, chunker.DefaultParams, func(b []byte) error {
			if h := cas.Sum(b); !seen[h] {
				seen[h] = true
				n += int64(len(b))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestE2EAdminUsage: the usage figures of the real server match what was
// uploaded, the same bytes and shared chunks stored once; each homeserver
// sees its own; the user media list and statistics agree.
func TestE2EAdminUsage(t *testing.T) {
	s := startE2E(t, withAdmins)
	a := content(1, 3<<20)
	b := append(append([]byte(nil), a[:2<<20]...), content(2, 1<<20)...) // shares a's first chunks
	c := content(3, 100<<10)
	d := content(4, 50<<10)
	s.upload(t, hostA, aliceToken, "a.bin", "application/octet-stream", a)
	s.upload(t, hostA, aliceToken, "a-again.bin", "application/octet-stream", a)
	s.upload(t, hostA, aliceToken, "b.bin", "application/octet-stream", b)
	s.upload(t, hostA, bobToken, "c.bin", "application/octet-stream", c)
	s.upload(t, hostB, carolToken, "d.bin", "application/octet-stream", d)

	type usage struct {
		MediaCount     int64   `json:"media_count"`
		LogicalBytes   int64   `json:"logical_bytes"`
		StoredBytes    int64   `json:"stored_bytes"`
		DedupRatio     float64 `json:"dedup_ratio"`
		ThumbnailCount int64   `json:"thumbnail_count"`
		ThumbnailBytes int64   `json:"thumbnail_bytes"`
		RemoteCache    *struct {
			Shared     bool  `json:"shared"`
			MediaCount int64 `json:"media_count"`
			Bytes      int64 `json:"bytes"`
		} `json:"remote_cache"`
	}
	get := func(host, path, token string) usage {
		t.Helper()
		r := s.do(t, http.MethodGet, host, path, token, nil, nil)
		var u usage
		if !wantStatus(t, r, http.StatusOK) {
			t.FailNow()
		}
		if err := json.Unmarshal(r.Body, &u); err != nil {
			t.Fatalf("%s: %v", r.what, err)
		}
		return u
	}
	n := func(b []byte) int64 { return int64(len(b)) }

	gotA := get(hostA, "/_mxcas/admin/v1/usage", aliceToken)
	stored := uniqueChunkBytes(t, a, b, c)
	if stored >= n(a)+n(b)+n(c) {
		t.Fatalf("the test shares no chunks: %d unique bytes", stored)
	}
	if gotA.MediaCount != 4 || gotA.LogicalBytes != 2*n(a)+n(b)+n(c) || gotA.StoredBytes != stored ||
		gotA.DedupRatio != float64(gotA.LogicalBytes)/float64(stored) || gotA.ThumbnailCount != 0 ||
		gotA.RemoteCache == nil || !gotA.RemoteCache.Shared || gotA.RemoteCache.MediaCount != 0 {
		t.Errorf("a.test usage %+v; want 4 media, %d logical, %d stored", gotA, 2*n(a)+n(b)+n(c), stored)
	}
	gotAlice := get(hostA, "/_mxcas/admin/v1/usage/users/@alice:a.test", aliceToken)
	if want := uniqueChunkBytes(t, a, b); gotAlice.MediaCount != 3 || gotAlice.LogicalBytes != 2*n(a)+n(b) ||
		gotAlice.StoredBytes != want || gotAlice.RemoteCache != nil {
		t.Errorf("alice's usage %+v; want 3 media, %d logical, %d stored", gotAlice, 2*n(a)+n(b), want)
	}
	gotB := get(hostB, "/_mxcas/admin/v1/usage", carolToken)
	if gotB.MediaCount != 1 || gotB.LogicalBytes != n(d) || gotB.StoredBytes != uniqueChunkBytes(t, d) {
		t.Errorf("b.test usage %+v; want only carol's %d bytes", gotB, n(d))
	}

	// The auth matrix on the real server.
	wantError(t, s.do(t, http.MethodGet, hostA, "/_mxcas/admin/v1/usage", "", nil, nil), 401, "M_MISSING_TOKEN")
	wantError(t, s.do(t, http.MethodGet, hostA, "/_mxcas/admin/v1/usage", bobToken, nil, nil), 403, "M_FORBIDDEN")
	wantError(t, s.do(t, http.MethodGet, hostB, "/_mxcas/admin/v1/usage/users/@alice:a.test", carolToken, nil, nil), 403, "M_FORBIDDEN")
	wantError(t, s.do(t, http.MethodGet, hostB, "/_synapse/admin/v1/users/@alice:a.test/media", carolToken, nil, nil), 403, "M_FORBIDDEN")

	// Synapse's views of the same media.
	r := s.do(t, http.MethodGet, hostA, "/_synapse/admin/v1/users/@alice:a.test/media?limit=2", aliceToken, nil, nil)
	var list struct {
		Media []struct {
			MediaLength int64  `json:"media_length"`
			UploadName  string `json:"upload_name"`
		} `json:"media"`
		NextToken *int64 `json:"next_token"`
		Total     int64  `json:"total"`
	}
	if wantStatus(t, r, http.StatusOK) {
		json.Unmarshal(r.Body, &list)
		if list.Total != 3 || list.NextToken == nil || *list.NextToken != 2 || len(list.Media) != 2 ||
			list.Media[0].UploadName != "b.bin" || list.Media[0].MediaLength != n(b) {
			t.Errorf("alice's media: %s", r.Body)
		}
	}
	r = s.do(t, http.MethodGet, hostA, "/_synapse/admin/v1/statistics/users/media?order_by=media_length&dir=b", aliceToken, nil, nil)
	var stats struct {
		Users []struct {
			UserID      string `json:"user_id"`
			MediaCount  int64  `json:"media_count"`
			MediaLength int64  `json:"media_length"`
		} `json:"users"`
		Total int64 `json:"total"`
	}
	if wantStatus(t, r, http.StatusOK) {
		json.Unmarshal(r.Body, &stats)
		if stats.Total != 2 || len(stats.Users) != 2 || stats.Users[0].UserID != "@alice:a.test" ||
			stats.Users[0].MediaCount != 3 || stats.Users[0].MediaLength != 2*n(a)+n(b) || stats.Users[1].MediaLength != n(c) {
			t.Errorf("statistics: %s", r.Body)
		}
	}
}
