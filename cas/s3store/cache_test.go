package s3store_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/castest"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/testkit"
)

// newCache opens a store on srv (requests through rt) and a cache of it in
// dir holding max bytes.
func newCache(t *testing.T, srv *testkit.S3, rt http.RoundTripper, dir string, max int64) (*s3store.Cache, *s3store.Store) {
	t.Helper()
	s := open(t, srv, rt)
	c, err := s3store.NewCache(s, dir, max)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// cachePath is chunk h's file in the cache directory dir.
func cachePath(dir string, h cas.Hash) string {
	return filepath.Join(dir, h.String()[:2], h.String())
}

// cachedFiles returns the chunks cached in dir, sorted, and their bytes.
func cachedFiles(t *testing.T, dir string) ([]cas.Hash, int64) {
	t.Helper()
	var hs []cas.Hash
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		h, err := cas.ParseHash(d.Name())
		if err != nil {
			t.Errorf("cache holds %s, not a chunk", p)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hs = append(hs, h)
		total += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(hs, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
	return hs, total
}

func sorted(cs ...castest.Chunk) []cas.Hash {
	var hs []cas.Hash
	for _, c := range cs {
		hs = append(hs, c.Hash)
	}
	slices.SortFunc(hs, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
	return hs
}

func store(t *testing.T, s cas.Storage, cs ...castest.Chunk) {
	t.Helper()
	b := s.BeginBatch()
	for _, c := range cs {
		if _, err := b.Put(c.Hash, c.Data); err != nil {
			b.Abort()
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// readOpened reads chunk c through OpenChunk, failing unless it is c's.
func readOpened(t *testing.T, s cas.ChunkOpener, c castest.Chunk) cas.Chunk {
	t.Helper()
	r, err := s.OpenChunk(c.Hash)
	if err != nil {
		t.Fatalf("OpenChunk(%s): %v", c.Hash.Short(), err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, c.Data) {
		t.Fatalf("OpenChunk(%s) then read = %d bytes, %v; want the %d stored", c.Hash.Short(), len(got), err, len(c.Data))
	}
	return r
}

func readWhole(t *testing.T, s cas.Reader, c castest.Chunk) {
	t.Helper()
	got, err := s.ReadChunk(c.Hash, nil)
	if err != nil || !bytes.Equal(got, c.Data) {
		t.Fatalf("ReadChunk(%s) = %d bytes, %v; want the %d stored", c.Hash.Short(), len(got), err, len(c.Data))
	}
}

// TestCacheConformance: the Cache is a cas.Storage. Damage damages the
// object in the bucket, and the cached copy when there is one.
func TestCacheConformance(t *testing.T) {
	srv := testkit.StartS3(t)
	var mu sync.Mutex
	dirs := map[cas.Storage]string{}
	inners := map[cas.Storage]*s3store.Store{}
	castest.Run(t, func(t *testing.T) cas.Storage {
		dir := t.TempDir()
		c, s := newCache(t, srv, nil, dir, 64<<20)
		mu.Lock()
		dirs[c], inners[c] = dir, s
		mu.Unlock()
		return c
	}, castest.Options{
		MaxChunk: 4 << 20,
		Damage: func(t *testing.T, s cas.Storage, h cas.Hash) {
			t.Helper()
			mu.Lock()
			dir, inner := dirs[s], inners[s]
			mu.Unlock()
			testkit.FlipByte(t, srv.ObjectPath(inner.Key(h)))
			if _, err := os.Stat(cachePath(dir, h)); err == nil {
				testkit.FlipByte(t, cachePath(dir, h))
			}
		},
	})
}

// TestCacheHits: once a chunk was read, through either role, reading it
// again, through either, asks nothing of the object store, and OpenChunk
// gives the cached file (a cas.Filer).
func TestCacheHits(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &counter{}
	c, _ := newCache(t, srv, rt, t.TempDir(), 1<<20)
	a, b := castest.NewChunk(1, 30_000), castest.NewChunk(2, 40_000)
	store(t, c, a, b)

	readWhole(t, c, a)
	readOpened(t, c, b)
	gets, heads := rt.get(http.MethodGet), rt.get(http.MethodHead)
	if gets < 2 {
		t.Fatalf("%d GETs for the first reads of two chunks", gets)
	}
	for _, x := range []castest.Chunk{a, b} {
		readWhole(t, c, x)
		if r := readOpened(t, c, x); r != nil {
			if _, ok := r.(cas.Filer); !ok {
				t.Errorf("OpenChunk(%s) of a cached chunk is a %T, not a cas.Filer", x.Hash.Short(), r)
			}
		}
	}
	if got := rt.get(http.MethodGet); got != gets {
		t.Errorf("reading cached chunks again made %d GETs", got-gets)
	}
	if got := rt.get(http.MethodHead); got != heads {
		t.Errorf("reading cached chunks again made %d HEADs", got-heads)
	}
	if st := c.Stats(); st.Hits != 4 || st.Files != 2 || st.Bytes != 70_000 {
		t.Errorf("Stats = %+v, want 4 hits of 2 files, 70000 bytes", st)
	}
}

// TestCacheConcurrentMiss: readers of one chunk at once, through both
// roles, get it with one GET.
func TestCacheConcurrentMiss(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &counter{}
	c, _ := newCache(t, srv, rt, t.TempDir(), 1<<20)
	x := castest.NewChunk(3, 100_000)
	store(t, c, x)
	gets := rt.get(http.MethodGet)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var got []byte
			var err error
			if i%2 == 0 {
				got, err = c.ReadChunk(x.Hash, nil)
			} else {
				var r cas.Chunk
				if r, err = c.OpenChunk(x.Hash); err == nil {
					got, err = io.ReadAll(r)
					r.Close()
				}
			}
			if err == nil && !bytes.Equal(got, x.Data) {
				err = errors.New("wrong content")
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := rt.get(http.MethodGet) - gets; got != 1 {
		t.Errorf("16 concurrent reads of one chunk made %d GETs, want 1", got)
	}
}

// TestCacheEviction: the cache stays within its bytes, evicting the least
// recently read chunk; an evicted chunk is fetched again, a kept one not.
func TestCacheEviction(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &counter{}
	dir := t.TempDir()
	const size, max = 10_000, 35_000 // room for three chunks
	c, _ := newCache(t, srv, rt, dir, max)
	a, b, d, e := castest.NewChunk(1, size), castest.NewChunk(2, size), castest.NewChunk(3, size), castest.NewChunk(4, size)
	store(t, c, a, b, d, e)
	readWhole(t, c, a)
	readOpened(t, c, b)
	readWhole(t, c, d)
	readOpened(t, c, a) // a is now the most recently read, b the least
	readWhole(t, c, e)  // evicts b
	if got, want := c.Stats(), (s3store.CacheStats{Hits: 1, Misses: 4, Evicted: 1, Files: 3, Bytes: 3 * size}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	hs, total := cachedFiles(t, dir)
	if want := sorted(a, d, e); !slices.Equal(hs, want) {
		t.Errorf("cached after eviction: %v, want a, d, e (b least recently read)", hs)
	}
	if total > max {
		t.Errorf("cache holds %d bytes, more than its %d", total, max)
	}
	gets := rt.get(http.MethodGet)
	readOpened(t, c, a)
	readWhole(t, c, e)
	if got := rt.get(http.MethodGet); got != gets {
		t.Errorf("reading kept chunks made %d GETs", got-gets)
	}
	readWhole(t, c, b) // fetched again, evicting d
	if got := rt.get(http.MethodGet); got != gets+1 {
		t.Errorf("reading the evicted chunk made %d GETs, want 1", got-gets)
	}
	if hs, total := cachedFiles(t, dir); !slices.Equal(hs, sorted(a, b, e)) || total > max {
		t.Errorf("cached: %v, %d bytes; want a, b, e within %d", hs, total, max)
	}

	// A chunk bigger than the whole cache is read through, not cached.
	big := castest.NewChunk(5, max+1)
	store(t, c, big)
	readWhole(t, c, big)
	readOpened(t, c, big)
	if hs, _ := cachedFiles(t, dir); !slices.Equal(hs, sorted(a, b, e)) {
		t.Errorf("after reading a chunk bigger than the cache: %v cached, want a, b, e", hs)
	}
}

// TestCacheReopen: a new Cache on the same directory serves what the last
// one cached without asking the object store, removes its temp files,
// evicts the oldest (by mtime) beyond a smaller budget, and hashes a
// cached file before serving it: one damaged or torn while no process
// watched is dropped and fetched again.
func TestCacheReopen(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &counter{}
	dir := t.TempDir()
	c, s := newCache(t, srv, rt, dir, 1<<20)
	cs := []castest.Chunk{castest.NewChunk(1, 20_000), castest.NewChunk(2, 20_000), castest.NewChunk(3, 20_000), castest.NewChunk(4, 20_000)}
	store(t, c, cs...)
	for _, x := range cs {
		readWhole(t, c, x)
	}
	// cs[0] is the oldest, cs[3] the newest.
	base := time.Now().Add(-time.Hour)
	for i, x := range cs {
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(cachePath(dir, x.Hash), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	temp := filepath.Join(dir, "tmp-123")
	if err := os.WriteFile(temp, []byte("half a chunk"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Reopened with room for three: cs[0] goes.
	c2, err := s3store.NewCache(s, dir, 3*20_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(temp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temp file after NewCache: %v, want it removed", err)
	}
	if hs, _ := cachedFiles(t, dir); !slices.Equal(hs, sorted(cs[1:]...)) {
		t.Errorf("after reopening with room for 3: %v cached, want the 3 newest", hs)
	}
	gets := rt.get(http.MethodGet)
	readOpened(t, c2, cs[1])
	readWhole(t, c2, cs[2])
	if got := rt.get(http.MethodGet); got != gets {
		t.Errorf("reading chunks cached before reopening made %d GETs", got-gets)
	}

	// cs[3] torn (as by a crash after the rename, before the bytes reached
	// the disk), cs[2] flipped: neither is served, both are fetched again.
	if err := os.Truncate(cachePath(dir, cs[3].Hash), 100); err != nil {
		t.Fatal(err)
	}
	testkit.FlipByte(t, cachePath(dir, cs[2].Hash))
	c3, err := s3store.NewCache(s, dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	gets = rt.get(http.MethodGet)
	readOpened(t, c3, cs[3])
	readOpened(t, c3, cs[2])
	if got := rt.get(http.MethodGet); got != gets+2 {
		t.Errorf("reading two damaged cached chunks made %d GETs, want 2", got-gets)
	}
	if st := c3.Stats(); st.Damaged != 2 {
		t.Errorf("Stats().Damaged = %d, want 2", st.Damaged)
	}
	for _, x := range cs[2:] {
		if b, err := os.ReadFile(cachePath(dir, x.Hash)); err != nil || !bytes.Equal(b, x.Data) {
			t.Errorf("cached %s after refetch: %d bytes, %v; want the chunk", x.Hash.Short(), len(b), err)
		}
	}
}

// TestCacheDamaged: ReadChunk hashes the cached copy every time; one damaged
// on disk is not served: it is dropped and the chunk fetched again (the
// chunk itself is intact, so no ErrCorrupt).
func TestCacheDamaged(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &counter{}
	dir := t.TempDir()
	c, _ := newCache(t, srv, rt, dir, 1<<20)
	x := castest.NewChunk(1, 50_000)
	store(t, c, x)
	readWhole(t, c, x)
	testkit.FlipByte(t, cachePath(dir, x.Hash))
	gets := rt.get(http.MethodGet)
	readWhole(t, c, x)
	if got := rt.get(http.MethodGet); got != gets+1 {
		t.Errorf("ReadChunk of a damaged cached chunk made %d GETs, want 1", got-gets)
	}
	if st := c.Stats(); st.Damaged != 1 {
		t.Errorf("Stats().Damaged = %d, want 1", st.Damaged)
	}
	readWhole(t, c, x)
	readOpened(t, c, x)
	if got := rt.get(http.MethodGet); got != gets+1 {
		t.Errorf("reads after the refetch made %d more GETs", got-gets-1)
	}
}

// TestCacheDelete: Delete removes the cached copy as well as the object.
func TestCacheDelete(t *testing.T) {
	srv := testkit.StartS3(t)
	dir := t.TempDir()
	c, _ := newCache(t, srv, nil, dir, 1<<20)
	x, keep := castest.NewChunk(1, 5000), castest.NewChunk(2, 5000)
	store(t, c, x, keep)
	readWhole(t, c, x)
	readOpened(t, c, keep)
	if err := c.Delete(x.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cachePath(dir, x.Hash)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cached file after Delete: %v, want it gone", err)
	}
	castest.CheckMissing(t, c, x.Hash)
	castest.CheckChunk(t, c, keep)
	if st := c.Stats(); st.Files != 1 || st.Bytes != 5000 {
		t.Errorf("Stats after Delete = %+v, want 1 file of 5000 bytes", st)
	}
}

// TestCacheWriteFails: a chunk that cannot be cached (here the cache's
// subdirectory cannot be made) is read all the same, through both roles.
func TestCacheWriteFails(t *testing.T) {
	srv := testkit.StartS3(t)
	dir := t.TempDir()
	c, _ := newCache(t, srv, nil, dir, 1<<20)
	x := castest.NewChunk(1, 5000)
	store(t, c, x)
	if err := os.WriteFile(filepath.Join(dir, x.Hash.String()[:2]), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readWhole(t, c, x)
	readOpened(t, c, x)
	if st := c.Stats(); st.WriteErrors != 2 || st.Files != 0 {
		t.Errorf("Stats = %+v, want 2 write errors and nothing cached", st)
	}
}

// pausingReader is a store whose ReadChunk, once it has read a chunk,
// reports on read and waits for resume before returning it.
type pausingReader struct {
	cas.Storage
	read, resume chan struct{}
}

func (p *pausingReader) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	data, err := p.Storage.ReadChunk(h, buf)
	p.read <- struct{}{}
	<-p.resume
	return data, err
}

// TestCacheDeleteDuringFill: a chunk deleted while a read was fetching it
// is not cached by that read.
func TestCacheDeleteDuringFill(t *testing.T) {
	srv := testkit.StartS3(t)
	dir := t.TempDir()
	inner := &pausingReader{Storage: open(t, srv, nil), read: make(chan struct{}, 1), resume: make(chan struct{})}
	c, err := s3store.NewCache(inner, dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	x := castest.NewChunk(1, 5000)
	store(t, c, x)
	done := make(chan error)
	go func() {
		_, err := c.ReadChunk(x.Hash, nil)
		done <- err
	}()
	<-inner.read
	if err := c.Delete(x.Hash); err != nil {
		t.Fatal(err)
	}
	close(inner.resume)
	if err := <-done; err != nil {
		t.Fatalf("ReadChunk that began before Delete: %v", err)
	}
	if _, err := os.Stat(cachePath(dir, x.Hash)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cached file of a chunk deleted during its fetch: %v, want none", err)
	}
	if _, err := c.ReadChunk(x.Hash, nil); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("ReadChunk after Delete: %v, want ErrNotFound", err)
	}
}
