package s3store

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mxcas/mxcas/cas"
)

// MaxCachedChunk is the largest chunk the Cache keeps. OpenChunk of a
// larger chunk (none is: chunks are at most a few MiB) reads through.
const MaxCachedChunk = 16 << 20

// errUncached is a fetch's answer for a chunk too big to cache.
var errUncached = errors.New("s3store: chunk too big to cache")

// tempPrefix names the Cache's files being written, in its directory.
const tempPrefix = "tmp-"

// Cache is a cas.Storage that keeps the chunks read from another (an
// object store) in a local directory, so hot chunks (thumbnails, popular
// media) are read from disk rather than fetched again. The directory holds
// DIR/ab/<64 hex> files, at most maxBytes in all; the least recently read
// are evicted first. Writes, Stat and Walk go to the inner store; Delete
// removes the chunk from both.
//
// A chunk enters the cache only after it was read whole and found to hash
// to its name, through a temp file renamed into place, so a partial file
// never has a chunk's name. What guards against a cached file damaged
// later: ReadChunk hashes the file at every read; OpenChunk hashes it the
// first time this process serves it (after a restart, or a crash that left
// a renamed file whose bytes never reached the disk), and trusts it after:
// media's cas.Verifier hashes what OpenChunk returns anyway, and damage it
// finds there goes when media's repair or fsck reads it with ReadChunk. A
// cached copy found damaged is removed and the chunk fetched again from the
// inner store: the damage is the cache's, not the chunk's, so it is never
// reported as ErrCorrupt (which media would record as a damaged chunk);
// ErrCorrupt comes only from the inner store.
//
// The index (size and recency of every cached chunk) is in memory; NewCache
// rebuilds it from the directory with the files' mtimes as recency (the
// time each was cached: reads do not touch the files, whose identity media's
// Verifier keys on). A failure to write the cache (disk full) does not fail
// the read. Safe for concurrent use.
type Cache struct {
	inner cas.Storage
	dir   string
	max   int64

	mu      sync.Mutex
	lru     *list.List                 // of *cached, most recently read first
	entries map[cas.Hash]*list.Element // chunk -> its element in lru
	fills   map[cas.Hash]chan struct{} // chunks being fetched: closed when done
	total   int64                      // bytes cached
	deletes uint64                     // Deletes so far: a fill during which one ran does not insert
	stats   CacheStats
}

var _ cas.Storage = (*Cache)(nil)

// cached is a chunk in the cache. Guarded by Cache.mu.
type cached struct {
	h        cas.Hash
	size     int64
	verified bool // hashed by this process since it was written or found
}

// CacheStats count what a Cache did since NewCache.
type CacheStats struct {
	Hits, Misses int64 // reads served from the directory, and not
	Evicted      int64 // chunks evicted for room
	Damaged      int64 // cached copies found damaged (dropped and fetched again)
	WriteErrors  int64 // chunks that could not be cached
	Files, Bytes int64 // chunks cached now, and their bytes
}

// NewCache returns a cache of inner's chunks in dir (created if missing)
// holding at most maxBytes (> 0). It indexes the chunks already in dir,
// evicting the oldest beyond maxBytes, and removes the temp files a
// previous run left. Close closes inner too.
func NewCache(inner cas.Storage, dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("s3store: cache of %d bytes", maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3store: cache: %w", err)
	}
	c := &Cache{
		inner: inner, dir: dir, max: maxBytes,
		lru: list.New(), entries: make(map[cas.Hash]*list.Element), fills: make(map[cas.Hash]chan struct{}),
	}
	type found struct {
		h    cas.Hash
		size int64
		mod  time.Time
	}
	var all []found
	tops, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("s3store: cache: %w", err)
	}
	for _, top := range tops {
		name := top.Name()
		if strings.HasPrefix(name, tempPrefix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("s3store: cache: %w", err)
			}
			continue
		}
		if !top.IsDir() || len(name) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("s3store: cache: %w", err)
		}
		for _, f := range files {
			h, err := cas.ParseHash(f.Name())
			if err != nil || !f.Type().IsRegular() || h.String()[:2] != name {
				continue // not ours: left alone
			}
			fi, err := f.Info()
			if err != nil {
				continue // gone meanwhile
			}
			all = append(all, found{h, fi.Size(), fi.ModTime()})
		}
	}
	slices.SortFunc(all, func(a, b found) int { return a.mod.Compare(b.mod) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range all {
		c.entries[f.h] = c.lru.PushFront(&cached{h: f.h, size: f.size})
		c.total += f.size
	}
	c.evictLocked(0)
	return c, nil
}

// path is chunk h's file in the cache.
func (c *Cache) path(h cas.Hash) string {
	x := h.String()
	return filepath.Join(c.dir, x[:2], x)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Files, s.Bytes = int64(len(c.entries)), c.total
	return s
}

// lookup returns chunk h's entry, marked most recently read, or nil.
func (c *Cache) lookup(h cas.Hash) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[h]
	if e == nil {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cached)
}

// drop removes entry e (if still h's) and its file; damaged counts it.
func (c *Cache) drop(e *cached, damaged bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if damaged {
		c.stats.Damaged++
	}
	if el := c.entries[e.h]; el != nil && el.Value == e {
		c.removeLocked(el)
	}
}

// removeLocked forgets element el and removes its file.
func (c *Cache) removeLocked(el *list.Element) {
	e := el.Value.(*cached)
	c.lru.Remove(el)
	delete(c.entries, e.h)
	c.total -= e.size
	os.Remove(c.path(e.h)) // a file left behind is found (and counted) again by the next NewCache
}

// evictLocked evicts the least recently read chunks until room more bytes
// fit.
func (c *Cache) evictLocked(room int64) {
	for c.total+room > c.max && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
		c.stats.Evicted++
	}
}

// hit counts a read served from the cache.
func (c *Cache) hit() {
	c.mu.Lock()
	c.stats.Hits++
	c.mu.Unlock()
}

// setVerified records that e's file was found to hash to its name.
func (c *Cache) setVerified(e *cached) {
	c.mu.Lock()
	e.verified = true
	c.mu.Unlock()
}

// isVerified reports whether e's file was hashed by this process.
func (c *Cache) isVerified(e *cached) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.verified
}

// fill runs fetch for chunk h unless it is cached now or another
// goroutine is fetching it (fill then waits for that one): then it reports
// false, and the caller looks in the cache again. fetch returns the chunk's verified bytes, which fill
// caches.
func (c *Cache) fill(h cas.Hash, fetch func() ([]byte, error)) (data []byte, fetched bool, err error) {
	c.mu.Lock()
	if c.entries[h] != nil {
		c.mu.Unlock()
		return nil, false, nil // cached since the caller looked
	}
	if wait := c.fills[h]; wait != nil {
		c.mu.Unlock()
		<-wait
		return nil, false, nil
	}
	done := make(chan struct{})
	c.fills[h] = done
	c.stats.Misses++
	gen := c.deletes
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.fills, h)
		c.mu.Unlock()
		close(done)
	}()
	data, err = fetch()
	if err == nil {
		c.store(h, data, gen)
	}
	return data, true, err
}

// store caches chunk h's verified bytes data, unless a Delete began since
// the fetch (gen): the chunk may be gone from the inner store.
func (c *Cache) store(h cas.Hash, data []byte, gen uint64) {
	size := int64(len(data))
	if size > c.max || size > MaxCachedChunk {
		return
	}
	fail := func() {
		c.mu.Lock()
		c.stats.WriteErrors++
		c.mu.Unlock()
	}
	f, err := os.CreateTemp(c.dir, tempPrefix+"*")
	if err != nil {
		fail()
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(c.path(h)), 0o700)
	}
	if err != nil {
		os.Remove(f.Name())
		fail()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deletes != gen || c.entries[h] != nil {
		os.Remove(f.Name())
		return
	}
	c.evictLocked(size)
	if err := os.Rename(f.Name(), c.path(h)); err != nil {
		os.Remove(f.Name())
		c.stats.WriteErrors++
		return
	}
	c.entries[h] = c.lru.PushFront(&cached{h: h, size: size, verified: true})
	c.total += size
}

// ReadChunk reads chunk h from the cache, checked, or else from the inner
// store, and caches it. A cached copy that does not hash to h is dropped
// and the chunk read from the inner store.
func (c *Cache) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	for {
		if e := c.lookup(h); e != nil {
			data, err := c.readCached(e, buf)
			if err == nil {
				c.hit()
				return data, nil
			}
			c.drop(e, errors.Is(err, cas.ErrCorrupt))
		}
		data, fetched, err := c.fill(h, func() ([]byte, error) { return c.inner.ReadChunk(h, buf) })
		if fetched {
			return data, err
		}
	}
}

// readCached reads e's file whole into buf (grown when too small) and
// checks it: ErrCorrupt when it is short or does not hash to its name.
func (c *Cache) readCached(e *cached, buf []byte) ([]byte, error) {
	f, err := os.Open(c.path(e.h))
	if err != nil {
		return nil, err // evicted meanwhile, or gone: fetch again
	}
	defer f.Close()
	if int64(cap(buf)) < e.size {
		buf = make([]byte, e.size)
	}
	buf = buf[:e.size]
	if n, err := f.ReadAt(buf, 0); err != nil && !(err == io.EOF && int64(n) == e.size) {
		if err == io.EOF {
			return nil, fmt.Errorf("%w: cached chunk %s is short", cas.ErrCorrupt, e.h.Short())
		}
		return nil, err
	}
	if cas.Sum(buf) != e.h {
		return nil, fmt.Errorf("%w: cached chunk %s", cas.ErrCorrupt, e.h.Short())
	}
	c.setVerified(e)
	return buf, nil
}

// OpenChunk opens chunk h from the cache (a cas.Filer), or else reads it
// whole from the inner store, checked, caches it and opens the cached
// file. A cached copy is hashed the first time this process opens it (see
// Cache). A chunk the inner store holds damaged is opened there, unchecked,
// as the contract of OpenChunk says; one too big to cache too. When the
// chunk cannot be cached, the Chunk reads the fetched bytes from memory.
func (c *Cache) OpenChunk(h cas.Hash) (cas.Chunk, error) {
	for {
		if e := c.lookup(h); e != nil {
			ch, err := c.openCached(e)
			if err == nil {
				c.hit()
				return ch, nil
			}
			c.drop(e, errors.Is(err, cas.ErrCorrupt))
		}
		data, fetched, err := c.fill(h, func() ([]byte, error) {
			fi, err := c.inner.Stat(h)
			if err != nil {
				return nil, err
			}
			if fi.Size() > MaxCachedChunk || fi.Size() > c.max {
				return nil, errUncached
			}
			return c.inner.ReadChunk(h, make([]byte, 0, fi.Size()))
		})
		switch {
		case !fetched:
			continue // another goroutine fetched it: look again
		case errors.Is(err, errUncached), errors.Is(err, cas.ErrCorrupt):
			return c.inner.OpenChunk(h)
		case err != nil:
			return nil, err
		}
		if e := c.lookup(h); e != nil {
			if ch, err := c.openCached(e); err == nil {
				return ch, nil
			}
		}
		return memChunk{bytes.NewReader(data)}, nil
	}
}

// openCached opens e's file, hashing it first unless this process did.
func (c *Cache) openCached(e *cached) (cas.Chunk, error) {
	f, err := os.Open(c.path(e.h))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != e.size {
		err = fmt.Errorf("%w: cached chunk %s has %d bytes, want %d", cas.ErrCorrupt, e.h.Short(), fi.Size(), e.size)
	}
	if err == nil && !c.isVerified(e) {
		hw := cas.NewHasher()
		if _, err = io.Copy(hw, f); err == nil {
			if hw.Sum() != e.h {
				err = fmt.Errorf("%w: cached chunk %s", cas.ErrCorrupt, e.h.Short())
			} else {
				c.setVerified(e)
				_, err = f.Seek(0, io.SeekStart)
			}
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileChunk{f: f, size: e.size}, nil
}

// fileChunk is a cached chunk's open file.
type fileChunk struct {
	f    *os.File
	size int64
}

func (c *fileChunk) Read(p []byte) (int, error)              { return c.f.Read(p) }
func (c *fileChunk) ReadAt(p []byte, off int64) (int, error) { return c.f.ReadAt(p, off) }
func (c *fileChunk) Seek(off int64, whence int) (int64, error) {
	return c.f.Seek(off, whence)
}
func (c *fileChunk) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, c.f) }
func (c *fileChunk) Close() error                       { return c.f.Close() }
func (c *fileChunk) Size() int64                        { return c.size }
func (c *fileChunk) File() *os.File                     { return c.f }

// memChunk is a chunk fetched but not cached, read from memory.
type memChunk struct{ *bytes.Reader }

func (memChunk) Close() error { return nil }

// Stat asks the inner store.
func (c *Cache) Stat(h cas.Hash) (fs.FileInfo, error) { return c.inner.Stat(h) }

// Walk walks the inner store.
func (c *Cache) Walk(fn func(h cas.Hash, fi fs.FileInfo) error) error { return c.inner.Walk(fn) }

// BeginBatch starts a batch of the inner store; nothing is cached on write.
func (c *Cache) BeginBatch() cas.WriteBatch { return c.inner.BeginBatch() }

// Delete deletes chunk h from the inner store, then from the cache (a fill
// of h under way then does not cache it).
func (c *Cache) Delete(h cas.Hash) error {
	err := c.inner.Delete(h)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deletes++
	if el := c.entries[h]; el != nil {
		c.removeLocked(el)
	}
	return err
}

// Close closes the inner store. The cached files stay for the next run.
func (c *Cache) Close() error { return c.inner.Close() }

var (
	_ cas.Chunk   = (*fileChunk)(nil)
	_ cas.Filer   = (*fileChunk)(nil)
	_ io.WriterTo = (*fileChunk)(nil)
	_ cas.Chunk   = memChunk{}
)
