package httpapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

const (
	userMediaPath = "/_synapse/admin/v1/users/@alice:hs.test/media"
	statsPath     = "/_synapse/admin/v1/statistics/users/media"
)

func TestAdminUsageAuth(t *testing.T) {
	at := newAdminTest(t)
	at.uploadAs(t, "alice", "a.txt", "text/plain", "keep")
	endpoints := []struct{ method, path string }{
		{"GET", userMediaPath},
		{"DELETE", userMediaPath},
		{"GET", statsPath},
		{"GET", "/_mxcas/admin/v1/usage"},
		{"GET", "/_mxcas/admin/v1/usage/users/@alice:hs.test"},
	}
	for _, e := range endpoints {
		wantMatrixError(t, at.hs(t, e.method, e.path, ""), 401, "M_MISSING_TOKEN", "")
		wantMatrixError(t, at.hs(t, e.method, e.path, "alice"), 403, "M_FORBIDDEN", "")
		// An admin of other.test, known to hs.test, is no admin of it.
		wantMatrixError(t, at.hs(t, e.method, e.path, "oadmin"), 403, "M_FORBIDDEN", "")
	}
	// Nothing was deleted by the refused calls.
	var list struct{ Total int }
	at.getJSON(t, "GET", userMediaPath, "admin", &list)
	if list.Total != 1 {
		t.Fatalf("after refused calls alice has %d media, want 1", list.Total)
	}
	for _, e := range endpoints {
		if a := at.hs(t, e.method, e.path, "admin"); a.status != 200 {
			t.Errorf("%s %s as admin: %d %s", e.method, e.path, a.status, a.body)
		}
	}
	// The user-scoped calls check the user.
	for _, p := range []string{"/_synapse/admin/v1/users/%s/media", "/_mxcas/admin/v1/usage/users/%s"} {
		for _, m := range []string{"GET", "DELETE"} {
			if m == "DELETE" && strings.HasPrefix(p, "/_mxcas") {
				continue
			}
			forUser := func(user string) string { return strings.Replace(p, "%s", user, 1) }
			wantMatrixError(t, at.hs(t, m, forUser("@bob:other.test"), "admin"), 403, "M_FORBIDDEN", "")
			wantMatrixError(t, at.hs(t, m, forUser("@bob:far.test"), "admin"), 400, "M_UNKNOWN", "")
			wantMatrixError(t, at.hs(t, m, forUser("bob"), "admin"), 400, "M_INVALID_PARAM", "")
		}
	}
}

// adminList is a paginated answer: the user media list ("media") or the
// users' media statistics ("users").
type adminList struct {
	Media     []map[string]any `json:"media"`
	Users     []map[string]any `json:"users"`
	NextToken *int64           `json:"next_token"`
	Total     int64            `json:"total"`
}

// ids are the media IDs or user IDs listed, in order.
func (l adminList) ids() []string {
	var out []string
	for _, m := range l.Media {
		out = append(out, m["media_id"].(string))
	}
	for _, u := range l.Users {
		out = append(out, u["user_id"].(string))
	}
	return out
}

func TestAdminListUserMedia(t *testing.T) {
	at := newAdminTest(t)
	first := at.uploadAs(t, "alice", "one.png", "image/png", "1111111111")
	second := at.uploadAs(t, "alice", "", "text/plain", "22")
	third := at.uploadAs(t, "alice", "three", "application/pdf", "333333")
	at.uploadAs(t, "bob", "bobs", "text/plain", "bob")

	var l adminList
	at.getJSON(t, "GET", userMediaPath, "admin", &l)
	if got, want := l.ids(), []string{third, second, first}; !slices.Equal(got, want) || l.Total != 3 || l.NextToken != nil {
		t.Errorf("default list: %v total %d next %v; want %v (newest first), 3, no next_token", got, l.Total, l.NextToken, want)
	}
	wantKeys := []string{"authenticated", "created_ts", "last_access_ts", "media_id", "media_length", "media_type",
		"quarantined_by", "safe_from_quarantine", "upload_name", "url_cache", "user_id"}
	var keys []string
	for k := range l.Media[2] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("fields %v, want %v", keys, wantKeys)
	}
	m := l.Media[2]
	if m["created_ts"] != float64(1_700_000_001_000) || m["last_access_ts"] != nil || m["media_length"] != float64(10) ||
		m["media_type"] != "image/png" || m["quarantined_by"] != nil || m["safe_from_quarantine"] != false ||
		m["upload_name"] != "one.png" || m["user_id"] != "@alice:hs.test" || m["url_cache"] != nil {
		t.Errorf("first media: %v", m)
	}
	if l.Media[1]["upload_name"] != nil {
		t.Errorf("no file name: upload_name = %v, want null", l.Media[1]["upload_name"])
	}

	pages := []struct {
		query string
		want  []string
		next  *int64
	}{
		{"?limit=2", []string{third, second}, ptr(2)},
		{"?from=2&limit=2", []string{first}, nil},
		{"?from=1&limit=1", []string{second}, ptr(2)},
		{"?limit=3", []string{third, second, first}, nil}, // from+limit == total: no next_token
		{"?from=5", nil, nil},
		{"?limit=0", nil, ptr(0)},
		{"?order_by=created_ts", []string{first, second, third}, nil}, // dir defaults to f once either is given
		{"?dir=b", []string{third, second, first}, nil},
		{"?dir=f", []string{first, second, third}, nil},
		{"?order_by=media_length&dir=b", []string{first, third, second}, nil},
		{"?order_by=media_type", []string{third, first, second}, nil},
		{"?order_by=upload_name", []string{first, third, second}, nil}, // NULL last
	}
	for _, p := range pages {
		var l adminList
		at.getJSON(t, "GET", userMediaPath+p.query, "admin", &l)
		if got := l.ids(); !slices.Equal(got, p.want) || l.Total != 3 || !samePtr(l.NextToken, p.next) {
			t.Errorf("%s: %v total %d next %v; want %v, 3, %v", p.query, got, l.Total, show(l.NextToken), p.want, show(p.next))
		}
	}

	for _, q := range []string{"?from=-1", "?limit=-1", "?from=x", "?limit=1.5", "?order_by=size", "?dir=up", "?order_by=media_id&dir=B"} {
		wantMatrixError(t, at.hs(t, "GET", userMediaPath+q, "admin"), 400, "M_INVALID_PARAM", "")
	}

	// A user with no media: an empty list (mxcas knows no users to 404).
	var empty adminList
	at.getJSON(t, "GET", "/_synapse/admin/v1/users/@nobody:hs.test/media", "admin", &empty)
	if empty.Media == nil || len(empty.Media) != 0 || empty.Total != 0 || empty.NextToken != nil {
		t.Errorf("no media: %+v", empty)
	}
	if a := at.hs(t, "GET", "/_synapse/admin/v1/users/@nobody:hs.test/media", "admin"); !strings.Contains(a.body, `"media":[]`) {
		t.Errorf("no media: body %s, want \"media\":[]", a.body)
	}
}

func TestAdminDeleteUserMedia(t *testing.T) {
	at := newAdminTest(t)
	first := at.uploadAs(t, "alice", "", "text/plain", "one")
	second := at.uploadAs(t, "alice", "", "text/plain", "two")
	third := at.uploadAs(t, "alice", "", "text/plain", "three")
	bobs := at.uploadAs(t, "bob", "", "text/plain", "one") // the same bytes as alice's first

	for _, q := range []string{"?from=-1", "?limit=x", "?order_by=nope", "?dir=x"} {
		wantMatrixError(t, at.hs(t, "DELETE", userMediaPath+q, "admin"), 400, "M_INVALID_PARAM", "")
	}
	var d struct {
		DeletedMedia []string `json:"deleted_media"`
		Total        int      `json:"total"`
		NextToken    *int64   `json:"next_token"`
	}
	at.getJSON(t, "DELETE", userMediaPath+"?limit=2", "admin", &d)
	if !slices.Equal(d.DeletedMedia, []string{third, second}) || d.Total != 2 || d.NextToken != nil {
		t.Errorf("delete newest two: %+v, want [%s %s] total 2, no next_token", d, third, second)
	}
	var l adminList
	at.getJSON(t, "GET", userMediaPath, "admin", &l)
	if got := l.ids(); !slices.Equal(got, []string{first}) || l.Total != 1 {
		t.Errorf("after delete: %v total %d", got, l.Total)
	}
	for id, status := range map[string]int{first: 200, second: 404, third: 404, bobs: 200} {
		if a := at.hs(t, "GET", "/_matrix/client/v1/media/download/hs.test/"+id, "alice"); a.status != status {
			t.Errorf("download %s: %d, want %d", id, a.status, status)
		}
	}
	at.getJSON(t, "DELETE", userMediaPath+"?order_by=media_id", "admin", &d)
	if !slices.Equal(d.DeletedMedia, []string{first}) || d.Total != 1 {
		t.Errorf("delete the rest: %+v", d)
	}
	if a := at.hs(t, "DELETE", userMediaPath, "admin"); a.body != "{\"deleted_media\":[],\"total\":0}\n" {
		t.Errorf("delete with nothing left: %s", a.body)
	}
}

func TestAdminUserMediaStats(t *testing.T) {
	at := newAdminTest(t)
	at.uploadAs(t, "alice", "", "text/plain", "12345")
	at.uploadAs(t, "bob", "", "text/plain", "1234567890")
	at.uploadAs(t, "alice", "", "text/plain", "123") // at 1_700_000_003_000
	at.uploadAs(t, "admin", "", "text/plain", "1")

	var s adminList
	at.getJSON(t, "GET", statsPath, "admin", &s)
	const a, b, adm = "@alice:hs.test", "@bob:hs.test", "@admin:hs.test"
	if got := s.ids(); !slices.Equal(got, []string{adm, a, b}) || s.Total != 3 || s.NextToken != nil {
		t.Errorf("default: %v total %d next %v", got, s.Total, show(s.NextToken))
	}
	want := map[string]any{"displayname": nil, "media_count": float64(2), "media_length": float64(8), "user_id": a}
	if len(s.Users) == 3 && !sameMap(s.Users[1], want) {
		t.Errorf("alice's row: %v, want %v", s.Users[1], want)
	}

	pages := []struct {
		query string
		want  []string
		next  *int64
	}{
		{"?limit=1", []string{adm}, ptr(1)},
		{"?from=1&limit=1", []string{a}, ptr(2)},
		{"?from=2&limit=1", []string{b}, nil},
		{"?from=3", nil, nil},
		{"?dir=b", []string{b, a, adm}, nil},
		{"?order_by=media_length&dir=b", []string{b, a, adm}, nil},
		{"?order_by=media_count", []string{adm, b, a}, nil},
		{"?order_by=displayname&dir=b", []string{adm, a, b}, nil}, // every displayname null: ties by user ID
		{"?from_ts=1700000003000", []string{adm, a}, nil},
		{"?until_ts=1700000002000", []string{a, b}, nil},
		{"?search_term=li", []string{a}, nil},
		{"?search_term=hs.test", nil, nil}, // Synapse's pattern needs a ":" after the term
	}
	for _, p := range pages {
		var s adminList
		at.getJSON(t, "GET", statsPath+p.query, "admin", &s)
		if got := s.ids(); !slices.Equal(got, p.want) || !samePtr(s.NextToken, p.next) {
			t.Errorf("%s: %v next %v; want %v, %v", p.query, got, show(s.NextToken), p.want, show(p.next))
		}
	}
	var s2 adminList
	at.getJSON(t, "GET", statsPath+"?from_ts=1700000003000", "admin", &s2)
	if s2.Total != 2 || s2.Users[1]["media_count"] != float64(1) || s2.Users[1]["media_length"] != float64(3) {
		t.Errorf("from_ts: %+v", s2)
	}

	for _, q := range []string{"?from=-1", "?limit=x", "?from_ts=-1", "?until_ts=-5", "?until_ts=0",
		"?from_ts=10&until_ts=10", "?search_term=", "?order_by=media_id", "?dir=x"} {
		wantMatrixError(t, at.hs(t, "GET", statsPath+q, "admin"), 400, "M_INVALID_PARAM", "")
	}
	// Only hs.test's users: other.test's admin sees none of them.
	if a := at.call(t, "GET", "other.test", statsPath, "oadmin", nil, false); a.status != 200 || a.body != "{\"users\":[],\"total\":0}\n" {
		t.Errorf("other.test's statistics: %d %s", a.status, a.body)
	}
}

func TestAdminUsage(t *testing.T) {
	at := newAdminTest(t)
	at.uploadAs(t, "alice", "", "text/plain", "same bytes")
	at.uploadAs(t, "alice", "", "text/plain", "same bytes")
	at.uploadAs(t, "bob", "", "text/plain", "other")

	var got map[string]any
	at.getJSON(t, "GET", "/_mxcas/admin/v1/usage", "admin", &got)
	want := map[string]any{"server_name": "hs.test", "media_count": float64(3), "logical_bytes": float64(25),
		"stored_bytes": float64(15), "dedup_ratio": float64(25) / 15, "thumbnail_count": float64(0),
		"thumbnail_bytes": float64(0),
		"remote_cache":    map[string]any{"shared": true, "media_count": float64(0), "bytes": float64(0)}}
	if !sameMap(got, want) {
		t.Errorf("usage:\n %v, want\n %v", got, want)
	}
	got = nil
	at.getJSON(t, "GET", "/_mxcas/admin/v1/usage/users/@alice:hs.test", "admin", &got)
	want = map[string]any{"user_id": "@alice:hs.test", "media_count": float64(2), "logical_bytes": float64(20),
		"stored_bytes": float64(10), "dedup_ratio": float64(2), "thumbnail_count": float64(0), "thumbnail_bytes": float64(0)}
	if !sameMap(got, want) {
		t.Errorf("alice's usage:\n %v, want\n %v", got, want)
	}
}

func ptr(n int64) *int64 { return &n }

func samePtr(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show(p *int64) any {
	if p == nil {
		return "absent"
	}
	return *p
}

func sameMap(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
