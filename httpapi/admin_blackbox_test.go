package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// lineLog hands the log lines written to it to lines, so a test waits
// for a line rather than for time; lines past its buffer are dropped.
type lineLog struct{ lines chan string }

func (l lineLog) Write(p []byte) (int, error) {
	select {
	case l.lines <- string(p):
	default:
	}
	return len(p), nil
}

// newBlackboxAdmin serves hs.test, whose admin is @root (token "root";
// "alice" is a user), over a fresh store, logging into the returned
// channel.
func newBlackboxAdmin(t *testing.T) (*httptest.Server, <-chan string) {
	t.Helper()
	log := lineLog{make(chan string, 64)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet,
		Local: func(s string) bool { return s == "hs.test" }})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{
		Store: st,
		Homeservers: []Homeserver{{Name: "hs.test", Admins: []string{"@root:hs.test"},
			StaticTokens: map[string]string{"root": "@root:hs.test", "alice": "@alice:hs.test"}}},
		Logger: slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv, log.lines
}

// TestAdminHeadAnswersAsGet: HEAD on an admin GET endpoint is answered as
// GET (status and headers, no body), as Synapse treats HEAD; a path with
// no GET is still 405.
func TestAdminHeadAnswersAsGet(t *testing.T) {
	srv, _ := newBlackboxAdmin(t)
	up := call(t, srv, http.MethodPost, "/_matrix/media/v3/upload", "root", "hi")
	id := up.body[strings.Index(up.body, "hs.test/")+len("hs.test/") : strings.LastIndex(up.body, `"`)]
	for _, path := range []string{
		"/_synapse/admin/v1/media/hs.test/" + id,
		"/_synapse/admin/v1/users/@alice:hs.test/media",
		"/_synapse/admin/v1/statistics/users/media",
		"/_mxcas/admin/v1/usage",
	} {
		get := call(t, srv, http.MethodGet, path, "root", "")
		head := call(t, srv, http.MethodHead, path, "root", "")
		if get.status != 200 || head.status != 200 || head.body != "" ||
			head.header.Get("Content-Type") != get.header.Get("Content-Type") {
			t.Errorf("%s: GET %d %q, HEAD %d %q %q; want HEAD 200 as GET, no body", path,
				get.status, get.header.Get("Content-Type"), head.status, head.header.Get("Content-Type"), head.body)
		}
	}
	if a := call(t, srv, http.MethodHead, "/_synapse/admin/v1/media/hs.test/"+id, "", ""); a.status != 401 {
		t.Errorf("HEAD without a token: %d, want 401", a.status)
	}
	if a := call(t, srv, http.MethodHead, "/_synapse/admin/v1/purge_media_cache", "root", ""); a.status != 405 {
		t.Errorf("HEAD purge_media_cache: %d, want 405", a.status)
	}
}

// TestAdminAuditHidesAccessToken: an admin authenticating with the
// access_token query parameter (as curl scripts do) does not get the
// token written to the audit log; the other parameters are.
func TestAdminAuditHidesAccessToken(t *testing.T) {
	srv, lines := newBlackboxAdmin(t)
	a := call(t, srv, http.MethodGet, "/_synapse/admin/v1/users/@alice:hs.test/media?limit=5&access_token=root", "", "")
	if a.status != 200 {
		t.Fatalf("list with access_token: %d %s", a.status, a.body)
	}
	for line := range lines {
		if !strings.Contains(line, `msg="admin action"`) {
			continue
		}
		if strings.Contains(line, "access_token") || !strings.Contains(line, "limit=5") {
			t.Errorf("audit line %q: want limit=5 and no access_token", line)
		}
		break
	}
}
