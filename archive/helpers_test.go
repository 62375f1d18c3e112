package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"sort"
	"testing"
	"testing/fstest"

	"github.com/mxcas/mxcas/archive"
)

// memDir is a CreateFunc target and an fs.FS at once.
type memDir struct{ fs fstest.MapFS }

func newMemDir() *memDir { return &memDir{fs: fstest.MapFS{}} }

func (d *memDir) create(name string) (io.WriteCloser, error) {
	return &memFile{dir: d, name: name}, nil
}

type memFile struct {
	bytes.Buffer
	dir  *memDir
	name string
}

func (f *memFile) Close() error {
	f.dir.fs[f.name] = &fstest.MapFile{Data: bytes.Clone(f.Bytes()), Mode: 0o644}
	return nil
}

// tarFile is one member of a hand-built part.
type tarFile struct {
	name string
	body []byte
}

// buildPart writes a tar+gzip part the way MMR does, independently of the
// package's writer.
func buildPart(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// readResult is what Each delivered.
type readResult struct {
	bodies   map[string][]byte // by mxc URI
	problems map[string]error  // by mxc URI
	err      error
}

// readAll opens fsys and reads every media into memory.
func readAll(t *testing.T, fsys fs.FS) (*archive.Reader, readResult) {
	t.Helper()
	r, err := archive.Open(context.Background(), fsys)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	res := readResult{bodies: map[string][]byte{}, problems: map[string]error{}}
	res.err = r.Each(context.Background(), func(rec archive.Record, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if _, dup := res.bodies[rec.MXC()]; dup {
			t.Errorf("%s delivered twice", rec.MXC())
		}
		res.bodies[rec.MXC()] = b
		return nil
	}, func(rec archive.Record, err error) {
		if _, dup := res.problems[rec.MXC()]; dup {
			t.Errorf("%s reported twice: %v", rec.MXC(), err)
		}
		res.problems[rec.MXC()] = err
	})
	return r, res
}

func wantProblem(t *testing.T, res readResult, mxc string, want error) {
	t.Helper()
	got := res.problems[mxc]
	if !errors.Is(got, want) {
		t.Errorf("problem for %s = %v, want %v", mxc, got, want)
	}
	if _, ok := res.bodies[mxc]; ok {
		t.Errorf("%s delivered despite %v", mxc, want)
	}
}

func names(fsys fstest.MapFS) []string {
	var n []string
	for k := range fsys {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// untar reads a whole small part into memory.
func untar(t testing.TB, part []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(part))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}
