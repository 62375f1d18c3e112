package cas

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sys/unix"
)

// VerifyOptions configure a Verifier.
type VerifyOptions struct {
	// TTL is how long a chunk file, once read and found to match its hash,
	// is trusted without being hashed again while its identity (device,
	// inode, size, mtime, ctime) is unchanged. Default 5 s; negative: never
	// trusted, every open reads and hashes the chunk.
	TTL time.Duration
	// Entries bounds the number of trusted files remembered (default 4096).
	Entries int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier opens chunks checked against their hash. A chunk that is a file
// (Filer) and was found intact is remembered by its file's identity for
// TTL, and handed out unread while that identity is unchanged; any other
// chunk (MemStore's, later an object's) is read and hashed at every Open.
// Safe for concurrent use.
type Verifier struct {
	o    ChunkOpener
	opts VerifyOptions
	mu   sync.Mutex
	seen *simplelru.LRU[Hash, verified]
}

// identity is what tells a chunk file apart from any other file that could
// appear under its name, or from itself after a change.
type identity struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

type verified struct {
	id identity
	at time.Time
}

// NewVerifier returns a Verifier of the chunks o opens.
func NewVerifier(o ChunkOpener, opts VerifyOptions) *Verifier {
	if opts.TTL == 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.Entries <= 0 {
		opts.Entries = 4096
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l, _ := simplelru.NewLRU[Hash, verified](opts.Entries, nil)
	return &Verifier{o: o, opts: opts, seen: l}
}

// VerifiedChunk is a chunk checked against its hash. Exactly one of Chunk
// and Data is set.
type VerifiedChunk struct {
	// Chunk is the open chunk, when it was trusted by its file's identity
	// (verified within the TTL, unchanged since; only a Filer chunk is):
	// read it, or ask it for Filer and hand the file to sendfile. Its
	// offset is unspecified: use ReadAt, or Seek first. Close closes it.
	Chunk Chunk
	// Data is the whole chunk, read and hashed now; it aliases the buf
	// passed to Open when that was large enough.
	Data []byte
}

// Close closes Chunk, if any.
func (c VerifiedChunk) Close() error {
	if c.Chunk != nil {
		return c.Chunk.Close()
	}
	return nil
}

// Open opens chunk h, which must be size bytes long, and checks it: a
// missing chunk is an error wrapping ErrNotFound; a chunk of another length,
// or whose bytes do not hash to h, an error wrapping ErrCorrupt. Other
// errors are I/O errors. buf (grown when too small) receives the chunk when
// it has to be read.
func (v *Verifier) Open(h Hash, size int64, buf []byte) (VerifiedChunk, error) {
	c, err := v.o.OpenChunk(h)
	if err != nil {
		return VerifiedChunk{}, err
	}
	if c.Size() != size {
		c.Close()
		return VerifiedChunk{}, fmt.Errorf("%w: chunk %s has %d bytes, want %d", ErrCorrupt, h.Short(), c.Size(), size)
	}
	var id identity
	cached := false // whether c is a file whose identity the cache can hold
	if v.opts.TTL > 0 {
		if f, ok := c.(Filer); ok {
			if id, err = fileIdentity(c, f.File()); err != nil {
				c.Close()
				return VerifiedChunk{}, fmt.Errorf("cas: stat chunk %s: %w", h.Short(), err)
			}
			cached = true
			v.mu.Lock()
			e, ok := v.seen.Get(h)
			v.mu.Unlock()
			if ok && e.id == id && v.opts.Now().Sub(e.at) < v.opts.TTL {
				return VerifiedChunk{Chunk: c}, nil
			}
		}
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	n, err := c.ReadAt(buf, 0)
	c.Close()
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		if errors.Is(err, io.EOF) {
			return VerifiedChunk{}, fmt.Errorf("%w: chunk %s: read %d of %d bytes", ErrCorrupt, h.Short(), n, size)
		}
		return VerifiedChunk{}, fmt.Errorf("cas: read chunk %s: %w", h.Short(), err)
	}
	if got := Sum(buf); got != h {
		v.forget(h)
		return VerifiedChunk{}, fmt.Errorf("%w: chunk %s holds %s", ErrCorrupt, h.Short(), got.Short())
	}
	if cached {
		v.mu.Lock()
		v.seen.Add(h, verified{id: id, at: v.opts.Now()})
		v.mu.Unlock()
	}
	return VerifiedChunk{Data: buf}, nil
}

// fileIdentity returns the identity of chunk c's file f: the one the
// filesystem Store took when it opened the file, or an fstat now.
func fileIdentity(c Chunk, f *os.File) (identity, error) {
	if fc, ok := c.(*fileChunk); ok {
		return fc.id, nil
	}
	id, _, err := statFile(f)
	return id, err
}

// statFile reads the identity of the open file f and its count of links
// (0 once its name is deleted or renamed over).
func statFile(f *os.File) (identity, uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return identity{}, 0, err
	}
	return identity{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, uint64(st.Nlink), nil
}

func (v *Verifier) forget(h Hash) {
	v.mu.Lock()
	v.seen.Remove(h)
	v.mu.Unlock()
}

// IsDamage reports whether err, from Open, means the chunk itself is
// damaged (missing, short or not matching its hash) rather than an I/O
// failure.
func IsDamage(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}
