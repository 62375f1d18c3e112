package nearcopy

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestBody(t *testing.T) {
	orig := make([]byte, Min+1000)
	for i := range orig {
		orig[i] = byte(i * 7)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != path || files[0].Size != int64(len(orig)) {
		t.Fatalf("List = %+v, want one file %s of %d bytes", files, path, len(orig))
	}
	for _, v := range []Variant{Original, Prepended, MidChanged} {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, size, err := Body(fh, int64(len(orig)), v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(got)) != size {
			t.Errorf("%s: read %d bytes, Body said %d", v, len(got), size)
		}
		switch v {
		case Original:
			if !bytes.Equal(got, orig) {
				t.Errorf("%s: content differs from the file", v)
			}
		case Prepended:
			if !bytes.Equal(got[PrependLen:], orig) || len(got) != len(orig)+PrependLen {
				t.Errorf("%s: the file does not follow %d prepended bytes", v, PrependLen)
			}
		case MidChanged:
			diff := 0
			for i := range orig {
				if got[i] != orig[i] {
					diff++
				}
			}
			mid := len(orig)/2 - ChangedLen/2
			if diff != ChangedLen || got[mid] == orig[mid] || got[mid+ChangedLen-1] == orig[mid+ChangedLen-1] {
				t.Errorf("%s: %d bytes differ, want the %d from offset %d", v, diff, ChangedLen, mid)
			}
		}
	}
}
