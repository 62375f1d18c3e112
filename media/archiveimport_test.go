package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// dirNames lists dir's entries.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// kinds maps each reported mxc URI to its problem's kind.
func kinds(ps map[string]media.ArchiveProblem) map[string]string {
	k := make(map[string]string, len(ps))
	for m, p := range ps {
		k[m] = p.Kind
	}
	return k
}

func outcomes(r media.ArchiveImportReport) int {
	return r.Imported + r.Present + r.Other + r.Refused + r.Failed + r.Missing
}

// TestImportArchiveHostile imports an archive that lies: every bad media
// is reported once and stores nothing, the good ones are imported, and
// nothing appears outside the store. With OnlyEntity the foreign media
// comes in as a cached copy and the rest counts as Other.
func TestImportArchiveHostile(t *testing.T) {
	root := t.TempDir()
	arch, data := filepath.Join(root, "archive"), filepath.Join(root, "data")
	if err := os.Mkdir(arch, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, media.Options{Create: true, Dir: data, Chunker: smallParams,
		Local: func(name string) bool { return name == server }})
	held := upload(t, s, "held", "@bob:server", randBytes(10, 5000))
	upload(t, s, "qsrc", "@bob:server", randBytes(11, 6000))
	if _, err := s.QuarantineContent(mxc("qsrc"), server, "@admin:server"); err != nil {
		t.Fatal(err)
	}
	big := func(seed uint64) []byte { return randBytes(seed, 1<<20+5000) }
	local := func(id string, body []byte) mmrMedia {
		return mmrMedia{Origin: server, MediaID: id, Name: id, ContentType: "application/octet-stream",
			Uploader: "@alice:server", Created: 1600000000000, Body: body}
	}
	with := func(m mmrMedia, fn func(*mmrMedia)) mmrMedia {
		fn(&m)
		return m
	}
	foreign := func(id, user string, body []byte) mmrMedia {
		return mmrMedia{Origin: "other.example", MediaID: id, ContentType: "image/png", Uploader: user,
			Created: 1600000000000, Body: body}
	}
	good := []mmrMedia{local("good1", randBytes(1, 3000)), local("good2", big(2)), local("good3", nil)}
	bad := []struct {
		kind string
		m    mmrMedia
	}{
		{"failed", with(local("tampered", randBytes(3, 4000)), func(m *mmrMedia) { m.FileBody = randBytes(4, 4000) })},
		{"failed", with(local("tamperedbig", big(5)), func(m *mmrMedia) { m.FileBody = big(6) })},
		{"failed", with(local("dotdot", randBytes(7, 100)), func(m *mmrMedia) { m.FileName = "../escape.png" })},
		{"failed", with(local("abs", randBytes(8, 100)), func(m *mmrMedia) { m.FileName = filepath.Join(root, "abs.png") })},
		{"failed", with(local("long", randBytes(9, 1000)), func(m *mmrMedia) { m.Size = 999 })},
		{"failed", with(local("short", randBytes(12, 1000)), func(m *mmrMedia) { m.Size = 1001 })},
		{"failed", with(local("longbig", big(13)), func(m *mmrMedia) { m.Size = 1<<20 + 4000 })},
		{"failed", with(local("shortbig", big(14)), func(m *mmrMedia) { m.Size = 1<<20 + 6000 })},
		{"failed", with(local("s3", randBytes(15, 100)), func(m *mmrMedia) { m.S3URL, m.NoFile = "https://s3.example/b/x", true })},
		{"failed", with(foreign("tamperedforeign", "@mallory:other.example", randBytes(16, 100)),
			func(m *mmrMedia) { m.FileBody = randBytes(17, 100) })},
		{"refused", foreign("mallory1", "@mallory:other.example", randBytes(18, 2000))},
		{"refused", foreign("eve1", "@eve:other.example", randBytes(19, 2000))},
		{"refused", local("held", randBytes(20, 5000))}, // same size, other bytes
		{"refused", local("qnew", readMedia(t, s, "qsrc"))},
	}
	ms := slices.Clone(good)
	want := map[string]string{}
	for _, b := range bad {
		ms = append(ms, b.m)
		want[b.m.mxc()] = b.kind
	}
	writeMMR(t, arch, "server", mmrLayout{partBytes: 10 << 10, extra: []tarEntry{
		{"../evil", []byte("evil")}, {"/evil2", []byte("evil")},
	}}, ms...)
	rootBefore, archBefore := dirNames(t, root), dirNames(t, arch)

	rep, ps := importDir(t, s, arch, media.ArchiveImportOptions{})
	if got := kinds(ps); !mapsEqual(got, want) {
		t.Errorf("problems %v\nwant %v", got, want)
	}
	if rep.Imported != len(good) || rep.Failed != 10 || rep.Refused != 4 || outcomes(rep) != len(ms) {
		t.Errorf("report %+v, want %d imported, 10 failed, 4 refused, one outcome each", rep, len(good))
	}
	if p := ps["mxc://server/s3"]; !strings.Contains(p.Reason, "s3_url") {
		t.Errorf("s3 media reported %+v, want the reason to name its s3_url", p)
	}
	for _, m := range good {
		checkImported(t, s, m, false)
	}
	for _, b := range bad {
		if b.m.Origin == server && b.m.MediaID != "held" {
			checkNotFound(t, s, b.m.MediaID)
		}
	}
	checkContent(t, s, "held", randBytes(10, 5000))
	if rec, _ := s.Stat(mxc("held")); rec != held {
		t.Errorf("held changed: %+v, was %+v", rec, held)
	}
	if got := dirNames(t, root); !slices.Equal(got, rootBefore) {
		t.Errorf("the archive's parent holds %v, had %v", got, rootBefore)
	}
	if got := dirNames(t, arch); !slices.Equal(got, archBefore) {
		t.Errorf("the archive holds %v, had %v", got, archBefore)
	}
	for _, p := range []string{"/evil2", filepath.Join(root, "abs.png"), filepath.Join(root, "evil"), filepath.Join(root, "escape.png"), filepath.Join(data, "evil")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want it not to exist", p, err)
		}
	}

	// OnlyEntity naming a foreign user imports that user's media as a
	// cached copy; naming their server imports the rest of its media.
	mallory, _ := media.ParseEntity("@mallory:other.example")
	rep, ps = importDir(t, s, arch, media.ArchiveImportOptions{OnlyEntity: &mallory})
	if rep.Imported != 1 || rep.Other != len(ms)-11 || len(ps) != 10 || ps["mxc://other.example/tamperedforeign"].Kind != "failed" {
		t.Errorf("only %s: %+v %v", mallory, rep, kinds(ps))
	}
	checkImported(t, s, bad[10].m, true)
	other, _ := media.ParseEntity("other.example")
	rep, _ = importDir(t, s, arch, media.ArchiveImportOptions{OnlyEntity: &other})
	if rep.Imported != 1 || rep.Present != 1 || rep.Other != len(ms)-12 {
		t.Errorf("only %s: %+v", other, rep)
	}
	checkImported(t, s, bad[11].m, true)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// archiveKeys returns the mxc URIs the manifest of the archive in dir lists.
func archiveKeys(t testing.TB, dir string) []string {
	t.Helper()
	r, err := archive.Open(context.Background(), os.DirFS(dir))
	if err != nil {
		t.Fatalf("archive.Open(%s): %v", dir, err)
	}
	return slices.Sorted(maps.Keys(r.Manifest().Media))
}

// TestExportScope exports a server and a remote origin: the server's
// export holds its local media only, not another served server's nor
// cached copies, and leaves out quarantined (counted), deleted and pending
// media; the remote origin's export holds the cached copies. Both import
// back into an empty store, the first from several parts.
func TestExportScope(t *testing.T) {
	s, _ := localStore(t)
	ctx := context.Background()
	local := map[string][]byte{}
	for i := range 6 {
		id := "s" + strconv.Itoa(i)
		local[mxc(id).String()] = randBytes(uint64(100+i), 20000+1000*i)
		upload(t, s, id, "@alice:server", local[mxc(id).String()])
	}
	up := func(m matrix.MXC, body []byte) {
		info := media.UploadInfo{MXC: m, ContentType: "application/octet-stream", Uploader: "@carol:" + m.Server(), Size: int64(len(body))}
		if _, err := s.Upload(ctx, info, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	up(mustMXC("server2", "x"), randBytes(200, 3000))
	cached := map[string][]byte{}
	for _, m := range []matrix.MXC{mustMXC("remote.example", "r1"), mustMXC("remote.example", "r2"), mustMXC("other.example", "o1")} {
		body := randBytes(uint64(len(cached)+300), 7000)
		if m.Server() == "remote.example" {
			cached[m.String()] = body
		}
		info := media.ImportInfo{MXC: m, ContentType: "image/png", Remote: true, Size: int64(len(body)), Created: time.UnixMilli(1500000000000)}
		if _, err := s.Import(ctx, info, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	upload(t, s, "qid", "@alice:server", randBytes(400, 100))
	upload(t, s, "qc", "@alice:server", randBytes(401, 100))
	upload(t, s, "del", "@alice:server", randBytes(402, 100))
	if err := s.Quarantine(mxc("qid"), "@admin:server"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QuarantineContent(mxc("qc"), server, "@admin:server"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(mxc("del")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(media.CreateInfo{MXC: mxc("pend"), Uploader: "@alice:server"}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		entity      string
		want        map[string][]byte
		quarantined int
		parts       int
	}{
		{server, local, 2, 3}, // 64 KiB parts: two of media and the manifest's
		{"remote.example", cached, 0, 2},
	} {
		arch := t.TempDir()
		rep := exportTo(t, s, tc.entity, arch)
		if rep.Media != len(tc.want) || rep.Quarantined != tc.quarantined || len(rep.Parts) != tc.parts ||
			rep.Parts[len(rep.Parts)-1] != archive.ManifestPart {
			t.Errorf("export %s: %+v, want %d media, %d quarantined, %d parts", tc.entity, rep, len(tc.want), tc.quarantined, tc.parts)
		}
		if got := dirNames(t, arch); !slices.Equal(got, slices.Sorted(slices.Values(rep.Parts))) {
			t.Errorf("export %s wrote %v, reports %v", tc.entity, got, rep.Parts)
		}
		if got, want := archiveKeys(t, arch), slices.Sorted(maps.Keys(tc.want)); !slices.Equal(got, want) {
			t.Errorf("export %s holds %v, want %v", tc.entity, got, want)
		}
		s2, _ := localStore(t)
		r, ps := importDir(t, s2, arch, media.ArchiveImportOptions{})
		if r.Imported != len(tc.want) || len(ps) != 0 {
			t.Errorf("import of %s's export: %+v %v", tc.entity, r, ps)
		}
		for k, body := range tc.want {
			m, err := matrix.ParseMXC(k)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := s2.Stat(m)
			if err != nil || rec.Remote != (m.Server() != server) {
				t.Errorf("%s imported as %+v (%v)", k, rec, err)
				continue
			}
			r, err := s2.OpenMedia(rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("%s: read back %d bytes (%v), want %d", k, len(got), err, len(body))
			}
		}
	}
}

// TestImportArchiveVerify verifies an archive against a store: present
// and missing media are told apart (an ID holding other bytes is missing),
// and nothing changes: chunk files and records are as before.
func TestImportArchiveVerify(t *testing.T) {
	s, dir := localStore(t)
	lm := func(id string, body []byte) mmrMedia {
		return mmrMedia{Origin: server, MediaID: id, ContentType: "application/octet-stream",
			Uploader: "@alice:server", Created: 1600000000000, Body: body}
	}
	ms := []mmrMedia{lm("a", randBytes(1, 30000)), lm("b", nil), lm("c", randBytes(3, 500)),
		lm("d", randBytes(4, 9000)), lm("e", randBytes(5, 9000)), lm("f", randBytes(6, 100))}
	upload(t, s, "a", "@alice:server", ms[0].Body)
	upload(t, s, "b", "@alice:server", nil)
	upload(t, s, "d", "@alice:server", randBytes(40, 9000)) // same size, other bytes
	upload(t, s, "e", "@alice:server", randBytes(50, 100))
	upload(t, s, "f", "@alice:server", ms[5].Body)
	if err := s.Delete(mxc("f")); err != nil {
		t.Fatal(err)
	}
	arch := t.TempDir()
	writeMMR(t, arch, "@alice:server", mmrLayout{}, ms...)
	ids := []string{"a", "b", "d", "e"}
	records := func() []media.Media {
		var rs []media.Media
		for _, id := range ids {
			rec, err := s.Stat(mxc(id))
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, rec)
		}
		return rs
	}
	chunksBefore, recsBefore := chunkFiles(t, dir), records()

	rep, ps := importDir(t, s, arch, media.ArchiveImportOptions{Verify: true})
	want := map[string]string{"mxc://server/c": "missing", "mxc://server/d": "missing", "mxc://server/e": "missing", "mxc://server/f": "missing"}
	if got := kinds(ps); !mapsEqual(got, want) || rep.Present != 2 || rep.Missing != 4 || rep.Imported != 0 || outcomes(rep) != len(ms) {
		t.Errorf("verify: %+v %v, want a and b present, %v", rep, got, want)
	}
	if got := chunkFiles(t, dir); !maps.Equal(got, chunksBefore) {
		t.Errorf("verify changed cas/: %d files, had %d", len(got), len(chunksBefore))
	}
	if got := records(); !slices.Equal(got, recsBefore) {
		t.Errorf("verify changed records:\n%+v\nwas\n%+v", got, recsBefore)
	}
	checkNotFound(t, s, "c")
	checkNotFound(t, s, "f")
	checkContent(t, s, "d", randBytes(40, 9000))
}

// TestImportArchiveManySmallFewLarge imports hundreds of small media
// (read whole and stored concurrently) and a few over 1 MiB (streamed)
// from one archive.
func TestImportArchiveManySmallFewLarge(t *testing.T) {
	var ms []mmrMedia
	for i := range 300 {
		ms = append(ms, mmrMedia{Origin: server, MediaID: "small" + strconv.Itoa(i), ContentType: "image/png",
			Uploader: "@alice:server", Created: int64(1600000000000 + i), Body: randBytes(uint64(i), i*37%4000)})
	}
	for i := range 2 {
		ms = append(ms, mmrMedia{Origin: server, MediaID: "large" + strconv.Itoa(i), ContentType: "video/mp4",
			Uploader: "@alice:server", Created: 1600000000000, Body: randBytes(uint64(1000+i), 1<<20+1+i*50000)})
	}
	var total int64
	for _, m := range ms {
		total += int64(len(m.Body))
	}
	arch := t.TempDir()
	writeMMR(t, arch, "@alice:server", mmrLayout{partBytes: 1 << 20}, ms...)
	s, _ := localStore(t)
	rep, ps := importDir(t, s, arch, media.ArchiveImportOptions{})
	if rep.Imported != len(ms) || rep.BytesRead != total || len(ps) != 0 || outcomes(rep) != len(ms) {
		t.Fatalf("report %+v %v, want %d imported, %d bytes", rep, ps, len(ms), total)
	}
	for _, m := range ms {
		checkImported(t, s, m, false)
	}
	u, err := s.UserUsage(context.Background(), "@alice:server")
	if err != nil || u.Media != int64(len(ms)) || u.LogicalBytes != total {
		t.Errorf("usage %+v (%v), want %d media, %d bytes", u, err, len(ms), total)
	}
}

// cancelFS cancels a context once more than after bytes of media parts
// have been read through it: an import stopped half-way.
type cancelFS struct {
	fs.FS
	after  int64
	read   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil || !strings.HasPrefix(name, "export-part-") {
		return f, err
	}
	return &cancelFile{File: f, c: c}, nil
}

type cancelFile struct {
	fs.File
	c *cancelFS
}

func (f *cancelFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	if f.c.read.Add(int64(n)) > f.c.after {
		f.c.cancel()
	}
	return n, err
}

// TestImportArchiveResume stops an import half-way and runs it again: the
// second run imports the rest, counts the first run's media as present,
// and nothing is counted twice.
func TestImportArchiveResume(t *testing.T) {
	var ms []mmrMedia
	var total int64
	for i := range 40 {
		n := 8000 + i*100
		if i%20 == 0 {
			n = 1<<20 + 1000 // streamed
		}
		ms = append(ms, mmrMedia{Origin: server, MediaID: "m" + strconv.Itoa(i), ContentType: "image/png",
			Uploader: "@alice:server", Created: 1600000000000, Body: randBytes(uint64(i), n)})
		total += int64(n)
	}
	arch := t.TempDir()
	writeMMR(t, arch, "@alice:server", mmrLayout{partBytes: 256 << 10}, ms...)
	s, _ := localStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := s.ImportArchive(ctx, &cancelFS{FS: os.DirFS(arch), after: total / 2, cancel: cancel}, media.ArchiveImportOptions{})
	if !errors.Is(err, context.Canceled) || first.Imported == 0 || first.Imported >= len(ms) {
		t.Fatalf("stopped import: %+v %v, want some media imported and context.Canceled", first, err)
	}
	second, ps := importDir(t, s, arch, media.ArchiveImportOptions{})
	if second.Imported+second.Present != len(ms) || second.Present != first.Imported || len(ps) != 0 {
		t.Fatalf("second import: %+v %v, first imported %d of %d", second, ps, first.Imported, len(ms))
	}
	for _, m := range ms {
		checkImported(t, s, m, false)
	}
	u, err := s.UserUsage(context.Background(), "@alice:server")
	if err != nil || u.Media != int64(len(ms)) || u.LogicalBytes != total {
		t.Errorf("usage %+v (%v), want %d media, %d bytes", u, err, len(ms), total)
	}
}

// TestImportArchiveCancelledAtEnd cancels an import once every part is
// read, while small media may still be being stored: ImportArchive says so
// rather than return a report that silently lacks them, and the next run
// finishes the job.
func TestImportArchiveCancelledAtEnd(t *testing.T) {
	var ms []mmrMedia
	for i := range 20 {
		ms = append(ms, mmrMedia{Origin: server, MediaID: "m" + strconv.Itoa(i), ContentType: "image/png",
			Uploader: "@alice:server", Created: 1600000000000, Body: randBytes(uint64(i), 3000)})
	}
	// Each reports a media without a file after reading every part.
	last := mmrMedia{Origin: server, MediaID: "zzz", Body: []byte("x"), NoFile: true}
	arch := t.TempDir()
	writeMMR(t, arch, "@alice:server", mmrLayout{}, append(ms, last)...)
	s, _ := localStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := s.ImportArchive(ctx, os.DirFS(arch), media.ArchiveImportOptions{Problem: func(p media.ArchiveProblem) {
		if p.MXC == last.mxc() {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("import cancelled at its end: %+v %v, want context.Canceled", first, err)
	}
	second, ps := importDir(t, s, arch, media.ArchiveImportOptions{})
	if second.Imported+second.Present != len(ms) || second.Present != first.Imported || len(ps) != 1 {
		t.Fatalf("second import: %+v %v, first imported %d of %d", second, ps, first.Imported, len(ms))
	}
}
