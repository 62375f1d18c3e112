package cas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Batch stages chunks and makes them durable together: each Put writes a
// temp file (no sync); Commit syncs the filesystem once, renames every
// staged file into place, and syncs once more so the names are durable too.
// Concurrent batches share those syncs. A Batch is used by one goroutine;
// it must end with Commit or Abort.
type Batch struct {
	s      *Store
	staged []staged
	seen   map[Hash]struct{}
	// needSync is set when the batch relies on a chunk another batch renamed
	// into place but has not yet made durable.
	needSync bool
}

type staged struct {
	h    Hash
	temp string
}

// NewBatch starts a batch.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, seen: make(map[Hash]struct{})}
}

// Put stages chunk h with content data, unless it is already stored or
// staged in this batch. It reports whether the chunk was new. data is not
// retained.
func (b *Batch) Put(h Hash, data []byte) (bool, error) {
	if _, ok := b.seen[h]; ok {
		return false, nil
	}
	if _, err := os.Lstat(b.s.Path(h)); err == nil {
		b.seen[h] = struct{}{}
		b.s.mu.Lock()
		if b.s.renamed[h] > 0 {
			b.needSync = true
		}
		b.s.mu.Unlock()
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("cas: stat %s: %w", h.Short(), err)
	}
	f, err := os.CreateTemp(b.s.tmpDir, "chunk-*")
	if err != nil {
		return false, fmt.Errorf("cas: stage %s: %w", h.Short(), err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return false, fmt.Errorf("cas: stage %s: %w", h.Short(), err)
	}
	b.seen[h] = struct{}{}
	b.staged = append(b.staged, staged{h: h, temp: f.Name()})
	return true, nil
}

// Len returns the number of chunks staged (new) so far.
func (b *Batch) Len() int { return len(b.staged) }

// Commit makes every chunk put in the batch durable under its name. On
// error, chunks may or may not be in place; nothing refers to them yet, and
// GC collects those that stay unreferenced.
func (b *Batch) Commit() error {
	if len(b.staged) == 0 {
		if b.needSync {
			return b.s.syncer.sync()
		}
		return nil
	}
	// 1. The staged contents become durable.
	if err := b.s.syncer.sync(); err != nil {
		b.Abort()
		return err
	}
	// 2. Names appear.
	b.s.mu.Lock()
	for _, st := range b.staged {
		b.s.renamed[st.h]++
	}
	b.s.mu.Unlock()
	// On success the names are durable and the marks go; on failure they
	// stay, so later batches relying on these chunks always sync.
	ok := false
	placed := b.staged
	defer func() {
		b.staged = nil
		if !ok {
			return
		}
		b.s.mu.Lock()
		for _, st := range placed {
			if b.s.renamed[st.h]--; b.s.renamed[st.h] <= 0 {
				delete(b.s.renamed, st.h)
			}
		}
		b.s.mu.Unlock()
	}()
	for i, st := range b.staged {
		dst := b.s.Path(st.h)
		err := os.Rename(st.temp, dst)
		if errors.Is(err, fs.ErrNotExist) {
			if err = os.MkdirAll(filepath.Dir(dst), 0o750); err == nil {
				err = os.Rename(st.temp, dst)
			}
		}
		if err != nil {
			for _, rest := range b.staged[i:] {
				os.Remove(rest.temp)
			}
			return fmt.Errorf("cas: place %s: %w", st.h.Short(), err)
		}
	}
	// 3. Names (and any new directories) become durable.
	if err := b.s.syncer.sync(); err != nil {
		return err
	}
	ok = true
	return nil
}

// Abort removes staged temp files. Safe after Commit (it does nothing).
func (b *Batch) Abort() {
	for _, st := range b.staged {
		os.Remove(st.temp)
	}
	b.staged = nil
}
