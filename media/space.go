package media

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/index"
)

// ErrNoSpace: the disk of the store has less free space than
// Options.MinFreeBytes (or a write hit ENOSPC). Writes are refused until
// space returns; reads go on.
var ErrNoSpace = errors.New("media: no space left on the media store")

// ErrFailed: the index failed (a write could not be made durable) and the
// store takes no more writes; the process must restart. Store.Failed says
// when it happens.
var ErrFailed = index.ErrFailed

// BallastName is the ballast file in the data directory: space held back
// so the index can still commit and open when the disk fills (see
// Options.BallastBytes). Backup, Fsck and GC ignore it.
const BallastName = "ballast"

// A free-space reading that left room is trusted, less what this store
// reserves meanwhile, for spaceRecheck and until a quarter of the
// threshold has been reserved: the index and other programs write too. A
// reading under the threshold is never trusted: the next write looks
// again, so writes resume as soon as space returns.
const spaceRecheck = time.Second

// Default space limits (see Options).
const (
	defaultMinFreeMax = 512 << 20
	defaultBallastMax = 64 << 20
)

// space guards the store's disk: it refuses writes while free space is
// under the threshold, and keeps the ballast file.
type space struct {
	freeSpace func() (free, total uint64, err error)
	now       func() time.Time
	log       *slog.Logger
	minFree   uint64
	ballast   string // the ballast file; "" when none is kept
	ballastSz int64

	mu        sync.Mutex
	checkedAt time.Time
	free      uint64 // at checkedAt, less what was reserved since
	reserved  uint64 // reserved since checkedAt
	ok        bool   // the last reading left room
	haveBall  bool   // the ballast file is in place
	makeBall  bool   // Options.KeepBallast: make the ballast when missing
	warned    bool   // the low-space warning was logged
}

// statfsFree returns the free space (available to unprivileged users) and
// size of the filesystem holding dir.
func statfsFree(dir string) func() (free, total uint64, err error) {
	return func() (uint64, uint64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, 0, fmt.Errorf("media: statfs %s: %w", dir, err)
		}
		return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
	}
}

// newSpace reads the disk once to fill the defaults of opts; ready, once
// the store has opened, creates the ballast.
func newSpace(opts Options) *space {
	sp := &space{freeSpace: opts.FreeSpace, now: opts.Now, log: opts.Logger}
	if sp.freeSpace == nil {
		sp.freeSpace = statfsFree(opts.Dir)
	}
	_, total, err := sp.freeSpace()
	if err != nil {
		sp.log.Warn("cannot read the free space of the store's disk; writes are not limited by it", "err", err)
	}
	switch {
	case opts.MinFreeBytes > 0:
		sp.minFree = uint64(opts.MinFreeBytes)
	case opts.MinFreeBytes == 0:
		sp.minFree = min(total/50, defaultMinFreeMax)
	}
	switch {
	case opts.BallastBytes > 0:
		sp.ballastSz = opts.BallastBytes
	case opts.BallastBytes == 0:
		sp.ballastSz = int64(min(total/100, defaultBallastMax))
	}
	sp.makeBall = opts.KeepBallast
	if err == nil && sp.minFree > 0 && sp.minFree >= total {
		sp.log.Warn("min_free_bytes is not less than the size of the store's filesystem: every write will be refused",
			"min_free_bytes", sp.minFree, "filesystem_bytes", total)
	}
	if sp.ballastSz > 0 {
		sp.ballast = filepath.Join(opts.Dir, BallastName)
		fi, err := os.Stat(sp.ballast)
		switch {
		case err == nil && (fi.Size() >= sp.ballastSz || !sp.makeBall):
			sp.haveBall = true
		case sp.makeBall && (err == nil || !errors.Is(err, os.ErrNotExist)):
			os.Remove(sp.ballast) // smaller than asked: made again below
		}
	}
	return sp
}

// ready takes the first reading once the store has opened, making the
// ballast when there is room (not before: a refused open changes nothing).
func (sp *space) ready() {
	if sp == nil {
		return
	}
	free, _, err := sp.freeSpace()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err != nil {
		sp.ok = false
		return
	}
	sp.refresh(free)
}

// need is the free space writes must leave: the threshold, plus the
// ballast while it is missing (it is made again before writes resume).
func (sp *space) need() uint64 {
	if sp.makeBall && sp.ballast != "" && !sp.haveBall {
		return sp.minFree + uint64(sp.ballastSz)
	}
	return sp.minFree
}

// reserve is called before the store writes about n bytes. It returns an
// error wrapping ErrNoSpace when that would leave less free space than the
// threshold. Cheap: the disk is read at most every spaceRecheck while
// there is room (and whenever there was not).
func (sp *space) reserve(n int64) error {
	if sp == nil {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	u := uint64(max(n, 0))
	if sp.ok && sp.now().Sub(sp.checkedAt) < spaceRecheck && sp.reserved+u <= sp.minFree/4 && sp.free >= sp.need()+u {
		sp.free -= u
		sp.reserved += u
		return nil
	}
	free, _, err := sp.freeSpace()
	if err != nil {
		sp.log.Warn("cannot read the free space of the store's disk", "err", err)
		return nil // unknown is not full; ENOSPC still maps to ErrNoSpace
	}
	sp.refresh(free)
	if !sp.ok || sp.free < sp.need()+u {
		if !sp.warned {
			sp.warned = true
			sp.log.Error("the store's disk is nearly full: writes are refused until space is freed",
				"free_bytes", free, "min_free_bytes", sp.need())
		}
		return fmt.Errorf("%w: %d bytes free, %d kept free", ErrNoSpace, free, sp.need())
	}
	sp.free -= u
	sp.reserved = u
	if sp.warned {
		sp.warned = false
		sp.log.Info("free space is back over the threshold: writes resume", "free_bytes", free)
	}
	return nil
}

// refresh takes a new reading of free space; when there is room again it
// makes the ballast first. sp.mu is held.
func (sp *space) refresh(free uint64) {
	sp.checkedAt, sp.reserved = sp.now(), 0
	if sp.makeBall && sp.ballast != "" && !sp.haveBall && free >= sp.minFree+uint64(sp.ballastSz) {
		if err := makeBallast(sp.ballast, sp.ballastSz); err != nil {
			sp.log.Warn("cannot create the ballast file", "path", sp.ballast, "err", err)
		} else {
			sp.haveBall = true
			free -= uint64(sp.ballastSz)
			sp.log.Info("ballast file in place", "path", sp.ballast, "bytes", sp.ballastSz)
		}
	}
	sp.free = free
	sp.ok = free >= sp.need()
}

// releaseBallast deletes the ballast file so the index can commit or open
// on a full disk. The index calls it on ENOSPC.
func (sp *space) releaseBallast() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.ballast == "" || !sp.haveBall {
		return
	}
	if err := os.Remove(sp.ballast); err != nil && !errors.Is(err, os.ErrNotExist) {
		sp.log.Error("disk full: cannot release the ballast file", "path", sp.ballast, "err", err)
		return
	}
	sp.haveBall, sp.ok = false, false
	sp.log.Error("disk full: ballast file released so the index can write; free space on the disk",
		"path", sp.ballast, "bytes", sp.ballastSz)
}

// makeBallast creates path with size bytes actually allocated (fallocate,
// or zeros where the filesystem cannot), durably.
func makeBallast(path string, size int64) error {
	return replaceFile(path, 0o600, func(f *os.File) error {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			err = writeZeros(f, size)
		}
		return err
	})
}

func writeZeros(w io.Writer, n int64) error {
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k, err := w.Write(zeros[:min(n, int64(len(zeros)))])
		if err != nil {
			return err
		}
		n -= int64(k)
	}
	return nil
}

// noSpace makes a write error caused by a full disk (ENOSPC) wrap
// ErrNoSpace too.
func noSpace(err error) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrNoSpace) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Failed is closed when the store has failed (see ErrFailed): the owner
// should stop serving and exit; Err says why.
func (s *Store) Failed() <-chan struct{} { return s.idx.Failed() }

// Err returns the store's failure (wrapping ErrFailed), or nil.
func (s *Store) Err() error { return s.idx.Err() }

// chunkBytesHere is how much of the data directory's filesystem n bytes of
// new chunks take: all of them for the local chunk store, none when the
// chunks live elsewhere (Options.ChunksAt, an object store).
func (s *Store) chunkBytesHere(n int64) int64 {
	if s.opts.ChunksAt != "" {
		return 0
	}
	return n
}
