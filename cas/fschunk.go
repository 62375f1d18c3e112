package cas

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// OpenChunk opens chunk h for reading, as a Chunk whose File is the chunk
// file (Filer). A missing chunk is ErrNotFound. The bytes are not checked.
// The file may be one a closed Chunk of h left in the store's descriptor
// pool (still linked under the chunk's name, rewound).
func (s *Store) OpenChunk(h Hash) (Chunk, error) {
	for f := s.fds.take(h); f != nil; f = s.fds.take(h) {
		id, links, err := statFile(f)
		if err == nil && links > 0 {
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				return &fileChunk{s: s, h: h, f: f, id: id}, nil
			}
		}
		f.Close() // unlinked (deleted, replaced) or failing: open afresh
	}
	f, err := s.open(h)
	if err != nil {
		return nil, err
	}
	id, _, err := statFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cas: stat chunk %s: %w", h.Short(), err)
	}
	return &fileChunk{s: s, h: h, f: f, id: id}, nil
}

// open opens chunk h's file. A missing chunk is ErrNotFound. A read-only
// store reads without updating access times (see openReading).
func (s *Store) open(h Hash) (*os.File, error) {
	f, err := s.openReading(s.Path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	return f, err
}

// BeginBatch starts a batch: NewBatch, as the BatchWriter role.
func (s *Store) BeginBatch() WriteBatch { return s.NewBatch() }

// fileChunk is the filesystem Store's Chunk: the chunk file and its
// identity (size included) when opened. Close gives the file to the
// store's descriptor pool.
type fileChunk struct {
	s  *Store
	h  Hash
	f  *os.File
	id identity
}

func (c *fileChunk) Read(p []byte) (int, error)                   { return c.f.Read(p) }
func (c *fileChunk) ReadAt(p []byte, off int64) (int, error)      { return c.f.ReadAt(p, off) }
func (c *fileChunk) Seek(offset int64, whence int) (int64, error) { return c.f.Seek(offset, whence) }
func (c *fileChunk) Close() error                                 { return c.s.fds.give(c.h, c.f) }
func (c *fileChunk) Size() int64                                  { return c.id.size }

// File returns the chunk file (Filer).
func (c *fileChunk) File() *os.File { return c.f }

// WriteTo hands the file itself to w, so io.Copy to a TCP connection (or an
// http.ResponseWriter on one) still uses sendfile through the wrapper.
func (c *fileChunk) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, c.f) }
