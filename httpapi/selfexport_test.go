package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
	"github.com/mxcas/mxcas/testkit"
)

// gatedChunks holds every chunk read while armed until release is
// closed, closing reached at the first: a test's way to keep an export
// in progress.
type gatedChunks struct {
	cas.Storage
	armed   atomic.Bool
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (g *gatedChunks) wait() {
	if g.armed.Load() {
		g.once.Do(func() { close(g.reached) })
		<-g.release
	}
}

func (g *gatedChunks) OpenChunk(h cas.Hash) (cas.Chunk, error) {
	g.wait()
	return g.Storage.OpenChunk(h)
}

func (g *gatedChunks) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	g.wait()
	return g.Storage.ReadChunk(h, buf)
}

// exportTest is an API over a real store on disk (chunks in a gated
// MemStore) serving hs.test over loopback, whose users (checked by a fake
// whoami, tokens are local parts) are alice, bob, the guest gus and
// @carol:other.test. The store's clock clk moves when the test says.
type exportTest struct {
	srv   *httptest.Server
	api   *API
	st    *media.Store
	dir   string
	clk   *testkit.Clock
	gate  *gatedChunks
	alice map[string][]byte // alice's media by ID
}

const exportTTL = time.Hour

func newExportTest(t *testing.T, enabled bool) *exportTest {
	t.Helper()
	whoami := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); tok {
		case "alice", "bob":
			io.WriteString(w, `{"user_id":"@`+tok+`:hs.test"}`)
		case "gus":
			io.WriteString(w, `{"user_id":"@gus:hs.test","is_guest":true}`)
		case "carol":
			io.WriteString(w, `{"user_id":"@carol:other.test"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}`)
		}
	}))
	t.Cleanup(whoami.Close)
	quiet := slog.New(slog.DiscardHandler)
	et := &exportTest{dir: t.TempDir(), clk: testkit.NewClock(time.Now()), alice: map[string][]byte{}}
	et.gate = &gatedChunks{Storage: cas.NewMemStore(et.clk.Now), reached: make(chan struct{}), release: make(chan struct{})}
	st, err := media.Open(media.Options{Create: true, Dir: et.dir, Chunks: et.gate, Logger: quiet, Now: et.clk.Now,
		Local: func(s string) bool { return s == "hs.test" }})
	if err != nil {
		t.Fatal(err)
	}
	et.st = st
	et.api, err = New(Options{Store: st, Homeservers: []Homeserver{{Name: "hs.test", ClientAPI: whoami.URL}}, Logger: quiet,
		SelfExport: SelfExport{Enabled: enabled, TTL: exportTTL, PartSize: 64 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	et.srv = httptest.NewServer(et.api)
	t.Cleanup(func() { et.srv.Close(); st.Close() })
	for i, n := range []int{10, 5000, 200 << 10, 0} {
		id := "a" + string(rune('0'+i))
		et.alice[id] = bytes.Repeat([]byte{byte(i + 1)}, n)
		et.upload(t, id, "@alice:hs.test", et.alice[id])
	}
	et.upload(t, "b0", "@bob:hs.test", []byte("bob's own"))
	return et
}

func (et *exportTest) upload(t *testing.T, id, user string, body []byte) {
	t.Helper()
	if _, err := et.st.Upload(context.Background(), media.UploadInfo{MXC: mustMXC(t, "hs.test", id), Uploader: user,
		Size: int64(len(body))}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// export is POST /_mxcas/v1/export as tok with body.
func (et *exportTest) export(t *testing.T, tok, body string) answer {
	t.Helper()
	return call(t, et.srv, http.MethodPost, exportPrefix, tok, body)
}

// exportOK exports as tok and decodes the 200 answer.
func (et *exportTest) exportOK(t *testing.T, tok, body string) exportAnswer {
	t.Helper()
	a := et.export(t, tok, body)
	var ans exportAnswer
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &ans) != nil {
		t.Fatalf("%s: %d %s, want 200 and an export", a.what, a.status, a.body)
	}
	return ans
}

// get is GET of a part's URL as tok, sent to the test server with the
// URL's host as Host.
func (et *exportTest) get(t *testing.T, partURL, tok string) answer {
	t.Helper()
	u, err := url.Parse(partURL)
	if err != nil {
		t.Fatal(err)
	}
	return callHost(t, et.srv, http.MethodGet, u.Host, u.EscapedPath(), tok, "")
}

// Off by default: both endpoints are unknown paths, whoever asks, until
// SetSelfExport turns them on.
func TestSelfExportOff(t *testing.T) {
	et := newExportTest(t, false)
	for _, tok := range []string{"alice", ""} {
		wantMatrixError(t, et.export(t, tok, ""), http.StatusNotFound, "M_UNRECOGNIZED", "not enabled")
		wantMatrixError(t, call(t, et.srv, http.MethodGet, exportPrefix+"/AAAAAAAAAAAAAAAAAAAAAA/export-part-1.tgz", tok, ""),
			http.StatusNotFound, "M_UNRECOGNIZED", "not enabled")
	}
	if _, err := os.Stat(filepath.Join(et.dir, media.ExportsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DATA/exports while off: %v, want none", err)
	}
	if err := et.api.SetSelfExport(SelfExport{Enabled: true}); err == nil {
		t.Error("SetSelfExport without a TTL succeeded")
	}
	if err := et.api.SetSelfExport(SelfExport{Enabled: true, TTL: exportTTL}); err != nil {
		t.Fatal(err)
	}
	if ans := et.exportOK(t, "alice", ""); ans.Media != len(et.alice) {
		t.Errorf("export once turned on: %d media, want %d", ans.Media, len(et.alice))
	}
}

// A user exports their media and downloads every part with their token:
// the archive holds each of their media, byte for byte, and none of
// another user's. Another user, no token, a guest or a user of another
// server get nothing; after the TTL the parts are refused and GC removes
// them.
func TestSelfExport(t *testing.T) {
	et := newExportTest(t, true)
	ans := et.exportOK(t, "alice", "")
	if ans.Media != len(et.alice) || len(ans.Parts) < 3 || len(ans.ExportID) != 22 {
		t.Fatalf("export %+v: want %d media in several parts", ans, len(et.alice))
	}
	if want := et.clk.Now().Add(exportTTL).UnixMilli(); ans.ExpiresTS != want {
		t.Errorf("expires_ts %d, want %d", ans.ExpiresTS, want)
	}
	var total int64
	for _, m := range et.alice {
		total += int64(len(m))
	}
	if ans.Bytes != total {
		t.Errorf("bytes %d, want %d", ans.Bytes, total)
	}
	arch := t.TempDir()
	for _, p := range ans.Parts {
		if want := "http://hs.test" + exportPrefix + "/" + ans.ExportID + "/" + p.Name; p.URL != want {
			t.Errorf("part url %q, want %q", p.URL, want)
		}
		a := et.get(t, p.URL, "alice")
		if a.status != http.StatusOK || int64(len(a.body)) != p.Size || a.header.Get("Content-Type") != "application/gzip" ||
			a.header.Get("Content-Disposition") != "attachment; filename="+p.Name {
			t.Fatalf("%s: %d, %d bytes, %v; want 200 with the part's %d bytes as a gzip attachment", a.what, a.status, len(a.body), a.header, p.Size)
		}
		if err := os.WriteFile(filepath.Join(arch, p.Name), []byte(a.body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := mediatest.ReadArchive(t, os.DirFS(arch))
	if len(got) != len(et.alice) {
		t.Errorf("archive holds %d media, want alice's %d", len(got), len(et.alice))
	}
	for id, want := range et.alice {
		if b := got["mxc://hs.test/"+id]; !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes in the archive, want its %d", id, len(b), len(want))
		}
	}

	// A range of a part.
	u, _ := url.Parse(ans.Parts[0].URL)
	req, _ := http.NewRequest(http.MethodGet, et.srv.URL+u.Path, nil)
	req.Host, req.Header["Authorization"], req.Header["Range"] = "hs.test", []string{"Bearer alice"}, []string{"bytes=2-9"}
	if a := roundTrip(t, et.srv, req); a.status != http.StatusPartialContent || len(a.body) != 8 {
		t.Errorf("range of a part: %d, %d bytes; want 206 with 8", a.status, len(a.body))
	}

	part := ans.Parts[0].URL
	wantMatrixError(t, et.get(t, part, "bob"), http.StatusNotFound, "M_NOT_FOUND", "")
	wantMatrixError(t, et.get(t, part, ""), http.StatusUnauthorized, "M_MISSING_TOKEN", "")
	wantMatrixError(t, et.get(t, strings.Replace(part, ans.ExportID, strings.Repeat("A", 22), 1), "alice"), http.StatusNotFound, "M_NOT_FOUND", "")
	wantMatrixError(t, et.get(t, strings.TrimSuffix(part, ans.Parts[0].Name)+media.ExportMetaName, "alice"), http.StatusNotFound, "M_NOT_FOUND", "")
	wantMatrixError(t, et.export(t, "", ""), http.StatusUnauthorized, "M_MISSING_TOKEN", "")
	wantMatrixError(t, et.export(t, "gus", ""), http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "")
	wantMatrixError(t, et.export(t, "carol", ""), http.StatusForbidden, "M_FORBIDDEN", "users of hs.test")
	wantMatrixError(t, et.export(t, "alice", "[1]"), http.StatusBadRequest, "M_NOT_JSON", "")
	if a := et.get(t, part, "alice"); a.status != http.StatusOK {
		t.Errorf("refused requests changed alice's export: %d %s", a.status, a.body)
	}

	// Bob's export, with "{}": his media only. It expires with alice's.
	bobs := et.exportOK(t, "bob", "{}")
	if bobs.Media != 1 {
		t.Errorf("bob's export: %d media, want 1", bobs.Media)
	}
	et.clk.Advance(exportTTL)
	wantMatrixError(t, et.get(t, part, "alice"), http.StatusNotFound, "M_NOT_FOUND", "")
	bobDir := filepath.Join(et.dir, media.ExportsDir, bobs.ExportID)
	if _, err := os.Stat(bobDir); err != nil {
		t.Fatalf("bob's expired export before GC: %v", err)
	}
	if _, err := et.st.RunGC(context.Background(), media.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ans.ExportID, bobs.ExportID} {
		if _, err := os.Stat(filepath.Join(et.dir, media.ExportsDir, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("expired export %s after GC: %v, want it gone", id, err)
		}
	}
	wantMatrixError(t, et.get(t, bobs.Parts[0].URL, "bob"), http.StatusNotFound, "M_NOT_FOUND", "")
}

// One export per user at a time: a second while the first is being
// written gets 429 M_LIMIT_EXCEEDED, and may export again once it ends.
func TestSelfExportOneAtATime(t *testing.T) {
	et := newExportTest(t, true)
	et.gate.armed.Store(true)
	first := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, et.srv.URL+exportPrefix, nil)
		req.Host = "hs.test"
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := et.srv.Client().Do(req)
		if err != nil {
			first <- answer{status: -1, body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- answer{status: resp.StatusCode, body: string(b)}
	}()
	<-et.gate.reached // alice's export is reading her media
	a := et.export(t, "alice", "")
	wantMatrixError(t, a, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "already")
	if a.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", a.header)
	}
	et.gate.armed.Store(false)
	close(et.gate.release)
	if a := <-first; a.status != http.StatusOK {
		t.Fatalf("first export: %d %s", a.status, a.body)
	}
	if ans := et.exportOK(t, "alice", ""); ans.Media != len(et.alice) {
		t.Errorf("export after the first ended: %d media", ans.Media)
	}
}
