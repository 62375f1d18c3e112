package media

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// Stat returns the record of m, or an error wrapping ErrNotFound.
func (s *Store) Stat(m matrix.MXC) (Record, error) {
	if rec, ok := s.records.get(m); ok {
		return rec, nil
	}
	gen := s.records.begin()
	rec, err := s.idx.Media(m.Server, m.MediaID)
	if err == nil {
		s.records.add(m, rec, gen)
	}
	if errors.Is(err, index.ErrNotFound) {
		return rec, fmt.Errorf("%w: %s", ErrNotFound, m)
	}
	return rec, err
}

// Open returns the record of m and a reader over its content. The reader
// must be closed.
func (s *Store) Open(m matrix.MXC) (*Reader, Record, error) {
	rec, err := s.Stat(m)
	if err != nil {
		return nil, rec, err
	}
	if rec.Pending {
		return nil, rec, fmt.Errorf("%w: %s has no content yet", ErrNotFound, m)
	}
	r, err := s.OpenObject(rec.Object)
	return r, rec, err
}

// OpenObject returns a reader over the content of object h.
func (s *Store) OpenObject(h cas.Hash) (*Reader, error) {
	man, ok := s.manifests.get(h)
	if !ok {
		var err error
		if man, err = s.idx.Manifest(h); err != nil {
			return nil, fmt.Errorf("media: object %s: %w", h.Short(), err)
		}
		s.manifests.add(h, man)
	}
	return newReader(s.cas, man), nil
}

// Reader reads an object from its chunk files: an io.ReadSeeker for
// http.ServeContent (ranges). Not safe for concurrent use.
type Reader struct {
	chunks  cas.Opener
	refs    []index.ChunkRef
	offsets []int64 // offsets[i] is where chunk i starts; offsets[len] = size
	pos     int64
	cur     *os.File
	curIdx  int
}

var (
	_ io.ReadSeekCloser = (*Reader)(nil)
	_ io.WriterTo       = (*Reader)(nil)
)

func newReader(o cas.Opener, m index.Manifest) *Reader {
	off := make([]int64, len(m.Chunks)+1)
	for i, c := range m.Chunks {
		off[i+1] = off[i] + int64(c.Len)
	}
	return &Reader{chunks: o, refs: m.Chunks, offsets: off, curIdx: -1}
}

// Size returns the object's length.
func (r *Reader) Size() int64 { return r.offsets[len(r.refs)] }

// Read implements io.Reader. A chunk file shorter than its manifest says
// gives io.ErrUnexpectedEOF.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.Size() {
		return 0, io.EOF
	}
	i := sort.Search(len(r.refs), func(i int) bool { return r.offsets[i+1] > r.pos })
	if i != r.curIdx {
		if r.cur != nil {
			r.cur.Close()
			r.cur = nil
		}
		f, err := r.chunks.Open(r.refs[i].Hash)
		if err != nil {
			return 0, err
		}
		r.cur, r.curIdx = f, i
	}
	within := r.pos - r.offsets[i]
	if left := r.offsets[i+1] - r.pos; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := r.cur.ReadAt(p, within)
	r.pos += int64(n)
	if err == io.EOF {
		if n < len(p) {
			return n, fmt.Errorf("media: chunk %s is shorter than its manifest says: %w", r.refs[i].Hash.Short(), io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.Size()
	default:
		return 0, errors.New("media: seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("media: seek before start")
	}
	r.pos = offset
	return offset, nil
}

// Close releases the open chunk file.
func (r *Reader) Close() error {
	if r.cur != nil {
		err := r.cur.Close()
		r.cur = nil
		r.curIdx = -1
		return err
	}
	return nil
}

// WriteTo writes the object from the current position to the end, handing
// each chunk file to w as an *os.File (an http.ResponseWriter on a TCP
// connection then sends it with sendfile, without copying through user
// space). It implements io.WriterTo.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.pos < r.Size() {
		i := sort.Search(len(r.refs), func(i int) bool { return r.offsets[i+1] > r.pos })
		f, err := r.chunks.Open(r.refs[i].Hash)
		if err != nil {
			return total, err
		}
		within := r.pos - r.offsets[i]
		want := r.offsets[i+1] - r.pos
		if within > 0 {
			if _, err := f.Seek(within, io.SeekStart); err != nil {
				f.Close()
				return total, err
			}
		}
		n, err := io.Copy(w, io.LimitReader(f, want))
		f.Close()
		total += n
		r.pos += n
		if err != nil {
			return total, err
		}
		if n < want {
			return total, fmt.Errorf("media: chunk %s is shorter than its manifest says: %w", r.refs[i].Hash.Short(), io.ErrUnexpectedEOF)
		}
	}
	return total, nil
}
