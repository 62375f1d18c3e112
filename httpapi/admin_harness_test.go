package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// The admin tests' harness: one API over a real store on disk, served over
// loopback, for every admin test.

// remoteFiles is an origin server's media, served to the store's fetches.
type remoteFiles map[string][]byte

func (f remoteFiles) Fetch(_ context.Context, m matrix.MXC) (media.RemoteMedia, error) {
	b, ok := f[m.String()]
	if !ok {
		return media.RemoteMedia{}, fmt.Errorf("%w: remote 404", media.ErrNotFound)
	}
	return media.RemoteMedia{Body: io.NopCloser(bytes.NewReader(b)), ContentType: "image/png", UploadName: "r.png", Size: int64(len(b))}, nil
}

// adminTest is an API serving two homeservers from one store: hs.test,
// whose admin is @admin:hs.test and whose users are alice and bob, and
// other.test, whose admin @oadmin:other.test also holds a token hs.test
// knows (tokens are the users' local parts). Remote media comes from
// remote (far.test's, say); federation requests are signed by
// origin.test's key origin. The store's clock clk moves only when a test
// advances it; the API's log records go to log.
type adminTest struct {
	srv    *httptest.Server
	st     *media.Store
	clk    *testkit.Clock
	log    *logRecorder
	origin matrix.SigningKey
	remote remoteFiles
}

// adminEpoch is where the admin tests' clock starts.
var adminEpoch = time.UnixMilli(1_700_000_000_000)

// newAdminTest builds the harness; tweaks change the API's options first.
func newAdminTest(t *testing.T, tweaks ...func(*Options)) *adminTest {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	at := &adminTest{remote: remoteFiles{}, clk: testkit.NewClock(adminEpoch), log: newLogRecorder()}
	at.origin, _ = matrix.GenerateSigningKey("o1")
	ours, _ := matrix.GenerateSigningKey("ours")
	st, err := media.Open(media.Options{Create: true, Dir: t.TempDir(), Logger: quiet, Now: at.clk.Now,
		Local:  func(s string) bool { return s == "hs.test" || s == "other.test" },
		Remote: media.RemoteOptions{Fetcher: at.remote}})
	if err != nil {
		t.Fatal(err)
	}
	at.st = st
	opts := Options{
		Store: st,
		Homeservers: []Homeserver{
			{Name: "hs.test", Admins: []string{"@admin:hs.test"}, SigningKey: &ours, StaticTokens: map[string]string{
				"admin": "@admin:hs.test", "alice": "@alice:hs.test", "bob": "@bob:hs.test", "oadmin": "@oadmin:other.test"}},
			{Name: "other.test", Admins: []string{"@oadmin:other.test"}, StaticTokens: map[string]string{
				"oadmin": "@oadmin:other.test"}},
		},
		Keys:   keyTable{"origin.test " + at.origin.ID: at.origin.Public()},
		Logger: slog.New(at.log),
	}
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	api, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	at.srv = httptest.NewServer(api)
	t.Cleanup(func() { at.srv.Close(); st.Close() })
	return at
}

// call is a request to Host host with token tok (none when empty), and
// X-Matrix signed by origin.test when fed.
func (at *adminTest) call(t *testing.T, method, host, path, tok string, body []byte, fed bool) answer {
	t.Helper()
	req, err := http.NewRequest(method, at.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if fed {
		h, err := matrix.SignRequest(method, path, "origin.test", host, nil, at.origin)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", h)
	}
	return roundTrip(t, at.srv, req)
}

// hs is call on hs.test as tok, with no body.
func (at *adminTest) hs(t *testing.T, method, path, tok string) answer {
	t.Helper()
	return at.call(t, method, "hs.test", path, tok, nil, false)
}

// upload stores body as alice's on hs.test and returns its media ID.
func (at *adminTest) upload(t *testing.T, body []byte) string {
	t.Helper()
	return at.uploadAs(t, "alice", "", "", string(body))
}

// uploadAs stores body as tok's media on hs.test, a second after the
// last, with file name name and Content-Type ctype when not empty, and
// returns its media ID.
func (at *adminTest) uploadAs(t *testing.T, tok, name, ctype, body string) string {
	t.Helper()
	at.clk.Advance(time.Second)
	path := "/_matrix/media/v3/upload"
	if name != "" {
		path += "?filename=" + name
	}
	req, err := http.NewRequest("POST", at.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "hs.test"
	req.Header.Set("Authorization", "Bearer "+tok)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	a := roundTrip(t, at.srv, req)
	id, ok := strings.CutPrefix(contentURI(a), "mxc://hs.test/")
	if a.status != 200 || !ok {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	return id
}

// contentURI is the content_uri of an upload's or a create's answer.
func contentURI(a answer) string {
	var u struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal([]byte(a.body), &u)
	return u.ContentURI
}

// store puts size bytes as media id of server, uploaded by alice of that
// server, straight into the store.
func (at *adminTest) store(t *testing.T, server, id string, size int) {
	t.Helper()
	if _, err := at.st.Upload(context.Background(), media.UploadInfo{MXC: mustMXC(t, server, id), Uploader: "@alice:" + server, Size: int64(size)},
		bytes.NewReader(bytes.Repeat([]byte{'x'}, size))); err != nil {
		t.Fatal(err)
	}
}

// getJSON calls path as tok on hs.test, wants a 200 and decodes the body.
func (at *adminTest) getJSON(t *testing.T, method, path, tok string, v any) {
	t.Helper()
	a := at.hs(t, method, path, tok)
	if a.status != 200 {
		t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, a.body)
	}
}

// wantOK wants a 200 whose body is the JSON value want, whatever its
// spacing and key order.
func wantOK(t *testing.T, a answer, want string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Errorf("%s: %d %s, want 200", a.what, a.status, a.body)
		return
	}
	var got, w any
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatalf("%s: %s: %v", a.what, a.body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("test's body %s: %v", want, err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s: body %s, want %s", a.what, gb, wb)
	}
}

// mustMXC is matrix.NewMXC for an ID the test knows is valid.
func mustMXC(t *testing.T, server, id string) matrix.MXC {
	t.Helper()
	m, err := matrix.NewMXC(server, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// logRecorder is a slog.Handler that keeps every record, for tests of
// what is logged. Safe for concurrent use.
type logRecorder struct {
	attrs []slog.Attr // from WithAttrs
	sink  *logSink
}

type logSink struct {
	mu   sync.Mutex
	recs []slog.Record
}

func newLogRecorder() *logRecorder { return &logRecorder{sink: new(logSink)} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(l.attrs...)
	l.sink.mu.Lock()
	defer l.sink.mu.Unlock()
	l.sink.recs = append(l.sink.recs, r)
	return nil
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{attrs: append(append([]slog.Attr(nil), l.attrs...), as...), sink: l.sink}
}

// WithGroup is not used by the API; it keeps attributes ungrouped.
func (l *logRecorder) WithGroup(string) slog.Handler { return l }

// lines are the records so far with message msg, in order, each as its
// attributes (values as strings). A request's records are all there once
// its handler has returned: close the server first to wait for that.
func (l *logRecorder) lines(msg string) []map[string]string {
	l.sink.mu.Lock()
	defer l.sink.mu.Unlock()
	var out []map[string]string
	for _, r := range l.sink.recs {
		if r.Message != msg {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}
