package media

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/cas"
)

// BackupStats says what a backup copied.
type BackupStats struct {
	ChunksCopied  int   `json:"chunks_copied"`
	BytesCopied   int64 `json:"bytes_copied"`
	ChunksPresent int   `json:"chunks_present"` // already in the destination, not copied again
	ChunksCorrupt int   `json:"chunks_corrupt"` // damaged in the source, not copied
}

// ErrBackupDest: the backup destination is neither missing, empty, nor an
// earlier backup of this store; Backup changed nothing in it.
var ErrBackupDest = errors.New("media: backup destination refused")

// backupBatchChunks bounds the temp files one destination batch holds.
const backupBatchChunks = 512

// Backup writes a consistent copy of the store to dest, itself a data
// directory that Open accepts: a Pebble checkpoint of the index (of a
// PostgreSQL index, a copy into Pebble: the backup is a single-node store
// with the chunks on local disk) plus every
// chunk file, each verified against its hash on the way. It is incremental:
// chunk files already in dest are not copied again. Uploads may go on
// meanwhile; the copy holds every upload acknowledged before Backup was
// called. A chunk that is corrupt in the source is not copied; the backup
// completes and returns an error saying how many (run Fsck).
//
// dest must be missing, empty, or an earlier backup of this store (the same
// FORMAT, store ID included); anything else is ErrBackupDest, checked before anything in dest
// is created or removed.
func (s *Store) Backup(ctx context.Context, dest string) (BackupStats, error) {
	s.maint.Lock() // no GC while we copy what the checkpoint refers to
	defer s.maint.Unlock()
	var st BackupStats
	dst, err := s.openBackupDest(dest)
	if err != nil {
		return st, err
	}
	defer dst.Close()
	unlock, err := s.lockGC(ctx)
	if err != nil {
		return st, err
	}
	defer unlock()

	// 1. The index as of now. Every chunk it refers to is already in place.
	ckpt := filepath.Join(dst.TempDir(), "index-new")
	if err := s.pebbleIndexCopy(ctx, ckpt); err != nil {
		return st, err
	}
	// 2. The chunks, before the index that needs them.
	if err := s.copyChunks(ctx, dst, backupBatchChunks, &st, nil); err != nil {
		return st, fmt.Errorf("media: backup chunks: %w", err)
	}
	// 3. The index goes in last, swapped atomically with an older one.
	if err := placeIndex(ckpt, dest); err != nil {
		return st, err
	}
	s.opts.Logger.Info("backup done", "dest", dest, "chunks_copied", st.ChunksCopied,
		"bytes_copied", st.BytesCopied, "chunks_present", st.ChunksPresent, "chunks_corrupt", st.ChunksCorrupt)
	if st.ChunksCorrupt > 0 {
		return st, fmt.Errorf("media: backup: %d corrupt chunks in the source were not copied; run fsck", st.ChunksCorrupt)
	}
	return st, nil
}

// openBackupDest checks dest (see checkBackupDest), creates it when
// missing, and opens it as a chunk store with this store's FORMAT.
func (s *Store) openBackupDest(dest string) (*cas.Store, error) {
	if err := s.checkBackupDest(dest); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dest, 0o750); err != nil {
		return nil, fmt.Errorf("media: backup: %w", err)
	}
	dst, err := cas.OpenLayout(dest, casLayout(s.format.Layout), false)
	if err != nil {
		return nil, fmt.Errorf("media: backup to %s: %w", dest, err)
	}
	if _, err := checkFormat(dest, s.backupFormat()); err != nil {
		dst.Close()
		return nil, fmt.Errorf("media: backup to %s: %w", dest, err)
	}
	return dst, nil
}

// backupFormat is the FORMAT of a backup: the store's, with its chunks in
// the backup's own cas/ directory and its index in Pebble, wherever the
// store keeps them.
func (s *Store) backupFormat() storeFormat {
	f := s.format
	f.Chunks, f.Index = "", ""
	return f
}

// chunkSink is where copyChunks writes: a backup's or a migration's
// destination.
type chunkSink interface {
	cas.Stater
	cas.BatchWriter
}

// copyReaders is how many chunks copyChunks looks up and reads at once:
// for a store in a bucket each is a request's round trip.
const copyReaders = 16

// copied is what a reader of copyChunks found for one chunk.
type copied struct {
	h       cas.Hash
	data    *[]byte // the verified content, from the pool; nil when not copied
	present bool    // already in the destination
	corrupt bool    // corrupt in the source
}

// copyChunks copies every chunk dst lacks into it, verified on the way
// (ReadChunk), counting in st. copyReaders goroutines look chunks up in
// dst and read them from the store; one writes them to dst in batches of
// batchChunks, calling committed (when not nil) after each commit. A
// chunk corrupt in the source is counted and not copied.
func (s *Store) copyChunks(ctx context.Context, dst chunkSink, batchChunks int, st *BackupStats, committed func()) error {
	g, gctx := errgroup.WithContext(ctx)
	hashes := make(chan cas.Hash)
	found := make(chan copied, copyReaders)
	pool := sync.Pool{New: func() any { return new([]byte) }}
	g.Go(func() error {
		defer close(hashes)
		return s.cas.Walk(func(h cas.Hash, _ fs.FileInfo) error {
			select {
			case hashes <- h:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	var readers sync.WaitGroup
	for range copyReaders {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			for h := range hashes {
				c, ok, err := s.readForCopy(dst, h, &pool)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				select {
				case found <- c:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	go func() {
		readers.Wait()
		close(found)
	}()
	g.Go(func() error { return writeCopies(gctx, dst, found, batchChunks, st, committed, &pool) })
	return g.Wait()
}

// readForCopy looks chunk h up in dst and, when it is missing there, reads
// and verifies it. ok is false for a chunk removed from the store
// meanwhile (unreferenced: nothing to copy).
func (s *Store) readForCopy(dst cas.Stater, h cas.Hash, pool *sync.Pool) (c copied, ok bool, err error) {
	c.h = h
	if _, err := dst.Stat(h); err == nil {
		c.present = true
		return c, true, nil
	} else if !errors.Is(err, cas.ErrNotFound) {
		return c, false, err
	}
	bp := pool.Get().(*[]byte)
	data, err := s.cas.ReadChunk(h, *bp)
	switch {
	case errors.Is(err, cas.ErrCorrupt):
		pool.Put(bp)
		s.opts.Logger.Error("corrupt chunk not copied", "chunk", h.String())
		c.corrupt = true
		return c, true, nil
	case errors.Is(err, cas.ErrNotFound):
		pool.Put(bp)
		return c, false, nil
	case err != nil:
		pool.Put(bp)
		return c, false, err
	}
	*bp = data
	c.data = bp
	return c, true, nil
}

// writeCopies puts what the readers found into dst, committing every
// batchChunks chunks and once at the end (unless ctx ended: a reader
// failed), and counts it all in st.
func writeCopies(ctx context.Context, dst cas.BatchWriter, found <-chan copied, batchChunks int, st *BackupStats, committed func(), pool *sync.Pool) error {
	b := dst.BeginBatch()
	defer func() { b.Abort() }()
	commit := func() error {
		if err := b.Commit(); err != nil {
			return err
		}
		if committed != nil {
			committed()
		}
		return nil
	}
	inBatch := 0
	for c := range found {
		switch {
		case c.present:
			st.ChunksPresent++
			continue
		case c.corrupt:
			st.ChunksCorrupt++
			continue
		}
		_, err := b.Put(c.h, *c.data)
		n := len(*c.data)
		pool.Put(c.data)
		if err != nil {
			return err
		}
		st.ChunksCopied++
		st.BytesCopied += int64(n)
		if inBatch++; inBatch >= batchChunks {
			inBatch = 0
			if err := commit(); err != nil {
				return err
			}
			b = dst.BeginBatch()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return commit()
}

// placeIndex swaps the checkpoint ckpt in as dest's index, atomically,
// removes the index it replaced, and syncs dest.
func placeIndex(ckpt, dest string) error {
	if err := swapDir(ckpt, filepath.Join(dest, "index")); err != nil {
		return fmt.Errorf("media: place index in %s: %w", dest, err)
	}
	os.RemoveAll(ckpt) // the previous backup's index, if any
	return syncDir(dest)
}

// checkBackupDest refuses a destination Backup must not write into. It
// changes nothing.
func (s *Store) checkBackupDest(dest string) error {
	if err := s.checkOutside(dest); err != nil {
		return fmt.Errorf("%w: %w", ErrBackupDest, err)
	}
	state, what, err := storeDirState(dest)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBackupDest, err)
	}
	switch state {
	case dirStore:
		f, err := compareFormat(dest, s.backupFormat())
		if err != nil {
			return fmt.Errorf("%w: %s is an mxcas store this one cannot be backed up into: %w", ErrBackupDest, dest, err)
		}
		// Only a backup of this very store: its index is about to be
		// replaced by ours.
		if f.ID != s.format.ID {
			return fmt.Errorf("%w: %s is another mxcas store, not a backup of this one (store %s); "+
				"back up into a missing or empty directory; nothing was changed", ErrBackupDest, dest, s.format.ID)
		}
	case dirForeign:
		return fmt.Errorf("%w: %s has %s; back up into a missing or empty directory, or an earlier backup of this store; nothing was changed",
			ErrBackupDest, dest, what)
	}
	return nil
}

// checkOutside refuses a destination that is the store's own directory or
// inside it.
func (s *Store) checkOutside(dest string) error {
	absDest, err1 := filepath.Abs(dest)
	absDir, err2 := filepath.Abs(s.opts.Dir)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%s: %w", dest, errors.Join(err1, err2))
	}
	if rel, err := filepath.Rel(absDir, absDest); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is inside the store's own directory %s", dest, s.opts.Dir)
	}
	return nil
}

// swapDir moves src to dst; when dst exists the two are exchanged
// atomically, leaving the old dst at src.
func swapDir(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		err = unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without renameat2 flags: not atomic, but ordered.
		old := src + ".old"
		if err := os.Rename(dst, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
		if err := os.Rename(old, src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return err
}
