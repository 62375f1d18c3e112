// Package nearcopy makes the near-copies the dedup benchmarks upload: a
// file with a few bytes prepended (a re-tagged or re-muxed copy shifts
// everything after its header) or a few KiB changed in the middle (an
// edited copy).
package nearcopy

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Sizes of the changes, and the size above which a file gets variants.
const (
	Min        = 64 << 10 // files larger than this get near-copy variants
	PrependLen = 137
	ChangedLen = 4 << 10
)

// Variant says how an upload's body derives from a file.
type Variant int

const (
	Original   Variant = iota
	Prepended          // PrependLen bytes before the file
	MidChanged         // ChangedLen bytes in the middle inverted
)

// Variants are the near-copies, in the order the tables show them.
var Variants = []Variant{Prepended, MidChanged}

func (v Variant) String() string {
	switch v {
	case Prepended:
		return fmt.Sprintf("+%d B prepended", PrependLen)
	case MidChanged:
		return fmt.Sprintf("%d KiB changed mid-file", ChangedLen>>10)
	}
	return "original"
}

// prefix is what the prepended variants start with.
var prefix = func() []byte {
	b := make([]byte, PrependLen)
	rand.NewChaCha8([32]byte{'m', 'x', 'c', 'a', 's'}).Read(b)
	return b
}()

// Body returns variant v of fh, a file of size bytes, and its length. It
// reads from fh, which must stay open while the body is read.
func Body(fh *os.File, size int64, v Variant) (io.Reader, int64, error) {
	switch v {
	case Prepended:
		return io.MultiReader(bytes.NewReader(prefix), fh), size + PrependLen, nil
	case MidChanged:
		mid := size/2 - ChangedLen/2
		patch := make([]byte, ChangedLen)
		if _, err := fh.ReadAt(patch, mid); err != nil {
			return nil, 0, err
		}
		for i := range patch {
			patch[i] ^= 0xff // every byte differs from the original
		}
		end := mid + ChangedLen
		return io.MultiReader(io.NewSectionReader(fh, 0, mid), bytes.NewReader(patch), io.NewSectionReader(fh, end, size-end)), size, nil
	}
	return fh, size, nil
}

// File is a corpus file.
type File struct {
	Path string
	Size int64
}

// List returns every regular file under root in lexical order.
func List(root string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, File{Path: path, Size: info.Size()})
		return nil
	})
	return files, err
}
