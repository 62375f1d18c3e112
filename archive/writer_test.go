package archive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/archive"
)

func fileCreate(dir string) archive.CreateFunc {
	return func(name string) (io.WriteCloser, error) { return os.Create(filepath.Join(dir, name)) }
}

// TestRoundTrip writes 50 media, some of several MiB, across small parts on
// disk and reads them back byte for byte with their manifest fields.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	created := time.UnixMilli(1_700_000_000_123)
	w, err := archive.NewWriter(archive.Options{
		EntityID: "@alice:example.org", PartSize: 1 << 20, Create: fileCreate(dir),
		Now: func() time.Time { return created },
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]archive.Entry{}
	bodies := map[string][]byte{}
	types := []string{"image/png", "image/jpeg; charset=binary", "application/x-unknown", "text/plain"}
	for i := range 50 {
		size := rng.IntN(64 << 10)
		if i%10 == 3 {
			size = 2<<20 + rng.IntN(2<<20) // multi-MiB
		}
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		e := archive.Entry{
			Origin: "example.org", MediaID: fmt.Sprintf("media%02d", i), Name: fmt.Sprintf("<b>file %d</b>.bin", i),
			ContentType: types[i%len(types)], Size: int64(size), CreatedTS: 1_600_000_000_000 + int64(i),
			Uploader: "@alice:example.org",
		}
		if i == 7 {
			e.Origin, e.Uploader = "remote.example", ""
		}
		rec, err := w.AddMedia(context.Background(), e, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("AddMedia %d: %v", i, err)
		}
		if got, want := rec.SHA256, sha(body); got != want {
			t.Fatalf("record sha256 = %s, want %s", got, want)
		}
		key := "mxc://" + e.Origin + "/" + e.MediaID
		want[key], bodies[key] = e, body
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, e := range ents {
		parts = append(parts, e.Name())
	}
	if len(parts) < 4 || !contains(parts, archive.ManifestPart) {
		t.Fatalf("parts = %v, want several export-part-N.tgz and %s", parts, archive.ManifestPart)
	}
	for n := 1; n < len(parts); n++ {
		if !contains(parts, fmt.Sprintf("export-part-%d.tgz", n)) {
			t.Errorf("parts = %v: export-part-%d.tgz missing", parts, n)
		}
	}

	r, res := readAll(t, os.DirFS(dir))
	if res.err != nil || len(res.problems) != 0 {
		t.Fatalf("Each: %v, problems %v", res.err, res.problems)
	}
	m := r.Manifest()
	if m.Version != 2 || m.EntityID != "@alice:example.org" || m.CreatedTS != created.UnixMilli() || len(m.Media) != 50 {
		t.Errorf("manifest = v%d %q %d with %d media", m.Version, m.EntityID, m.CreatedTS, len(m.Media))
	}
	for key, e := range want {
		if !bytes.Equal(res.bodies[key], bodies[key]) {
			t.Errorf("%s: body differs (%d bytes, want %d)", key, len(res.bodies[key]), len(bodies[key]))
		}
		rec := m.Media[key]
		wantRec := archive.Record{
			Name: e.Name, FileName: archive.ArchivedName(e.Origin, e.MediaID, e.ContentType), SizeBytes: e.Size,
			ContentType: e.ContentType, SHA256: sha(bodies[key]), Origin: e.Origin, MediaID: e.MediaID,
			CreatedTS: e.CreatedTS, Uploader: e.Uploader,
		}
		if rec == nil || *rec != wantRec {
			t.Errorf("%s: record %+v, want %+v", key, rec, wantRec)
		}
	}
	if got := m.Media["mxc://example.org/media00"].FileName; got != "example.org__media00.png" {
		t.Errorf("file_name = %q, want example.org__media00.png", got)
	}
	if got := m.Media["mxc://example.org/media01"].FileName; got != "example.org__media01.jpg" {
		t.Errorf("file_name = %q, want example.org__media01.jpg", got)
	}
	if got := m.Media["mxc://example.org/media02"].FileName; got != "example.org__media02" {
		t.Errorf("file_name = %q, want no extension for an unknown type", got)
	}
}

// TestManifestPart checks the manifest part's members, the JSON field names
// and that index.html escapes what it shows.
func TestManifestPart(t *testing.T) {
	d := newMemDir()
	w, err := archive.NewWriter(archive.Options{EntityID: "example.org", Create: d.create,
		Now: func() time.Time { return time.UnixMilli(42) }})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("hello")
	e := archive.Entry{Origin: "example.org", MediaID: "abc", Name: `<script>alert("x")</script>`, ContentType: "text/plain",
		Size: 5, CreatedTS: 7, Uploader: "@u:example.org", S3URL: "s3://b/k"}
	if _, err := w.AddMedia(context.Background(), e, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(d.fs), " "), "export-manifest.tgz export-part-1.tgz"; got != want {
		t.Fatalf("parts = %q, want %q", got, want)
	}
	files := untar(t, d.fs[archive.ManifestPart].Data)
	var raw map[string]any
	if err := json.Unmarshal(files["manifest.json"], &raw); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"created_ts":42,"entity_id":"example.org","media":{"mxc://example.org/abc":{"content_type":"text/plain","created_ts":7,"file_name":"example.org__abc.txt","media_id":"abc","name":"\u003cscript\u003ealert(\"x\")\u003c/script\u003e","origin":"example.org","s3_url":"s3://b/k","sha256":"` + sha(body) + `","size_bytes":5,"uploader":"@u:example.org"}},"version":2}`
	if got, _ := json.Marshal(raw); string(got) != wantJSON {
		t.Errorf("manifest.json =\n%s\nwant\n%s", got, wantJSON)
	}
	index := string(files["index.html"])
	if strings.Contains(index, "<script>") || !strings.Contains(index, "&lt;script&gt;") {
		t.Errorf("index.html does not escape the name:\n%s", index)
	}
	if !strings.Contains(index, "mxc://example.org/abc") || !regexp.MustCompile(`5 B`).MatchString(index) {
		t.Errorf("index.html lacks the media row:\n%s", index)
	}
	if files := untar(t, d.fs["export-part-1.tgz"].Data); !bytes.Equal(files["example.org__abc.txt"], body) {
		t.Errorf("export-part-1.tgz = %v, want example.org__abc.txt", files)
	}
}

// TestWriterRejects covers entries that cannot be written and bodies of
// the wrong size.
func TestWriterRejects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		e    archive.Entry
		body string
		want error
	}{
		{"slash in origin", archive.Entry{Origin: "../x", MediaID: "a", Size: 1}, "x", archive.ErrInvalidEntry},
		{"dotdot origin", archive.Entry{Origin: "..", MediaID: "a", Size: 1}, "x", archive.ErrInvalidEntry},
		{"bad media id", archive.Entry{Origin: "o", MediaID: "a/../b", Size: 1}, "x", archive.ErrInvalidEntry},
		{"negative size", archive.Entry{Origin: "o", MediaID: "a", Size: -1}, "x", archive.ErrInvalidEntry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newMemDir()
			w, err := archive.NewWriter(archive.Options{EntityID: "o", Create: d.create})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.AddMedia(ctx, tc.e, strings.NewReader(tc.body)); !errors.Is(err, tc.want) {
				t.Fatalf("AddMedia = %v, want %v", err, tc.want)
			}
			if len(d.fs) != 0 {
				t.Errorf("rejected entry created parts %v", names(d.fs))
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close after a rejected entry: %v", err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		size int64
	}{{"short body", 5}, {"long body", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newMemDir()
			w, _ := archive.NewWriter(archive.Options{EntityID: "o", Create: d.create})
			_, err := w.AddMedia(ctx, archive.Entry{Origin: "o", MediaID: "a", Size: tc.size}, strings.NewReader("abc"))
			if !errors.Is(err, archive.ErrSizeMismatch) {
				t.Fatalf("AddMedia = %v, want ErrSizeMismatch", err)
			}
			if err := w.Close(); !errors.Is(err, archive.ErrClosed) {
				t.Errorf("Close after a failed write = %v, want ErrClosed", err)
			}
			if _, ok := d.fs[archive.ManifestPart]; ok {
				t.Error("a failed archive got a manifest")
			}
		})
	}
	t.Run("duplicate", func(t *testing.T) {
		d := newMemDir()
		w, _ := archive.NewWriter(archive.Options{EntityID: "o", Create: d.create})
		e := archive.Entry{Origin: "o", MediaID: "a", Size: 1}
		if _, err := w.AddMedia(ctx, e, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := w.AddMedia(ctx, e, strings.NewReader("x")); !errors.Is(err, archive.ErrDuplicate) {
			t.Fatalf("second AddMedia = %v, want ErrDuplicate", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, res := readAll(t, d.fs)
		if len(res.bodies) != 1 || res.err != nil {
			t.Errorf("read %d media (err %v), want 1", len(res.bodies), res.err)
		}
	})
	t.Run("options", func(t *testing.T) {
		for _, o := range []archive.Options{{Create: newMemDir().create}, {EntityID: "o"}, {EntityID: "o", Create: newMemDir().create, PartSize: -1}} {
			if _, err := archive.NewWriter(o); err == nil {
				t.Errorf("NewWriter(%+v) succeeded", o)
			}
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// abortFile is a part destination that publishes on Close, like a temp
// file renamed into place.
type abortFile struct {
	memFile
	aborted bool
}

func (f *abortFile) Abort() { f.aborted = true }

// TestWriterAbortsFailedPart: a part abandoned after an error is aborted,
// not closed, when its destination is an Aborter, so it is never published.
func TestWriterAbortsFailedPart(t *testing.T) {
	d := newMemDir()
	var parts []*abortFile
	w, _ := archive.NewWriter(archive.Options{EntityID: "o", Create: func(name string) (io.WriteCloser, error) {
		f := &abortFile{memFile: memFile{dir: d, name: name}}
		parts = append(parts, f)
		return f, nil
	}})
	_, err := w.AddMedia(context.Background(), archive.Entry{Origin: "o", MediaID: "a", Size: 5}, strings.NewReader("abc"))
	if !errors.Is(err, archive.ErrSizeMismatch) {
		t.Fatalf("AddMedia = %v, want ErrSizeMismatch", err)
	}
	if len(parts) != 1 || !parts[0].aborted || len(d.fs) != 0 {
		t.Fatalf("parts %d, aborted %v, published %v; want the one part aborted and none published", len(parts), len(parts) == 1 && parts[0].aborted, names(d.fs))
	}
}
