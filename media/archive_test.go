package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/media"
)

// exportTo writes e's archive into dir (files created there).
func exportTo(t *testing.T, s *media.Store, e string, dir string) media.ExportReport {
	t.Helper()
	ent, err := media.ParseEntity(e)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Export(context.Background(), media.ExportOptions{Entity: ent, PartSize: 64 << 10,
		Create: func(name string) (io.WriteCloser, error) {
			return os.Create(filepath.Join(dir, name))
		}})
	if err != nil {
		t.Fatalf("Export(%s): %v", e, err)
	}
	return rep
}

// TestExportDeleteImportRoundTrip exports a user, deletes their media,
// collects garbage and imports the archive back: every media returns under
// its ID with its bytes, the quarantined one was never exported, and a
// second import imports nothing.
func TestExportDeleteImportRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	clk := newClock()
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now,
		Local: func(name string) bool { return name == server }})
	ctx := context.Background()
	want := map[string][]byte{}
	for i, n := range []int{0, 10, 5000, 300 << 10, 2 << 20} {
		id := "m" + string(rune('a'+i))
		want[id] = randBytes(uint64(i), n)
		upload(t, s, id, "@alice:server", want[id])
	}
	upload(t, s, "shared", "@bob:server", want["md"])
	upload(t, s, "q", "@alice:server", randBytes(99, 100))
	if err := s.Quarantine(mxc("q"), "@admin:server"); err != nil {
		t.Fatal(err)
	}
	arch := t.TempDir()
	rep := exportTo(t, s, "@alice:server", arch)
	if rep.Media != len(want) || rep.Quarantined != 1 {
		t.Fatalf("export report %+v, want %d media and 1 quarantined", rep, len(want))
	}
	for id := range want {
		if err := s.Delete(mxc(id)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(48 * 3600e9)
	if _, err := s.RunGC(ctx, media.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	imp := func(o media.ArchiveImportOptions) (media.ArchiveImportReport, []media.ArchiveProblem) {
		var ps []media.ArchiveProblem
		o.Problem = func(p media.ArchiveProblem) { ps = append(ps, p) }
		r, err := s.ImportArchive(ctx, os.DirFS(arch), o)
		if err != nil {
			t.Fatalf("ImportArchive: %v", err)
		}
		return r, ps
	}
	r, ps := imp(media.ArchiveImportOptions{})
	if r.Refused != len(want) || r.Imported != 0 {
		t.Fatalf("without -allowDeleted: %+v %v, want every media refused", r, ps)
	}
	r, ps = imp(media.ArchiveImportOptions{AllowDeleted: true})
	if r.Imported != len(want) || len(ps) != 0 {
		t.Fatalf("import: %+v %v", r, ps)
	}
	for id, b := range want {
		checkContent(t, s, id, b)
		rec, err := s.Stat(mxc(id))
		if err != nil || rec.Uploader != "@alice:server" {
			t.Fatalf("%s: %+v %v", id, rec, err)
		}
	}
	r, _ = imp(media.ArchiveImportOptions{AllowDeleted: true})
	if r.Imported != 0 || r.Present != len(want) {
		t.Fatalf("second import: %+v", r)
	}
	r, ps = imp(media.ArchiveImportOptions{Verify: true})
	if r.Present != len(want) || len(ps) != 0 {
		t.Fatalf("verify: %+v %v", r, ps)
	}
	if _, err := s.ImportArchive(ctx, os.DirFS(t.TempDir()), media.ArchiveImportOptions{}); !errors.Is(err, archive.ErrNoManifest) {
		t.Fatalf("empty directory: %v", err)
	}
}

// TestImportArchiveRefusesForeignUploader: local media of a served
// homeserver whose uploader is another server's user is refused, as
// matrix-media-repo's importer does, and nothing is stored.
func TestImportArchiveRefusesForeignUploader(t *testing.T) {
	s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), Chunker: smallParams,
		Local: func(name string) bool { return name == server }})
	arch := t.TempDir()
	w, err := archive.NewWriter(archive.Options{EntityID: server, Create: func(name string) (io.WriteCloser, error) {
		return os.Create(filepath.Join(arch, name))
	}})
	if err != nil {
		t.Fatal(err)
	}
	for id, up := range map[string]string{"ours": "@a:server", "theirs": "@b:other.example"} {
		body := randBytes(7, 100)
		e := archive.Entry{Origin: server, MediaID: id, ContentType: "text/plain", Size: int64(len(body)), Uploader: up}
		if _, err := w.AddMedia(context.Background(), e, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var ps []media.ArchiveProblem
	rep, err := s.ImportArchive(context.Background(), os.DirFS(arch), media.ArchiveImportOptions{
		Problem: func(p media.ArchiveProblem) { ps = append(ps, p) }})
	if err != nil || rep.Imported != 1 || rep.Refused != 1 || len(ps) != 1 || ps[0].MXC != "mxc://server/theirs" {
		t.Fatalf("ImportArchive: %+v %v %v, want ours imported and theirs refused", rep, ps, err)
	}
	checkNotFound(t, s, "theirs")
}
