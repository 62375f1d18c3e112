package cas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Batch stages chunks and makes them durable together. Each Put hands the
// chunk to the store's writers, which create it as an anonymous file
// (O_TMPFILE) in its final directory, or as a named temp file in DATA/tmp
// where the filesystem cannot; Commit waits for them, syncs the filesystem
// once, links or renames every staged file to its name, and syncs once more
// so the names are durable too. Concurrent batches share those syncs. A crash
// before the link leaves no trace of an anonymous file, and named temp files
// are removed at the next open. A Batch is used by one goroutine; it must end
// with Commit or Abort.
type Batch struct {
	s    *Store
	seen map[Hash]struct{}
	// needSync is set when the batch relies on a chunk another batch placed
	// but has not yet made durable.
	needSync bool
	wg       sync.WaitGroup // writes in flight

	mu     sync.Mutex
	staged []staged
	err    error // the first write error
}

// staged is a chunk written but not yet named: either an open anonymous
// file, or a named temp file.
type staged struct {
	h    Hash
	file *os.File // O_TMPFILE, or nil
	temp string   // named temp file, or ""
}

// NewBatch starts a batch.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, seen: make(map[Hash]struct{})}
}

// Put stages chunk h with content data, unless it is already stored or
// staged in this batch. It reports whether the chunk was new. data is
// copied; the caller may reuse it when Put returns. A write error is
// returned by this Put or by a later Put or Commit.
func (b *Batch) Put(h Hash, data []byte) (bool, error) {
	if _, ok := b.seen[h]; ok {
		return false, nil
	}
	if b.s.readOnly {
		return false, ErrReadOnly
	}
	if err := b.firstErr(); err != nil {
		return false, err
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
	b.seen[h] = struct{}{}
	buf := getBuf(len(data))
	copy(*buf, data)
	b.wg.Add(1)
	b.s.writers.do(func() {
		defer b.wg.Done()
		st, err := b.s.stage(h, *buf)
		putBuf(buf)
		b.mu.Lock()
		defer b.mu.Unlock()
		if err != nil {
			if b.err == nil {
				b.err = err
			}
			return
		}
		b.staged = append(b.staged, st)
	})
	return true, nil
}

func (b *Batch) firstErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Len returns the number of chunks put as new so far.
func (b *Batch) Len() int {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.staged)
}

// stage writes one chunk without syncing it.
func (s *Store) stage(h Hash, data []byte) (staged, error) {
	if s.stageFault != nil {
		if err := s.stageFault(h); err != nil {
			return staged{}, err
		}
	}
	if s.tmpfileOK.Load() && s.openFiles.Add(1) <= s.maxOpen {
		f, err := s.openAnonymous(h)
		if err == nil {
			if _, err = f.Write(data); err != nil {
				f.Close()
				s.openFiles.Add(-1)
				return staged{}, fmt.Errorf("cas: stage %s: %w", h.Short(), err)
			}
			startWriteback(f)
			return staged{h: h, file: f}, nil
		}
		s.openFiles.Add(-1)
		if !errors.Is(err, errNoTmpfile) && !errors.Is(err, unix.EMFILE) && !errors.Is(err, unix.ENFILE) {
			return staged{}, fmt.Errorf("cas: stage %s: %w", h.Short(), err)
		}
		// Out of descriptors, or no O_TMPFILE: a named temp file holds none.
	} else if s.tmpfileOK.Load() {
		s.openFiles.Add(-1)
	}
	f, err := os.CreateTemp(s.tmpDir, "chunk-*")
	if err != nil {
		return staged{}, fmt.Errorf("cas: stage %s: %w", h.Short(), err)
	}
	_, err = f.Write(data)
	if err == nil {
		startWriteback(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return staged{}, fmt.Errorf("cas: stage %s: %w", h.Short(), err)
	}
	return staged{h: h, temp: f.Name()}, nil
}

// maxOpenStaged bounds the anonymous files held open across all batches;
// beyond it chunks are staged as named temp files, which hold no
// descriptor. Open lowers it to a quarter of the process's limit.
var maxOpenStaged int64 = 4096

var errNoTmpfile = errors.New("cas: O_TMPFILE not supported")

// openAnonymous creates an unnamed file in h's final directory.
func (s *Store) openAnonymous(h Hash) (*os.File, error) {
	dir := filepath.Dir(s.Path(h))
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o640)
	if errors.Is(err, unix.ENOENT) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o640)
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
		s.tmpfileOK.Store(false)
		return nil, errNoTmpfile
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir+"/(anonymous)"), nil
}

// place gives a staged chunk its name. Another batch having placed the same
// chunk first is success: the content is the same.
func (s *Store) place(st staged) error {
	dst := s.Path(st.h)
	defer s.fds.drop(st.h) // a file renamed over is not to be handed out
	if st.file != nil {
		defer s.openFiles.Add(-1)
		defer st.file.Close()
		err := linkAnonymous(st.file, dst)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("cas: place %s: %w", st.h.Short(), err)
		}
		return nil
	}
	err := os.Rename(st.temp, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dst), 0o750); err == nil {
			err = os.Rename(st.temp, dst)
		}
	}
	if err != nil {
		os.Remove(st.temp)
		return fmt.Errorf("cas: place %s: %w", st.h.Short(), err)
	}
	return nil
}

// linkAnonymous gives the O_TMPFILE file f the name dst.
func linkAnonymous(f *os.File, dst string) error {
	fd := int(f.Fd())
	err := unix.Linkat(fd, "", unix.AT_FDCWD, dst, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc works for anyone.
		err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	}
	return err
}

// discard drops a staged chunk that will not be placed.
func (s *Store) discard(st staged) {
	if st.file != nil {
		st.file.Close()
		s.openFiles.Add(-1)
	}
	if st.temp != "" {
		os.Remove(st.temp)
	}
}

// Commit makes every chunk put in the batch durable under its name. On
// error, chunks may or may not be in place; nothing refers to them yet, and
// GC collects those that stay unreferenced.
func (b *Batch) Commit() error {
	b.wg.Wait()
	if b.err != nil {
		b.Abort()
		return b.err
	}
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
	// 2. Names appear, written by the store's writers in parallel.
	placed := b.staged
	b.staged = nil
	b.s.mu.Lock()
	for _, st := range placed {
		b.s.renamed[st.h]++
	}
	b.s.mu.Unlock()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		placeEr error
	)
	for _, st := range placed {
		wg.Add(1)
		b.s.writers.do(func() {
			defer wg.Done()
			if err := b.s.place(st); err != nil {
				errMu.Lock()
				if placeEr == nil {
					placeEr = err
				}
				errMu.Unlock()
			}
		})
	}
	wg.Wait()
	if placeEr != nil {
		// The marks stay, so later batches relying on these chunks sync.
		return placeEr
	}
	// 3. Names (and any new directories) become durable.
	if err := b.s.syncer.sync(); err != nil {
		return err
	}
	b.s.mu.Lock()
	for _, st := range placed {
		if b.s.renamed[st.h]--; b.s.renamed[st.h] <= 0 {
			delete(b.s.renamed, st.h)
		}
	}
	b.s.mu.Unlock()
	return nil
}

// Abort drops everything staged. Safe after Commit (it does nothing).
func (b *Batch) Abort() {
	b.wg.Wait()
	for _, st := range b.staged {
		b.s.discard(st)
	}
	b.staged = nil
}

// startWriteback asks the kernel to start writing f's data now, so the disk
// works while the upload goes on instead of all at once in the sync at
// Commit. It waits for nothing and promises nothing; errors are ignored
// (the sync at Commit reports real ones).
func startWriteback(f *os.File) {
	unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
