package cas

import (
	"bytes"
	"fmt"
	"io/fs"
	"sync"
	"time"
)

// MemStore is a Storage in memory, for tests: chunks are copies held in a
// map under a mutex, with the same contracts as the filesystem Store (a Put
// is visible only after Commit, Abort discards, ReadChunk verifies, Delete of
// a missing chunk is nil) except that nothing survives the process. Safe for
// concurrent use. The zero value is not usable; call NewMemStore.
type MemStore struct {
	now func() time.Time

	mu     sync.RWMutex
	chunks map[Hash]*memEntry
}

// memEntry is one stored chunk. data is never changed in place once stored
// (readers may hold it); damage in tests replaces it.
type memEntry struct {
	data []byte
	mod  time.Time
}

// NewMemStore returns an empty MemStore whose chunks' ModTime comes from now
// (time.Now when nil).
func NewMemStore(now func() time.Time) *MemStore {
	if now == nil {
		now = time.Now
	}
	return &MemStore{now: now, chunks: make(map[Hash]*memEntry)}
}

func (m *MemStore) get(h Hash) (*memEntry, error) {
	m.mu.RLock()
	e, ok := m.chunks[h]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	return e, nil
}

// OpenChunk opens chunk h for reading. It is not a Filer.
func (m *MemStore) OpenChunk(h Hash) (Chunk, error) {
	e, err := m.get(h)
	if err != nil {
		return nil, err
	}
	return memChunk{bytes.NewReader(e.data)}, nil
}

// memChunk is a MemStore Chunk: a reader over the stored bytes, which are
// never changed in place.
type memChunk struct{ *bytes.Reader }

func (memChunk) Close() error { return nil }

// ReadChunk copies chunk h into buf (grown when too small) and checks that
// it hashes to h (ErrCorrupt otherwise). The result never aliases the store.
func (m *MemStore) ReadChunk(h Hash, buf []byte) ([]byte, error) {
	e, err := m.get(h)
	if err != nil {
		return nil, err
	}
	n := len(e.data)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	copy(buf, e.data)
	if got := Sum(buf); got != h {
		return nil, fmt.Errorf("%w: chunk %s holds %s", ErrCorrupt, h.Short(), got.Short())
	}
	return buf, nil
}

// Stat returns chunk h's information, or ErrNotFound.
func (m *MemStore) Stat(h Hash) (fs.FileInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.chunks[h]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	return memInfo{h: h, size: int64(len(e.data)), mod: e.mod}, nil
}

// Delete removes chunk h; a missing chunk is not an error.
func (m *MemStore) Delete(h Hash) error {
	m.mu.Lock()
	delete(m.chunks, h)
	m.mu.Unlock()
	return nil
}

// Walk calls fn for every chunk stored when it began, in no particular
// order, without holding the store's lock (fn may use the store). A chunk
// deleted before fn would see it is skipped.
func (m *MemStore) Walk(fn func(h Hash, info fs.FileInfo) error) error {
	m.mu.RLock()
	hs := make([]Hash, 0, len(m.chunks))
	for h := range m.chunks {
		hs = append(hs, h)
	}
	m.mu.RUnlock()
	for _, h := range hs {
		info, err := m.Stat(h)
		if err != nil {
			continue // deleted meanwhile
		}
		if err := fn(h, info); err != nil {
			return err
		}
	}
	return nil
}

// Touch sets chunk h's ModTime to t, like Store.Touch.
func (m *MemStore) Touch(h Hash, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.chunks[h]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	m.chunks[h] = &memEntry{data: e.data, mod: t}
	return nil
}

// Damage replaces the stored bytes of chunk h with a copy whose middle
// byte is flipped (one extra byte for the empty chunk), as a failing disk
// might, and reports whether h was stored. For tests only (of MemStore's
// users: damage detection); nothing else may call it.
func (m *MemStore) Damage(h Hash) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.chunks[h]
	if !ok {
		return false
	}
	data := append([]byte(nil), e.data...)
	if len(data) == 0 {
		data = append(data, 0)
	} else {
		data[len(data)/2] ^= 0x01
	}
	m.chunks[h] = &memEntry{data: data, mod: e.mod}
	return true
}

// Close does nothing: a MemStore holds no resources but memory.
func (m *MemStore) Close() error { return nil }

// BeginBatch starts a batch.
func (m *MemStore) BeginBatch() WriteBatch {
	return &memBatch{m: m, seen: make(map[Hash]struct{})}
}

// memBatch stages copies and adds them to the map at Commit.
type memBatch struct {
	m      *MemStore
	seen   map[Hash]struct{}
	staged map[Hash][]byte
}

func (b *memBatch) Put(h Hash, data []byte) (bool, error) {
	if _, ok := b.seen[h]; ok {
		return false, nil
	}
	b.seen[h] = struct{}{}
	b.m.mu.RLock()
	_, stored := b.m.chunks[h]
	b.m.mu.RUnlock()
	if stored {
		return false, nil
	}
	if b.staged == nil {
		b.staged = make(map[Hash][]byte)
	}
	b.staged[h] = bytes.Clone(data)
	return true, nil
}

// Commit adds every staged chunk; one already stored (by a concurrent
// batch) keeps its content and ModTime.
func (b *memBatch) Commit() error {
	if len(b.staged) == 0 {
		return nil
	}
	now := b.m.now()
	b.m.mu.Lock()
	for h, data := range b.staged {
		if _, ok := b.m.chunks[h]; !ok {
			b.m.chunks[h] = &memEntry{data: data, mod: now}
		}
	}
	b.m.mu.Unlock()
	b.staged = nil
	return nil
}

func (b *memBatch) Abort() { b.staged = nil }

// memInfo is a MemStore chunk's fs.FileInfo.
type memInfo struct {
	h    Hash
	size int64
	mod  time.Time
}

func (i memInfo) Name() string       { return i.h.String() }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
