package media

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
)

// Cache sizes: a record is about 300 bytes, a manifest 40 bytes a chunk.
const (
	recordCacheSize   = 16384
	manifestCacheSize = 4096
)

// recordCache keeps hot media records, so a download does not read and
// decode its record from Pebble every time. Writers call invalidate before
// and after committing a change to a record; readers take a generation
// before reading the index and add only if no invalidation came in between,
// so a value read before a commit can never outlive it in the cache.
type recordCache struct {
	mu  sync.Mutex
	gen uint64
	lru *simplelru.LRU[matrix.MXC, Media]
}

func newRecordCache() *recordCache {
	l, _ := simplelru.NewLRU[matrix.MXC, Media](recordCacheSize, nil)
	return &recordCache{lru: l}
}

func (c *recordCache) get(m matrix.MXC) (Media, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(m)
}

func (c *recordCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *recordCache) add(m matrix.MXC, rec Media, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.lru.Add(m, rec)
	}
}

func (c *recordCache) invalidate(m matrix.MXC) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Remove(m)
}

// manifestCache keeps hot manifests. A manifest is named by its content, so
// a cached one is never wrong, only possibly collected: it is used only
// through a record that refers to it, which keeps it from GC. But for its
// form: a replicated change may set the manifest of an object this store
// made itself with its last chunk inline where this store kept a file, or
// the other way round (stores of different layouts); ApplyChanges then
// invalidates it.
type manifestCache struct {
	mu  sync.Mutex
	lru *simplelru.LRU[cas.Hash, index.Manifest]
}

func newManifestCache() *manifestCache {
	l, _ := simplelru.NewLRU[cas.Hash, index.Manifest](manifestCacheSize, nil)
	return &manifestCache{lru: l}
}

func (c *manifestCache) get(h cas.Hash) (index.Manifest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(h)
}

// invalidate forgets the manifest of h: a replicated change set it (the
// primary's may keep the last chunk inline where this store's kept a
// file, or the other way round).
func (c *manifestCache) invalidate(h cas.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(h)
}

func (c *manifestCache) add(h cas.Hash, m index.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Add(h, m)
}
