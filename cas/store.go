package cas

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("cas: chunk not found")
	ErrLocked   = errors.New("cas: store is in use by another process")
	// ErrUnavailable: the storage behind the chunks (an object store)
	// could not be reached or failed; nothing was changed by the failed
	// call, and a retry may succeed.
	ErrUnavailable = errors.New("cas: chunk storage unavailable")
)

// Store is the chunk store in one data directory. It is safe for concurrent
// use by many goroutines; one process at a time holds it (an flock on
// DATA/tmp/LOCK).
type Store struct {
	dir    string // DATA
	casDir string // DATA/cas
	tmpDir string // DATA/tmp
	lock   *os.File
	syncer *syncer

	writers  writers
	readOnly bool
	layout   Layout

	tmpfileOK atomic.Bool  // O_TMPFILE works here
	openFiles atomic.Int64 // anonymous staged files held open
	maxOpen   int64        // bound on openFiles
	fds       *fdPool      // idle chunk files, for OpenChunk
	// stageFault, set only by tests, fails the write of a chunk.
	stageFault func(Hash) error

	mu sync.Mutex
	// renamed holds chunks renamed into place whose directory entry is not yet
	// known to be durable. A batch that finds such a chunk already present must
	// sync before it relies on it.
	renamed map[Hash]int
}

// Layout is where a Store keeps a chunk's file under DATA/cas. The layout
// is a property of the store (media's FORMAT records it): opening a store
// with another layout than it was written with finds none of its chunks.
type Layout int

const (
	// LayoutNested is cas/ab/cd/<hash>: 65,536 directories once the store
	// holds a few hundred thousand chunks (4 KiB each, and a directory
	// entry per chunk). Stores made before LayoutFlat use it.
	LayoutNested Layout = iota
	// LayoutFlat is cas/ab/<hash>: 256 directories. With small objects
	// kept in the index, a store of a million media holds a few hundred
	// thousand chunk files, a few thousand per directory, which ext4's
	// hashed directories look up as fast as a few hundred.
	LayoutFlat
)

// Open opens (creating when needed) the chunk store in dir, in the nested
// layout, takes the store's lock and removes stale temp files left by a
// crash.
func Open(dir string) (*Store, error) { return OpenLayout(dir, LayoutNested, false) }

// OpenReadOnly opens an existing chunk store of the nested layout for
// reading: it takes the lock (so no writer runs meanwhile) but creates and
// removes nothing. Writing through it is an error.
func OpenReadOnly(dir string) (*Store, error) { return OpenLayout(dir, LayoutNested, true) }

// OpenLayout is Open, or OpenReadOnly when readOnly, for a store of layout l.
func OpenLayout(dir string, l Layout, readOnly bool) (*Store, error) {
	return open(dir, l, readOnly)
}

// ErrReadOnly is returned by writes to a store opened with OpenReadOnly.
var ErrReadOnly = errors.New("cas: store is open read-only")

func open(dir string, l Layout, readOnly bool) (*Store, error) {
	s := &Store{
		dir:     dir,
		casDir:  filepath.Join(dir, "cas"),
		tmpDir:  filepath.Join(dir, "tmp"),
		renamed: make(map[Hash]int),
		fds:     newFDPool(poolFiles()),
	}
	s.readOnly = readOnly
	s.layout = l
	if err := s.ensureDirs(); err != nil {
		return nil, err
	}
	if err := s.takeLock(); err != nil {
		return nil, err
	}
	if readOnly {
		sy, err := newSyncer(s.casDir)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.syncer = sy
		s.writers.start(0)
		return s, nil
	}
	if err := s.prepareWrites(); err != nil {
		s.Close()
		return nil, err
	}
	s.writers.start(numWriters)
	return s, nil
}

// ensureDirs creates DATA/cas and DATA/tmp, or, read-only, checks that
// they exist.
func (s *Store) ensureDirs() error {
	for _, d := range []string{s.casDir, s.tmpDir} {
		if s.readOnly {
			if _, err := os.Stat(d); err != nil {
				return fmt.Errorf("cas: open read-only: %w", err)
			}
			continue
		}
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("cas: open: %w", err)
		}
	}
	return nil
}

// takeLock takes the store's lock, DATA/tmp/LOCK, without waiting:
// ErrLocked when another process holds it.
func (s *Store) takeLock() error {
	lockFlags := os.O_CREATE | os.O_RDWR
	if s.readOnly {
		lockFlags = os.O_RDONLY
	}
	lock, err := lockFile(s.dir, lockFlags)
	if err != nil {
		return err
	}
	s.lock = lock
	return nil
}

// LockDir takes the lock a Store in dir takes (dir/tmp/LOCK, created with
// dir/tmp when missing), without waiting: an error wrapping ErrLocked when
// another process holds it. It is for a data directory whose chunks are
// stored elsewhere (an object store): one process at a time still uses
// it. Closing the file releases the lock.
func LockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		return nil, fmt.Errorf("cas: lock: %w", err)
	}
	return lockFile(dir, os.O_CREATE|os.O_RDWR)
}

// lockFile opens dir/tmp/LOCK with flags and locks it.
func lockFile(dir string, flags int) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(dir, "tmp", "LOCK"), flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cas: open lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("cas: lock %s: %w", dir, err)
	}
	return lock, nil
}

// prepareWrites readies a writable store: removes stale temp files, starts
// the syncer, probes for O_TMPFILE and bounds the staged files held open.
// The caller closes s when it fails.
func (s *Store) prepareWrites() error {
	if err := s.removeStale(); err != nil {
		return err
	}
	sy, err := newSyncer(s.casDir) // where the chunks and their names live
	if err != nil {
		return err
	}
	s.syncer = sy
	s.tmpfileOK.Store(s.probeAnonymous())
	s.maxOpen = maxOpenStaged
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && int64(lim.Cur/4) < s.maxOpen {
		s.maxOpen = int64(lim.Cur / 4)
	}
	return nil
}

// MaxPooledFiles bounds the idle chunk files a Store keeps open for
// OpenChunk: enough for the hot chunks of several concurrent large
// downloads (a 10 MiB file is about 130 chunks).
const MaxPooledFiles = 1024

// poolFiles is MaxPooledFiles, or an eighth of the open-files limit when
// that is less.
func poolFiles() int {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur/8 < MaxPooledFiles {
		return int(lim.Cur / 8)
	}
	return MaxPooledFiles
}

// removeStale deletes every temp file: none can belong to a live writer
// because we hold the lock. That is DATA/tmp/*, and the temp files media's
// small-file writes (FORMAT, admin.json) leave in DATA itself when
// interrupted (".NAME-123").
func (s *Store) removeStale() error {
	leftovers, _ := filepath.Glob(filepath.Join(s.dir, ".*-*"))
	for _, p := range leftovers {
		name := filepath.Base(p)
		if i := strings.LastIndexByte(name, '-'); i > 1 && isDigits(name[i+1:]) {
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				os.Remove(p)
			}
		}
	}
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return fmt.Errorf("cas: read tmp: %w", err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return fmt.Errorf("cas: remove stale temp file: %w", err)
		}
	}
	return nil
}

// Close releases the lock and the pooled chunk files. Batches must be
// finished first.
func (s *Store) Close() error {
	s.writers.stop()
	s.fds.close()
	var err error
	if s.syncer != nil {
		err = s.syncer.close()
	}
	if s.lock != nil {
		if e := s.lock.Close(); err == nil {
			err = e
		}
		s.lock = nil
	}
	return err
}

// Dir returns the data directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// TempDir returns DATA/tmp: on the same filesystem as the chunks, emptied at
// every open. Other packages may stage their own temp files there.
func (s *Store) TempDir() string { return s.tmpDir }

// Path returns the file name of chunk h.
func (s *Store) Path(h Hash) string { return s.layout.Path(s.dir, h) }

// Path returns the file chunk h has, or would have, in a store of layout l
// in the data directory dir.
func (l Layout) Path(dir string, h Hash) string {
	x := h.String()
	if l == LayoutFlat {
		return filepath.Join(dir, "cas", x[0:2], x)
	}
	return filepath.Join(dir, "cas", x[0:2], x[2:4], x)
}

// Stat returns the file information of chunk h, or ErrNotFound.
func (s *Store) Stat(h Hash) (fs.FileInfo, error) {
	fi, err := os.Stat(s.Path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	return fi, err
}

// ReadChunk reads chunk h into buf (grown when too small) and verifies that
// it hashes to h: a mismatch is an error wrapping ErrCorrupt. The returned
// slice aliases buf when it fits.
func (s *Store) ReadChunk(h Hash, buf []byte) ([]byte, error) {
	f, err := s.open(h)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("cas: read chunk %s: %w", h.Short(), err)
	}
	if got := Sum(buf); got != h {
		return nil, fmt.Errorf("%w: chunk %s holds %s", ErrCorrupt, h.Short(), got.Short())
	}
	return buf, nil
}

// Delete removes chunk h. Deleting a missing chunk is not an error. The
// caller must know no one needs it (see media's GC).
func (s *Store) Delete(h Hash) error {
	if s.readOnly {
		return ErrReadOnly
	}
	err := os.Remove(s.Path(h))
	s.fds.drop(h)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cas: delete %s: %w", h.Short(), err)
	}
	return nil
}

// Walk calls fn for every stored chunk, in the order of their paths
// (hashes sorted). Files under cas/ whose names are not hashes are skipped.
// fn's error stops the walk and is returned.
func (s *Store) Walk(fn func(h Hash, info fs.FileInfo) error) error {
	return s.walkDir(s.casDir, fn)
}

// walkDir walks dir as filepath.WalkDir does (entries sorted, a file or
// directory removed meanwhile skipped), opening directories as chunk files
// are (openReading).
func (s *Store) walkDir(dir string, fn func(h Hash, info fs.FileInfo) error) error {
	f, err := s.openReading(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed while walking
	}
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("cas: walk %s: %w", dir, err)
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, d := range ents {
		path := filepath.Join(dir, d.Name())
		if d.IsDir() {
			if err := s.walkDir(path, fn); err != nil {
				return err
			}
			continue
		}
		h, perr := ParseHash(d.Name())
		if perr != nil || path != s.Path(h) {
			continue
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(h, info); err != nil {
			return err
		}
	}
	return nil
}

// openReading opens a chunk file or a directory under cas/ for reading. A
// read-only store (a verification: fsck, a backup's check) opens them
// with O_NOATIME where the process owns them, so reading every chunk of
// the store dirties no inode (relatime still writes the access time of a
// file first read after it was written, which every chunk is).
func (s *Store) openReading(path string) (*os.File, error) {
	if s.readOnly {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOATIME, 0)
		if !errors.Is(err, unix.EPERM) { // EPERM: not the owner, who alone may ask
			return f, err
		}
	}
	return os.Open(path)
}

// Sync makes every chunk renamed into place so far durable. Concurrent
// callers share one filesystem sync.
func (s *Store) Sync() error { return s.syncer.sync() }

// Put stores one chunk durably: a Batch of one. It reports whether the
// chunk was new. data must hash to h; Put does not check (the caller just
// hashed it).
func (s *Store) Put(h Hash, data []byte) (bool, error) { return PutOne(s, h, data) }

// PutOne stores one chunk in w through a batch of one, committed; added
// reports whether it was new.
func PutOne(w BatchWriter, h Hash, data []byte) (added bool, err error) {
	b := w.BeginBatch()
	if added, err = b.Put(h, data); err != nil {
		b.Abort()
		return false, err
	}
	return added, b.Commit()
}

// Touch sets the modification time of chunk h to t. GC's grace period
// counts from a chunk's modification time; tests and tools back-date chunks
// with it.
func (s *Store) Touch(h Hash, t time.Time) error {
	err := os.Chtimes(s.Path(h), t, t)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	return err
}

// probeAnonymous reports whether chunks can be staged as O_TMPFILE files
// and linked to a name here: the filesystem must support O_TMPFILE, and
// linkat must work (AT_EMPTY_PATH or /proc).
func (s *Store) probeAnonymous() bool {
	var h Hash // the zero hash: never a real chunk's name in practice
	f, err := s.openAnonymous(h)
	if err != nil {
		return false
	}
	probe := filepath.Join(s.tmpDir, "probe-link")
	os.Remove(probe)
	err = linkAnonymous(f, probe)
	f.Close()
	os.Remove(probe)
	return err == nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
