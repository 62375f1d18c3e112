package media_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
)

// This file writes archives as matrix-media-repo does, independently of
// package archive, from MMR's format (archival/v2archive, and the v1
// exporter before it): gzip'd tar parts export-part-N.tgz whose gzip
// header names export-part-N.tar, mode 0644 entries dated by the media's
// creation, files named <origin>__<mediaId><ext>, and manifest.json (with
// index.html) in export-manifest.tgz, or, in the old layout, first in
// export-part-1.tgz. manifest.json is what json.Encoder writes.

// mmrMedia is one media an MMR archive holds. Manifest fields that a test
// sets to lie about the file (FileName, Size, SHA256) default to the truth.
type mmrMedia struct {
	Origin, MediaID, Name, ContentType, Uploader, S3URL string
	Created                                             int64
	Body                                                []byte
	FileName                                            string // default <origin>__<mediaId>.bin
	Size                                                int64  // default len(Body); -1 means 0
	SHA256                                              string // default sha256(Body)
	NoFile                                              bool   // listed, but no tar entry
	FileBody                                            []byte // what the tar entry holds instead of Body
}

func (m mmrMedia) mxc() string { return "mxc://" + m.Origin + "/" + m.MediaID }

// mmrRecord is an MMR ManifestRecord as JSON: "name" is the uploader's
// name, "file_name" the name inside the archive.
func (m mmrMedia) mmrRecord() map[string]any {
	fileName, size, sum := m.FileName, m.Size, m.SHA256
	if fileName == "" {
		fileName = m.Origin + "__" + m.MediaID + ".bin"
	}
	switch size {
	case 0:
		size = int64(len(m.Body))
	case -1:
		size = 0
	}
	if sum == "" {
		h := sha256.Sum256(m.Body)
		sum = hex.EncodeToString(h[:])
	}
	return map[string]any{
		"name": m.Name, "file_name": fileName, "size_bytes": size, "content_type": m.ContentType,
		"s3_url": m.S3URL, "sha256": sum, "origin": m.Origin, "media_id": m.MediaID,
		"created_ts": m.Created, "uploader": m.Uploader,
	}
}

// tarEntry is one member of a part.
type tarEntry struct {
	name string
	body []byte
}

// mmrPart writes dir/name as MMR does: tar in gzip, the gzip header naming
// the tar.
func mmrPart(t testing.TB, dir, name string, entries ...tarEntry) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	gz.Name = strings.TrimSuffix(name, ".tgz") + ".tar"
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), ModTime: time.UnixMilli(1700000000000)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// mmrLayout says where writeMMR puts the manifest and in which version.
type mmrLayout struct {
	v1        bool  // version 1, user_id instead of entity_id
	inPart    bool  // manifest.json and index.html first in export-part-1.tgz (old exporter)
	partBytes int64 // media bytes per part (0: one part)
	extra     []tarEntry
}

// writeMMR writes an archive of ms for entity into dir (the media's files
// in order, parts rotated as MMR rotates them).
func writeMMR(t testing.TB, dir, entity string, l mmrLayout, ms ...mmrMedia) {
	t.Helper()
	records := make(map[string]any, len(ms))
	var index strings.Builder
	index.WriteString("<html><body><table>\n")
	for _, m := range ms {
		rec := m.mmrRecord()
		records[m.mxc()] = rec
		index.WriteString("<tr><td>" + m.mxc() + "</td><td>" + rec["file_name"].(string) + "</td></tr>\n")
	}
	index.WriteString("</table></body></html>\n")
	manifest := map[string]any{"version": 2, "entity_id": entity, "created_ts": int64(1700000000000), "media": records}
	if l.v1 {
		manifest = map[string]any{"version": 1, "user_id": entity, "created_ts": int64(1700000000000), "media": records}
	}
	var mj strings.Builder
	if err := json.NewEncoder(&mj).Encode(manifest); err != nil {
		t.Fatal(err)
	}
	meta := []tarEntry{{"manifest.json", []byte(mj.String())}, {"index.html", []byte(index.String())}}

	part, used := 1, int64(0)
	current := append([]tarEntry{}, l.extra...)
	if l.inPart {
		current = append(meta, current...)
	}
	for _, m := range ms {
		if m.NoFile {
			continue
		}
		body := m.Body
		if m.FileBody != nil {
			body = m.FileBody
		}
		current = append(current, tarEntry{m.mmrRecord()["file_name"].(string), body})
		used += int64(len(body))
		if l.partBytes > 0 && used >= l.partBytes {
			mmrPart(t, dir, partName(part), current...)
			part, used, current = part+1, 0, nil
		}
	}
	// MMR's Finish always writes the part it has open, even empty.
	mmrPart(t, dir, partName(part), current...)
	if !l.inPart {
		mmrPart(t, dir, "export-manifest.tgz", meta...)
	}
}

func partName(n int) string { return "export-part-" + strconv.Itoa(n) + ".tgz" }

// localStore opens a store serving server and server2 with small chunks.
func localStore(t testing.TB) (*media.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	return openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams,
		Local: func(name string) bool { return name == server || name == "server2" }}), dir
}

// importDir imports the archive in dir into s, failing the test on an
// error, and returns the report and the problems by mxc URI.
func importDir(t testing.TB, s *media.Store, dir string, o media.ArchiveImportOptions) (media.ArchiveImportReport, map[string]media.ArchiveProblem) {
	t.Helper()
	ps := map[string]media.ArchiveProblem{}
	o.Problem = func(p media.ArchiveProblem) {
		if _, dup := ps[p.MXC]; dup {
			t.Errorf("%s reported twice: %+v and %+v", p.MXC, ps[p.MXC], p)
		}
		ps[p.MXC] = p
	}
	rep, err := s.ImportArchive(context.Background(), os.DirFS(dir), o)
	if err != nil {
		t.Fatalf("ImportArchive(%s): %v", dir, err)
	}
	return rep, ps
}

// checkImported fails unless m is held as the archive described it.
func checkImported(t testing.TB, s *media.Store, m mmrMedia, remote bool) {
	t.Helper()
	rec, err := s.Stat(mustMXC(m.Origin, m.MediaID))
	if err != nil {
		t.Errorf("%s: %v", m.mxc(), err)
		return
	}
	if rec.UploadName != m.Name || rec.ContentType != m.ContentType || rec.Uploader != m.Uploader ||
		rec.Created != m.Created || rec.Remote != remote || rec.Size != int64(len(m.Body)) {
		t.Errorf("%s: record %+v, want name %q type %q uploader %q created %d remote %v size %d",
			m.mxc(), rec, m.Name, m.ContentType, m.Uploader, m.Created, remote, len(m.Body))
	}
	r, err := s.OpenMedia(rec)
	if err != nil {
		t.Errorf("%s: %v", m.mxc(), err)
		return
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(b, m.Body) {
		t.Errorf("%s: read back %d bytes (%v), want %d", m.mxc(), len(b), err, len(m.Body))
	}
}

// TestImportArchiveWrittenLikeMMR imports archives written in the test
// from MMR's format, not by package archive: v2 with the manifest in
// export-manifest.tgz and an empty last part, v1 (user_id), and the old
// layout with the manifest first in a media part. IDs, bytes, names,
// types, creation times and uploaders are kept; another origin's media
// without an uploader becomes a cached remote copy.
func TestImportArchiveWrittenLikeMMR(t *testing.T) {
	ms := []mmrMedia{
		{Origin: server, MediaID: "AbCdEf123", Name: "cat.png", ContentType: "image/png", Uploader: "@alice:server",
			Created: 1600000000123, Body: randBytes(1, 70<<10), FileName: "server__AbCdEf123.png"},
		{Origin: server, MediaID: "empty", Name: "", ContentType: "text/plain", Uploader: "@alice:server",
			Created: 1600000000456, Body: []byte{}, FileName: "server__empty.txt"},
		{Origin: server, MediaID: "doc_1-x", Name: "rapport d'été.pdf", ContentType: "application/pdf", Uploader: "@alice:server",
			Created: 1600000000789, Body: randBytes(2, 3000), FileName: "server__doc_1-x.pdf"},
		{Origin: "remote.example", MediaID: "cached", Name: "r.bin", ContentType: "application/octet-stream",
			Created: 1500000000000, Body: randBytes(3, 20000)},
	}
	for _, tc := range []struct {
		name   string
		layout mmrLayout
	}{
		{"v2", mmrLayout{partBytes: 1}}, // every file its own part, then an empty one
		{"v1", mmrLayout{v1: true}},
		{"manifest in part", mmrLayout{inPart: true, partBytes: 50 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := localStore(t)
			arch := t.TempDir()
			writeMMR(t, arch, "@alice:server", tc.layout, ms...)
			rep, ps := importDir(t, s, arch, media.ArchiveImportOptions{})
			if rep.Imported != len(ms) || len(ps) != 0 || rep.Entity != "@alice:server" {
				t.Fatalf("report %+v, problems %v; want %d imported for @alice:server", rep, ps, len(ms))
			}
			for _, m := range ms {
				checkImported(t, s, m, m.Origin != server)
			}
			rep, ps = importDir(t, s, arch, media.ArchiveImportOptions{})
			if rep.Imported != 0 || rep.Present != len(ms) || len(ps) != 0 {
				t.Fatalf("second import: %+v %v, want all present", rep, ps)
			}
		})
	}
}
