package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// allReads are the three read paths; quarantined media is ErrNotFound on
// each.
var allReads = []media.ReadOptions{{Path: media.ClientRead}, {Path: media.LegacyRead}, {Path: media.FederationRead}}

// openQuarantineStore opens a store in dir serving "server" and
// "server2", fetching remote media from f.
func openQuarantineStore(t *testing.T, dir string, f *fetcher) *media.Store {
	t.Helper()
	return openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams,
		Local:  func(s string) bool { return s == server || s == "server2" },
		Remote: media.RemoteOptions{Fetcher: f}})
}

// checkReads fails unless every read path of m (remote: client reads only)
// is served (want true) or ErrNotFound.
func checkReads(t *testing.T, s *media.Store, m matrix.MXC, remote, want bool) {
	t.Helper()
	for _, opt := range allReads {
		if remote && opt.Path == media.FederationRead {
			continue
		}
		_, err := s.Resolve(context.Background(), m, opt)
		if want && err != nil {
			t.Errorf("Resolve(%s, path %d) = %v, want served", m, opt.Path, err)
		}
		if !want && !errors.Is(err, media.ErrNotFound) {
			t.Errorf("Resolve(%s, path %d) = %v, want ErrNotFound", m, opt.Path, err)
		}
	}
}

func TestQuarantineByID(t *testing.T) {
	s := openQuarantineStore(t, t.TempDir(), nil)
	upload(t, s, "a", "@alice:server", []byte("abusive"))
	if err := s.SetProtected(mxc("a"), true); err != nil {
		t.Fatal(err)
	}
	checkReads(t, s, mxc("a"), false, true)
	// By ID even protected media is quarantined: an explicit act.
	if err := s.Quarantine(mxc("a"), "@root:server"); err != nil {
		t.Fatal(err)
	}
	checkReads(t, s, mxc("a"), false, false)
	if rec, _ := s.Stat(mxc("a")); !rec.Quarantined || rec.QuarantinedBy != "@root:server" || !rec.Protected {
		t.Errorf("record %+v, want quarantined by @root:server, still protected", rec)
	}
	if err := s.Unquarantine(mxc("a")); err != nil {
		t.Fatal(err)
	}
	checkReads(t, s, mxc("a"), false, true)
	for _, err := range []error{s.Quarantine(mxc("none"), "@root:server"), s.Unquarantine(mxc("none")), s.SetProtected(mxc("none"), true)} {
		if !errors.Is(err, media.ErrNotFound) {
			t.Errorf("unknown local media: %v, want ErrNotFound", err)
		}
	}
	checkNotFound(t, s, "none")
}

// Quarantining remote media not cached stores a placeholder: never
// fetched while quarantined, invisible to GC and fsck, and removed when
// lifted so the next read fetches it.
func TestQuarantineUncachedRemote(t *testing.T) {
	m := mustMXC("far.test", "abc")
	f := &fetcher{files: map[string][]byte{m.String(): []byte("remote bytes")}}
	s := openQuarantineStore(t, t.TempDir(), f)
	if err := s.Quarantine(m, "@root:server"); err != nil {
		t.Fatal(err)
	}
	checkReads(t, s, m, true, false)
	if n := f.calls.Load(); n != 0 {
		t.Errorf("quarantined remote media was fetched %d times", n)
	}
	if rec, err := s.Stat(m); err != nil || !rec.Placeholder() || !rec.Quarantined {
		t.Errorf("placeholder: %+v, %v", rec, err)
	}
	if r := fsck(t, s); len(r.Problems) != 0 {
		t.Errorf("fsck with a placeholder: %v", r.Problems)
	}
	gc(t, s)
	if su, err := s.ServerUsage(context.Background(), server); err != nil || su.RemoteMedia != 0 {
		t.Errorf("usage counts the placeholder: %+v, %v", su, err)
	}
	if err := s.Unquarantine(m); err != nil {
		t.Fatal(err)
	}
	checkReads(t, s, m, true, true)
	if n := f.calls.Load(); n != 1 {
		t.Errorf("after unquarantine: %d fetches, want 1", n)
	}
}

// Deleting a placeholder takes nothing off the usage counters: none was
// added for it.
func TestDeletePlaceholderKeepsCounters(t *testing.T) {
	m := mustMXC("far.test", "abc")
	s := openQuarantineStore(t, t.TempDir(), &fetcher{})
	if err := s.Quarantine(m, "@root:server"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(m); err != nil {
		t.Fatal(err)
	}
	if b, n, err := s.UsageCounters("far.test"); err != nil || b != 0 || n != 0 {
		t.Errorf("far.test counters after deleting a placeholder: %d bytes, %d media, %v; want 0, 0", b, n, err)
	}
}

func TestQuarantineUser(t *testing.T) {
	s := openQuarantineStore(t, t.TempDir(), nil)
	upload(t, s, "a1", "@alice:server", []byte("one"))
	upload(t, s, "a2", "@alice:server", []byte("two"))
	upload(t, s, "a3", "@alice:server", []byte("sticker"))
	upload(t, s, "b1", "@bob:server", []byte("bob's"))
	if err := s.SetProtected(mxc("a3"), true); err != nil {
		t.Fatal(err)
	}
	n, err := s.QuarantineUser("@alice:server", "@root:server")
	if err != nil || n != 2 {
		t.Fatalf("QuarantineUser = %d, %v; want 2", n, err)
	}
	checkReads(t, s, mxc("a1"), false, false)
	checkReads(t, s, mxc("a2"), false, false)
	checkReads(t, s, mxc("a3"), false, true)
	checkReads(t, s, mxc("b1"), false, true)
	if n, err := s.QuarantineUser("@nobody:server", "@root:server"); err != nil || n != 0 {
		t.Errorf("user without media: %d, %v", n, err)
	}
}

// A content quarantine blocks the homeserver's media and cached remote
// media with that content (not protected media, not another homeserver's),
// refuses uploads and created-ID fills of it with nothing stored, survives
// a restart, and lifting it restores everything.
func TestQuarantineContent(t *testing.T) {
	bad := bytes.Repeat([]byte("abusive content "), 10000) // several chunks
	rm := mustMXC("far.test", "copy")
	f := &fetcher{files: map[string][]byte{rm.String(): bad}}
	dir := filepath.Join(t.TempDir(), "data")
	s := openQuarantineStore(t, dir, f)
	upload(t, s, "a", "@alice:server", bad)
	upload(t, s, "b", "@bob:server", bad)
	upload(t, s, "p", "@bob:server", bad)
	upload(t, s, "ok", "@bob:server", []byte("fine"))
	other := mustMXC("server2", "o")
	if _, err := s.Upload(context.Background(), media.UploadInfo{MXC: other, Size: int64(len(bad))}, bytes.NewReader(bad)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FetchRemote(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProtected(mxc("p"), true); err != nil {
		t.Fatal(err)
	}
	created, err := s.Create(media.CreateInfo{MXC: mxc("later"), Uploader: "@alice:server"})
	if err != nil {
		t.Fatal(err)
	}

	n, err := s.QuarantineContent(mxc("b"), server, "@root:server")
	if err != nil || n != 3 {
		t.Fatalf("QuarantineContent = %d, %v; want 3 (a, b, the remote copy)", n, err)
	}
	blocked := func(want bool) {
		t.Helper()
		checkReads(t, s, mxc("a"), false, !want)
		checkReads(t, s, mxc("b"), false, !want)
		checkReads(t, s, rm, true, !want)
		checkReads(t, s, mxc("p"), false, true)  // protected
		checkReads(t, s, other, false, true)     // another homeserver's
		checkReads(t, s, mxc("ok"), false, true) // other content
	}
	blocked(true)

	// Uploads of the content are refused, and store no record.
	_, err = s.Upload(context.Background(), media.UploadInfo{MXC: mxc("again"), Uploader: "@alice:server", Size: -1}, bytes.NewReader(bad))
	if !errors.Is(err, media.ErrQuarantinedContent) {
		t.Errorf("re-upload: %v, want ErrQuarantinedContent", err)
	}
	checkNotFound(t, s, "again")
	_, err = s.Fill(context.Background(), media.UploadInfo{MXC: created.MXC, Size: int64(len(bad))}, "@alice:server", bytes.NewReader(bad))
	if !errors.Is(err, media.ErrQuarantinedContent) {
		t.Errorf("fill: %v, want ErrQuarantinedContent", err)
	}
	if rec, err := s.Stat(created.MXC); err != nil || !rec.Pending {
		t.Errorf("created ID after a refused fill: %+v, %v; want still pending", rec, err)
	}
	// Another homeserver may still upload it.
	if _, err := s.Upload(context.Background(), media.UploadInfo{MXC: mustMXC("server2", "o2"), Size: -1}, bytes.NewReader(bad)); err != nil {
		t.Errorf("upload to another homeserver: %v", err)
	}

	// The quarantine is in the index: a reopened store knows it.
	closeStore(t, s)
	s = openQuarantineStore(t, dir, f)
	blocked(true)

	n, err = s.UnquarantineContent(mxc("a"), server)
	if err != nil || n != 3 {
		t.Fatalf("UnquarantineContent = %d, %v; want 3", n, err)
	}
	blocked(false)
	if _, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc("again"), Size: -1}, bytes.NewReader(bad)); err != nil {
		t.Errorf("upload after lifting: %v", err)
	}
	if _, err := s.QuarantineContent(mxc("none"), server, "@root:server"); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("unknown media: %v, want ErrNotFound", err)
	}
}

// The refused re-upload leaves the uploader's usage as it was.
func TestQuarantinedContentUsageUnchanged(t *testing.T) {
	s, dir := newStore(t, nil)
	upload(t, s, "a", "@alice:server", []byte("abusive"))
	if _, err := s.QuarantineContent(mxc("a"), server, "@root:server"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Upload(context.Background(), media.UploadInfo{MXC: mxc("b"), Uploader: "@alice:server", Size: 7}, bytes.NewReader([]byte("abusive")))
	if !errors.Is(err, media.ErrQuarantinedContent) {
		t.Fatalf("re-upload: %v", err)
	}
	one := index.Usage{Bytes: 7, Count: 1}
	checkUsage(t, s, dir, map[string]index.Usage{"@alice:server": one}, one)
}

// A remote fetch that brings quarantined content stores a quarantined
// placeholder instead, so the next read is not found without fetching
// again; a client it streamed to never gets the last byte.
func TestQuarantinedContentFetch(t *testing.T) {
	bad := bytes.Repeat([]byte("abusive content "), 10000)
	m1, m2 := mustMXC("far.test", "one"), mustMXC("far.test", "two")
	f := &fetcher{files: map[string][]byte{m1.String(): bad, m2.String(): bad}}
	s := openQuarantineStore(t, t.TempDir(), f)
	upload(t, s, "a", "@alice:server", bad)
	if _, err := s.QuarantineContent(mxc("a"), server, "@root:server"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FetchRemote(context.Background(), m1); !errors.Is(err, media.ErrQuarantinedContent) {
		t.Errorf("fetch: %v, want ErrQuarantinedContent", err)
	}
	checkReads(t, s, m1, true, false)
	if rec, err := s.Stat(m1); err != nil || !rec.Placeholder() || rec.QuarantinedBy != "@root:server" {
		t.Errorf("after the refused fetch: %+v, %v; want a placeholder quarantined by @root:server", rec, err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}

	var got bytes.Buffer
	_, streamed, err := s.FetchRemoteTo(context.Background(), m2, func(media.RemoteMedia) io.Writer { return &got })
	if !streamed || !errors.Is(err, media.ErrQuarantinedContent) {
		t.Errorf("streamed fetch: streamed %v, %v", streamed, err)
	}
	if got.Len() >= len(bad) {
		t.Errorf("the streaming client got %d of %d bytes: a complete answer", got.Len(), len(bad))
	}
	if r := fsck(t, s); len(r.Problems) != 0 {
		t.Errorf("fsck: %v", r.Problems)
	}

	// Content that is not quarantined still streams every byte.
	fine := bytes.Repeat([]byte("fine content "), 10000)
	m3 := mustMXC("far.test", "fine")
	f.files[m3.String()] = fine
	got.Reset()
	if _, streamed, err := s.FetchRemoteTo(context.Background(), m3, func(media.RemoteMedia) io.Writer { return &got }); !streamed || err != nil {
		t.Fatalf("streamed %v, %v", streamed, err)
	}
	if !bytes.Equal(got.Bytes(), fine) {
		t.Errorf("client got %d of %d bytes", got.Len(), len(fine))
	}
}
