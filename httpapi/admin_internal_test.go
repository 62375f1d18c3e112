package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/julienschmidt/httprouter"
)

func TestMatchSegments(t *testing.T) {
	for _, c := range []struct {
		pattern, path []string
		want          httprouter.Params
		ok            bool
	}{
		{[]string{"media", ":server", ":id"}, []string{"media", "hs.test", "abc"},
			httprouter.Params{{Key: "server", Value: "hs.test"}, {Key: "id", Value: "abc"}}, true},
		{[]string{"media", "quarantine", ":server", ":id"}, []string{"media", "quarantine", "hs.test", "abc"},
			httprouter.Params{{Key: "server", Value: "hs.test"}, {Key: "id", Value: "abc"}}, true},
		{[]string{"media", ":server", ":id"}, []string{"media", "hs.test"}, nil, false},
		{[]string{"media", ":server", ":id"}, []string{"media", "hs.test", "abc", "x"}, nil, false},
		{[]string{"media", ":server", ":id"}, []string{"media", "", "abc"}, nil, false},
		{[]string{"media", "delete"}, []string{"media", "deleted"}, nil, false},
	} {
		got, ok := matchSegments(c.pattern, c.path)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("matchSegments(%q, %q) = %v, %v; want %v, %v", c.pattern, c.path, got, ok, c.want, c.ok)
		}
	}
}

func TestQueryParams(t *testing.T) {
	req := func(q string) *http.Request { return httptest.NewRequest(http.MethodGet, "/x?"+q, nil) }
	code := func(err error) string {
		var me *matrixError
		if errors.As(err, &me) {
			return me.Code
		}
		return ""
	}
	for _, c := range []struct {
		q        string
		required bool
		want     int64
		code     string
	}{
		{"", false, 7, ""},
		{"", true, 0, "M_MISSING_PARAM"},
		{"n=12", true, 12, ""},
		{"n=0", false, 0, ""},
		{"n=-1", false, 0, "M_INVALID_PARAM"},
		{"n=%2B1", false, 0, "M_INVALID_PARAM"},
		{"n=ten", false, 0, "M_INVALID_PARAM"},
		{"n=", false, 0, "M_INVALID_PARAM"},
		{"n=99999999999999999999", false, 0, "M_INVALID_PARAM"},
	} {
		got, err := queryInt(req(c.q), "n", 7, c.required)
		if got != c.want || code(err) != c.code {
			t.Errorf("queryInt(%q, required %v) = %d, %v; want %d, %s", c.q, c.required, got, err, c.want, c.code)
		}
	}
	for _, c := range []struct {
		q    string
		want bool
		code string
	}{{"", true, ""}, {"b=false", false, ""}, {"b=true", true, ""}, {"b=1", false, "M_INVALID_PARAM"}, {"b=False", false, "M_INVALID_PARAM"}} {
		got, err := queryBool(req(c.q), "b", true)
		if got != c.want || code(err) != c.code {
			t.Errorf("queryBool(%q) = %v, %v; want %v, %s", c.q, got, err, c.want, c.code)
		}
	}
	for _, c := range []struct{ q, want, code string }{{"", "f", ""}, {"dir=b", "b", ""}, {"dir=B", "", "M_INVALID_PARAM"}, {"dir=", "", "M_INVALID_PARAM"}} {
		got, err := queryEnum(req(c.q), "dir", "f", "f", "b")
		if got != c.want || code(err) != c.code {
			t.Errorf("queryEnum(%q) = %q, %v; want %q, %s", c.q, got, err, c.want, c.code)
		}
	}
}

func TestPage(t *testing.T) {
	ptr := func(n int64) *int64 { return &n }
	for _, c := range []struct {
		total, from, limit, start, end int64
		next                           *int64
	}{
		{10, 0, 100, 0, 10, nil},
		{10, 0, 3, 0, 3, ptr(3)},
		{10, 9, 3, 9, 10, nil},
		{10, 7, 3, 7, 10, nil},
		{10, 12, 3, 10, 10, nil},
		{10, 0, 0, 0, 0, ptr(0)},
		{0, 0, 10, 0, 0, nil},
	} {
		start, end, next := page(c.total, c.from, c.limit)
		if start != c.start || end != c.end || !reflect.DeepEqual(next, c.next) {
			t.Errorf("page(%d, %d, %d) = %d, %d, %v; want %d, %d, %v", c.total, c.from, c.limit, start, end, next, c.start, c.end, c.next)
		}
	}
}

func TestAdminUnknownPaths(t *testing.T) {
	srv := newTestAPI(t)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/_synapse/admin/v1/room/!r:hs.test/media"},
		{http.MethodPost, "/_synapse/admin/v1/room/!r:hs.test/media/quarantine"},
		{http.MethodPost, "/_synapse/admin/v1/quarantine_media/!r:hs.test"},
		{http.MethodGet, "/_synapse/admin/v1/nothing"},
		{http.MethodGet, "/_mxcas/admin/v1/nothing"},
	} {
		// Unknown paths are answered before the token is looked at.
		for _, tok := range []string{"", "alice"} {
			got := call(t, srv, c.method, c.path, tok, "")
			if got.status != http.StatusNotFound || !strings.Contains(got.body, `"errcode":"M_UNRECOGNIZED"`) {
				t.Errorf("%s %s (token %q) = %d %s; want 404 M_UNRECOGNIZED", c.method, c.path, tok, got.status, got.body)
			}
		}
	}
}
