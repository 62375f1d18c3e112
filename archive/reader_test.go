package archive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mxcas/mxcas/archive"
)

// mmrManifest renders a manifest.json by hand, in MMR's field order.
func mmrManifest(version int, entityField, entity string, records ...string) []byte {
	return fmt.Appendf(nil, `{"version":%d,"%s":%q,"created_ts":1690000000000,"media":{%s}}`,
		version, entityField, entity, strings.Join(records, ","))
}

func mmrRecord(origin, id, fileName string, body []byte, shaHex string) string {
	if shaHex == "" {
		shaHex = sha(body)
	}
	return fmt.Sprintf(`"mxc://%s/%s":{"name":"n-%s","file_name":%q,"size_bytes":%d,"content_type":"image/png","s3_url":"","sha256":%q,"origin":%q,"media_id":%q,"created_ts":1690000000001,"uploader":"@u:%s"}`,
		origin, id, id, fileName, len(body), shaHex, origin, id, origin)
}

// TestReadMMRLayout reads an archive built by hand in MMR's exact layout:
// media in export-part-1.tgz and export-part-2.tgz, manifest.json and
// index.html in export-manifest.tgz.
func TestReadMMRLayout(t *testing.T) {
	a, b, c := []byte("png bytes a"), bytes.Repeat([]byte("b"), 70000), []byte{}
	fsys := fstest.MapFS{
		"export-part-1.tgz": {Data: buildPart(t, tarFile{"example.org__a.png", a}, tarFile{"example.org__b.png", b})},
		"export-part-2.tgz": {Data: buildPart(t, tarFile{"example.org__c.png", c})},
		"export-manifest.tgz": {Data: buildPart(t,
			tarFile{"manifest.json", mmrManifest(2, "entity_id", "@u:example.org",
				mmrRecord("example.org", "a", "example.org__a.png", a, ""),
				mmrRecord("example.org", "b", "example.org__b.png", b, ""),
				mmrRecord("example.org", "c", "example.org__c.png", c, ""))},
			tarFile{"index.html", []byte("<html></html>")})},
		"README.txt": {Data: []byte("not a part")},
	}
	r, res := readAll(t, fsys)
	if res.err != nil || len(res.problems) != 0 {
		t.Fatalf("Each: %v, problems %v", res.err, res.problems)
	}
	if got, want := strings.Join(r.Parts(), " "), "export-part-1.tgz export-part-2.tgz export-manifest.tgz"; got != want {
		t.Errorf("Parts = %q, want %q", got, want)
	}
	m := r.Manifest()
	if m.EntityID != "@u:example.org" || m.CreatedTS != 1690000000000 {
		t.Errorf("manifest entity %q created %d", m.EntityID, m.CreatedTS)
	}
	rec := m.Media["mxc://example.org/a"]
	if rec.Name != "n-a" || rec.ContentType != "image/png" || rec.Uploader != "@u:example.org" || rec.CreatedTS != 1690000000001 {
		t.Errorf("record = %+v", rec)
	}
	for mxc, want := range map[string][]byte{"mxc://example.org/a": a, "mxc://example.org/b": b, "mxc://example.org/c": c} {
		if got, ok := res.bodies[mxc]; !ok || !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes (delivered %v), want %d", mxc, len(got), ok, len(want))
		}
	}
}

// TestReadV1Manifest reads MMR's v1 manifest (user_id, not entity_id), kept
// in a media part rather than export-manifest.tgz.
func TestReadV1Manifest(t *testing.T) {
	a := []byte("v1 media")
	fsys := fstest.MapFS{
		"export-part-1.tgz": {Data: buildPart(t, tarFile{"example.org__a.png", a})},
		"export-part-2.tgz": {Data: buildPart(t,
			tarFile{"manifest.json", mmrManifest(1, "user_id", "@old:example.org", mmrRecord("example.org", "a", "example.org__a.png", a, ""))})},
	}
	r, res := readAll(t, fsys)
	if res.err != nil || len(res.problems) != 0 {
		t.Fatalf("Each: %v, problems %v", res.err, res.problems)
	}
	if m := r.Manifest(); m.Version != 2 || m.EntityID != "@old:example.org" || m.UserID != "" {
		t.Errorf("manifest = v%d entity %q user %q, want v2 @old:example.org", m.Version, m.EntityID, m.UserID)
	}
	if !bytes.Equal(res.bodies["mxc://example.org/a"], a) {
		t.Errorf("body = %q, want %q", res.bodies["mxc://example.org/a"], a)
	}
}

// TestReadCorruptFile: a file whose sha256 or size differs from the manifest
// is reported and not delivered; the others are read.
func TestReadCorruptFile(t *testing.T) {
	good, bad, short := []byte("good"), []byte("tampered"), []byte("short")
	fsys := fstest.MapFS{
		"export-part-1.tgz": {Data: buildPart(t,
			tarFile{"o__bad", bad}, tarFile{"o__good", good}, tarFile{"o__short", short})},
		"export-manifest.tgz": {Data: buildPart(t, tarFile{"manifest.json", mmrManifest(2, "entity_id", "o",
			mmrRecord("o", "bad", "o__bad", bad, sha([]byte("original"))),
			mmrRecord("o", "good", "o__good", good, ""),
			// manifest says 6 bytes: the tar holds 5
			strings.Replace(mmrRecord("o", "short", "o__short", short, sha(short)), `"size_bytes":5`, `"size_bytes":6`, 1))})},
	}
	_, res := readAll(t, fsys)
	if res.err != nil {
		t.Fatalf("Each: %v", res.err)
	}
	wantProblem(t, res, "mxc://o/bad", archive.ErrCorrupt)
	wantProblem(t, res, "mxc://o/short", archive.ErrSizeMismatch)
	if !bytes.Equal(res.bodies["mxc://o/good"], good) || len(res.problems) != 2 {
		t.Errorf("good = %q, problems %v", res.bodies["mxc://o/good"], res.problems)
	}
}

// TestReadUnreadBodyIsChecked: a handler that stops early still gets the
// media's problem reported, because the reader checks the rest.
func TestReadUnreadBodyIsChecked(t *testing.T) {
	bad := bytes.Repeat([]byte("x"), 100000)
	fsys := fstest.MapFS{
		"export-part-1.tgz": {Data: buildPart(t, tarFile{"o__bad", bad},
			tarFile{"manifest.json", mmrManifest(2, "entity_id", "o", mmrRecord("o", "bad", "o__bad", bad, sha(nil)))})},
	}
	r, err := archive.Open(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	var problem error
	err = r.Each(context.Background(), func(rec archive.Record, body io.Reader) error {
		_, err := body.Read(make([]byte, 10))
		return err
	}, func(rec archive.Record, err error) { problem = err })
	if err != nil || !errors.Is(problem, archive.ErrCorrupt) {
		t.Errorf("Each = %v, problem %v, want ErrCorrupt reported", err, problem)
	}
}

// TestReadHostileNames: tar entries with path names and records with unsafe
// file names are skipped and reported; nothing is written anywhere.
func TestReadHostileNames(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	evil, ok := []byte("evil"), []byte("ok")
	parts := map[string][]byte{
		"export-part-1.tgz": buildPart(t,
			tarFile{"../escape", evil}, tarFile{"/etc/passwd", evil}, tarFile{"sub/../../x", evil},
			tarFile{"o__ok", ok}, tarFile{"o__ok", evil}), // a second copy is ignored
		"export-manifest.tgz": buildPart(t, tarFile{"manifest.json", mmrManifest(2, "entity_id", "o",
			mmrRecord("o", "ok", "o__ok", ok, ""),
			mmrRecord("o", "dots", "../escape", evil, ""),
			mmrRecord("o", "abs", "/etc/passwd", evil, ""),
			// key mxc://o/lie, but media_id other: reported as mxc://o/other
			strings.Replace(mmrRecord("o", "lie", "o__lie", evil, ""), `"media_id":"lie"`, `"media_id":"other"`, 1),
			mmrRecord("o", "badsha", "o__badsha", evil, "zz"))}),
	}
	for name, data := range parts {
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, res := readAll(t, os.DirFS(root))
	if res.err != nil {
		t.Fatalf("Each: %v", res.err)
	}
	for _, mxc := range []string{"mxc://o/dots", "mxc://o/abs", "mxc://o/other", "mxc://o/badsha"} {
		wantProblem(t, res, mxc, archive.ErrInvalidRecord)
	}
	if len(res.bodies) != 1 || !bytes.Equal(res.bodies["mxc://o/ok"], ok) {
		t.Errorf("bodies = %v, want only mxc://o/ok = %q", res.bodies, ok)
	}
	ents, _ := os.ReadDir(dir)
	files, _ := os.ReadDir(root)
	if len(ents) != 1 || len(files) != 2 {
		t.Errorf("reading created files: %v %v", ents, files)
	}
}

// TestReadTruncatedPart: a cut-off part reports the media it was streaming
// and the ones it never reached; other parts are still read, and Each
// returns the damage.
func TestReadTruncatedPart(t *testing.T) {
	d := newMemDir()
	w, err := archive.NewWriter(archive.Options{EntityID: "o", PartSize: 1, Create: d.create,
		Now: func() time.Time { return time.UnixMilli(0) }})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, one per part
	for _, id := range []string{"a", "b"} {
		if _, err := w.AddMedia(context.Background(), archive.Entry{Origin: "o", MediaID: id, Size: int64(len(big))}, bytes.NewReader(big)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p1 := d.fs["export-part-1.tgz"]
	p1.Data = p1.Data[:len(p1.Data)/2]
	_, res := readAll(t, d.fs)
	if res.err == nil || !strings.Contains(res.err.Error(), "export-part-1.tgz") {
		t.Errorf("Each = %v, want the damage of export-part-1.tgz", res.err)
	}
	if res.problems["mxc://o/a"] == nil {
		t.Error("no problem reported for the truncated media")
	}
	if !bytes.Equal(res.bodies["mxc://o/b"], big) || len(res.problems) != 1 {
		t.Errorf("mxc://o/b: %d bytes, problems %v", len(res.bodies["mxc://o/b"]), res.problems)
	}

	// A part that is not gzip at all, and a missing file.
	d.fs["export-part-1.tgz"] = &fstest.MapFile{Data: []byte("not gzip")}
	_, res = readAll(t, d.fs)
	if res.err == nil {
		t.Error("Each on a non-gzip part succeeded")
	}
	wantProblem(t, res, "mxc://o/a", archive.ErrMissing)
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want error
	}{
		{"empty", fstest.MapFS{}, archive.ErrNoManifest},
		{"no manifest", fstest.MapFS{"export-part-1.tgz": {Data: buildPart(t, tarFile{"o__a", []byte("a")})}}, archive.ErrNoManifest},
		{"broken part", fstest.MapFS{"export-part-1.tgz": {Data: []byte("junk")}}, archive.ErrNoManifest},
		{"version 3", fstest.MapFS{"export-manifest.tgz": {Data: buildPart(t, tarFile{"manifest.json", mmrManifest(3, "entity_id", "o")})}}, archive.ErrInvalidManifest},
		{"no entity", fstest.MapFS{"export-manifest.tgz": {Data: buildPart(t, tarFile{"manifest.json", mmrManifest(2, "user_id", "o")})}}, archive.ErrInvalidManifest},
		{"no media", fstest.MapFS{"export-manifest.tgz": {Data: buildPart(t, tarFile{"manifest.json", []byte(`{"version":2,"entity_id":"o"}`)})}}, archive.ErrInvalidManifest},
		{"not json", fstest.MapFS{"export-manifest.tgz": {Data: buildPart(t, tarFile{"manifest.json", []byte(`{`)})}}, archive.ErrInvalidManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := archive.Open(ctx, tc.fsys); !errors.Is(err, tc.want) {
				t.Errorf("Open = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEachHandlerErrorStops: an error from the handler ends Each with it.
func TestEachHandlerErrorStops(t *testing.T) {
	a := []byte("a")
	fsys := fstest.MapFS{"export-part-1.tgz": {Data: buildPart(t, tarFile{"o__a", a}, tarFile{"o__b", a},
		tarFile{"manifest.json", mmrManifest(2, "entity_id", "o", mmrRecord("o", "a", "o__a", a, ""), mmrRecord("o", "b", "o__b", a, ""))})}}
	r, err := archive.Open(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("store full")
	calls := 0
	err = r.Each(context.Background(), func(archive.Record, io.Reader) error { calls++; return stop },
		func(rec archive.Record, err error) { t.Errorf("problem %s: %v", rec.MXC(), err) })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Each = %v after %d calls, want store full after 1", err, calls)
	}
}
