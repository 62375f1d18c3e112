package media

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// Stat returns the record of m, or an error wrapping ErrNotFound: also
// for deleted media (a tombstone), so no read path serves it.
func (s *Store) Stat(m matrix.MXC) (Media, error) {
	// A shared index's records are not cached: another node may change
	// them at any time (shared.go).
	var rec Media
	ok := false
	if !s.idx.Shared() {
		rec, ok = s.records.get(m)
	}
	if !ok {
		gen := s.records.begin()
		var err error
		rec, err = s.readMedia(m)
		if errors.Is(err, index.ErrNotFound) {
			return rec, fmt.Errorf("%w: %s", ErrNotFound, m)
		}
		if err != nil {
			return rec, err
		}
		s.records.add(m, rec, gen)
	}
	if rec.Deleted {
		return Media{}, fmt.Errorf("%w: %s was deleted", ErrNotFound, m)
	}
	return rec, nil
}

// Open returns the record of m and a reader over its content. The reader
// must be closed.
func (s *Store) Open(m matrix.MXC) (*Reader, Media, error) {
	rec, err := s.Stat(m)
	if err != nil {
		return nil, rec, err
	}
	if rec.Pending {
		return nil, rec, fmt.Errorf("%w: %s has no content yet", ErrNotFound, m)
	}
	r, err := s.OpenMedia(rec)
	return r, rec, err
}

// OpenObject returns a reader over the content of object h. Every chunk
// is checked against its hash before the reader gives out any of its bytes
// (see Reader).
func (s *Store) OpenObject(h cas.Hash) (*Reader, error) {
	return s.openObject(h, "object "+h.String())
}

// OpenMedia is OpenObject for the content of rec: damage found while
// reading is logged and recorded with rec's mxc:// URI.
func (s *Store) OpenMedia(rec Media) (*Reader, error) {
	return s.openObject(rec.Object, rec.MXC.String())
}

func (s *Store) openObject(h cas.Hash, what string) (*Reader, error) {
	man, ok := s.manifests.get(h)
	if !ok {
		var err error
		if man, err = s.idx.Manifest(h); err != nil {
			return nil, fmt.Errorf("media: object %s: %w", h.Short(), err)
		}
		s.manifests.add(h, man)
	}
	return newReader(s, h, man, what), nil
}

// openInline reads the inline chunk ref of object obj from the index and
// checks it against its hash: damage is an error wrapping cas.ErrCorrupt
// (wrong bytes) or cas.ErrNotFound (none), as a chunk file's would be.
func (s *Store) openInline(obj cas.Hash, ref index.ChunkRef) (cas.VerifiedChunk, error) {
	data, err := s.idx.InlineChunk(obj)
	if errors.Is(err, index.ErrNotFound) {
		return cas.VerifiedChunk{}, fmt.Errorf("%w: inline chunk %s of object %s", cas.ErrNotFound, ref.Hash.Short(), obj.Short())
	}
	if err != nil {
		return cas.VerifiedChunk{}, err
	}
	if len(data) != int(ref.Len) || cas.Sum(data) != ref.Hash {
		return cas.VerifiedChunk{}, fmt.Errorf("%w: inline chunk %s of object %s holds other bytes", cas.ErrCorrupt, ref.Hash.Short(), obj.Short())
	}
	return cas.VerifiedChunk{Data: data}, nil
}

// Reader reads an object from its chunk files: an io.ReadSeeker for
// http.ServeContent (ranges). Each chunk it reads from is first checked
// against its hash (cas.Verifier): read whole into the reader's buffer and
// hashed, then served from that buffer, or, when the same file was verified
// within the last seconds and has not changed, read from (or spliced
// from) the file. A damaged chunk (wrong content, short, missing)
// gives an error wrapping ErrDamaged before any of its bytes, and Err keeps
// it, unless the store's repair source gives the chunk again: the read then
// goes on with its good bytes (readrepair.go). Not safe for concurrent use.
type Reader struct {
	s       *Store
	obj     cas.Hash // the object, whose inline chunk is under its name
	what    string   // the media or object, for logs and damage records
	refs    []index.ChunkRef
	offsets []int64 // offsets[i] is where chunk i starts; offsets[len] = size
	pos     int64
	cur     cas.VerifiedChunk
	curIdx  int
	curOff  int64   // the offset of cur's file (0 when opened: see cas.Store.OpenChunk); only WriteTo moves it
	buf     *[]byte // from chunkBufs, returned at Close
	err     error   // the first damage found
}

var (
	_ io.ReadSeekCloser = (*Reader)(nil)
	_ io.WriterTo       = (*Reader)(nil)
)

// chunkBufs holds chunk-sized buffers for verified reads.
var chunkBufs = sync.Pool{New: func() any { return new([]byte) }}

func newReader(s *Store, obj cas.Hash, m index.Manifest, what string) *Reader {
	off := make([]int64, len(m.Chunks)+1)
	for i, c := range m.Chunks {
		off[i+1] = off[i] + int64(c.Len)
	}
	return &Reader{s: s, obj: obj, what: what, refs: m.Chunks, offsets: off, curIdx: -1}
}

// Size returns the object's length.
func (r *Reader) Size() int64 { return r.offsets[len(r.refs)] }

// Err returns the damage the reader found (wrapping ErrDamaged), or nil.
// A handler that gave the reader to code that drops read errors
// (http.ServeContent) asks it afterwards.
func (r *Reader) Err() error { return r.err }

// Check is for a reader about to be read to its end: it fails when a
// chunk from the current position on is already recorded as damaged, and
// verifies the chunk at the current position now, so that damage there is
// reported before anything is sent. Reading then starts from the verified
// chunk without reading it again.
func (r *Reader) Check() error {
	if r.pos >= r.Size() {
		return nil
	}
	i := sort.Search(len(r.refs), func(i int) bool { return r.offsets[i+1] > r.pos })
	if err := r.s.damage.check(r.what, r.refs[i:]); err != nil && !r.repairRecorded(i) {
		r.err = cmp.Or(r.err, err)
		return err
	}
	_, err := r.load(r.pos)
	return err
}

// load makes the chunk holding offset pos current, verified, and returns
// its index.
func (r *Reader) load(pos int64) (int, error) {
	i := sort.Search(len(r.refs), func(i int) bool { return r.offsets[i+1] > pos })
	if i == r.curIdx {
		return i, nil
	}
	r.cur.Close()
	r.cur, r.curIdx = cas.VerifiedChunk{}, -1
	if r.buf == nil {
		r.buf = chunkBufs.Get().(*[]byte)
	}
	ref := r.refs[i]
	if err := r.s.damage.check(r.what, r.refs[i:i+1]); err != nil {
		if r.repair(i) {
			return i, nil
		}
		r.err = cmp.Or(r.err, err)
		return i, err
	}
	var c cas.VerifiedChunk
	var err error
	if ref.Inline {
		c, err = r.s.openInline(r.obj, ref)
	} else {
		c, err = r.s.verifier.Open(ref.Hash, int64(ref.Len), *r.buf)
	}
	if err != nil {
		if cas.IsDamage(err) {
			if ref.Inline {
				err = r.s.damage.foundInline(r.what, ref.Hash, err)
			} else {
				err = r.s.damage.found(r.what, ref.Hash, err)
			}
			if r.repair(i) {
				return i, nil
			}
			r.err = cmp.Or(r.err, err)
		}
		return i, err
	}
	if c.Data != nil && cap(c.Data) > cap(*r.buf) {
		*r.buf = c.Data[:0]
	}
	r.cur, r.curIdx, r.curOff = c, i, 0
	return i, nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.Size() {
		return 0, io.EOF
	}
	i, err := r.load(r.pos)
	if err != nil {
		return 0, err
	}
	within := r.pos - r.offsets[i]
	if left := r.offsets[i+1] - r.pos; int64(len(p)) > left {
		p = p[:left]
	}
	var n int
	if r.cur.Data != nil {
		n = copy(p, r.cur.Data[within:])
	} else if n, err = r.cur.Chunk.ReadAt(p, within); errors.Is(err, io.EOF) {
		if n < len(p) {
			// Shrunk since it was checked: damage after all.
			if err = r.shrank(i); err != nil {
				return 0, err
			}
			n = copy(p, r.cur.Data[within:]) // repaired
		}
		err = nil
	}
	r.pos += int64(n)
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

// Close releases the open chunk and the buffer.
func (r *Reader) Close() error {
	err := r.cur.Close()
	r.cur, r.curIdx = cas.VerifiedChunk{}, -1
	if r.buf != nil {
		chunkBufs.Put(r.buf)
		r.buf = nil
	}
	return err
}

// WriteTo writes the object from the current position to the end, one
// verified chunk at a time, and stops before the first damaged chunk. An
// io.ReaderFrom (an http.ResponseWriter) is given the rest as Spans, so
// that the connection can splice the chunk files to the socket in large
// writes. Otherwise a chunk read and hashed now is written from the buffer
// it was read into, and one trusted by its file's identity is copied from
// its *os.File (cas.Filer). It implements io.WriterTo.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r.Spans())
	}
	var total int64
	for r.pos < r.Size() {
		i, err := r.load(r.pos)
		if err != nil {
			return total, err
		}
		within := r.pos - r.offsets[i]
		want := r.offsets[i+1] - r.pos
		var n int64
		if r.cur.Data != nil {
			var m int
			m, err = w.Write(r.cur.Data[within:])
			n = int64(m)
		} else {
			// A writer without ReadFrom: an *os.File (in an
			// io.LimitedReader) still lets io.Copy use its fastest path.
			var src io.ReadSeeker = r.cur.Chunk
			if f, ok := r.cur.Chunk.(cas.Filer); ok {
				src = f.File()
			}
			if within != r.curOff {
				if _, err := src.Seek(within, io.SeekStart); err != nil {
					return total, err
				}
			}
			n, err = io.Copy(w, io.LimitReader(src, want))
			r.curOff = within + n
			if err == nil && n < want {
				err = r.shrank(i) // when repaired, the loop goes on from the good bytes
			}
		}
		total += n
		r.pos += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Span is a verified piece of an object ready to send: N bytes of File
// from Off, or Data. A span with neither is to be read with Spans.Read.
type Span struct {
	File *os.File
	Off  int64
	N    int64
	Data []byte
}

// Spans is the rest of a Reader as verified spans, for a writer that
// sends files itself (splice). It reads as the Reader does too.
type Spans struct{ r *Reader }

// Spans returns the reader's rest as spans.
func (r *Reader) Spans() *Spans { return &Spans{r: r} }

// Read implements io.Reader.
func (s *Spans) Read(p []byte) (int, error) { return s.r.Read(p) }

// Remaining returns the bytes from the current position to the end.
func (s *Spans) Remaining() int64 { return s.r.Size() - s.r.pos }

// Next verifies the chunk at the current position and returns the next
// span of at most max bytes from it, counted as read (except a span to be
// read with Read). At the end it returns io.EOF.
func (s *Spans) Next(max int64) (Span, error) {
	r := s.r
	if r.pos >= r.Size() {
		return Span{}, io.EOF
	}
	i, err := r.load(r.pos)
	if err != nil {
		return Span{}, err
	}
	within := r.pos - r.offsets[i]
	n := min(r.offsets[i+1]-r.pos, max)
	sp := Span{Off: within, N: n}
	if r.cur.Data != nil {
		sp.Data = r.cur.Data[within : within+n]
	} else if f, ok := r.cur.Chunk.(cas.Filer); ok {
		sp.File = f.File()
	} else {
		return sp, nil
	}
	r.pos += n
	return sp, nil
}

// Shrank records the damage of a span's file that ended before the span.
// The span's bytes were counted as read, so the stream cannot go on: the
// next read of the chunk repairs it when the store has a repair source.
func (s *Spans) Shrank(sp Span) error {
	r := s.r
	i := sort.Search(len(r.refs), func(i int) bool { return r.offsets[i+1] >= r.pos }) // r.pos is past sp
	err := r.s.damage.found(r.what, r.refs[i].Hash, errShrank(r.refs[i].Hash))
	r.err = cmp.Or(r.err, err)
	return err
}

// shrank records that chunk i, trusted by its file's identity, ended
// early while read, and repairs it from the repair source when it can:
// then the chunk is current, from memory, and shrank returns nil.
func (r *Reader) shrank(i int) error {
	err := r.s.damage.found(r.what, r.refs[i].Hash, errShrank(r.refs[i].Hash))
	if r.repair(i) {
		return nil
	}
	r.err = cmp.Or(r.err, err)
	return err
}

func errShrank(h cas.Hash) error {
	return fmt.Errorf("%w: chunk %s shrank while read", cas.ErrCorrupt, h.Short())
}
