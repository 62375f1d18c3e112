package archive_test

import (
	"context"
	"io"
	"testing"
	"testing/fstest"

	"github.com/mxcas/mxcas/archive"
)

// readFuzzed opens fsys and reads everything; it must never panic, and a
// delivered body must match its record.
func readFuzzed(t *testing.T, fsys fstest.MapFS) {
	r, err := archive.Open(context.Background(), fsys)
	if err != nil {
		return
	}
	_ = r.Each(context.Background(), func(rec archive.Record, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err == nil && (int64(len(b)) != rec.SizeBytes || sha(b) != rec.SHA256) {
			t.Fatalf("%s delivered %d bytes with sha %s, record says %d %s", rec.MXC(), len(b), sha(b), rec.SizeBytes, rec.SHA256)
		}
		return nil
	}, func(archive.Record, error) {})
}

// FuzzPart feeds raw bytes as a part: gzip, tar and manifest parsing.
func FuzzPart(f *testing.F) {
	f.Fuzz(func(t *testing.T, part []byte) {
		readFuzzed(t, fstest.MapFS{"export-part-1.tgz": {Data: part}})
	})
}

// FuzzManifest feeds manifest.json text beside one media file.
func FuzzManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, manifest, file []byte) {
		readFuzzed(t, fstest.MapFS{"export-manifest.tgz": {Data: buildPart(t,
			tarFile{"o__a.png", file}, tarFile{"../o__a.png", file}, tarFile{"manifest.json", manifest})}})
	})
}
