package cas

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// syncer is a group commit for the filesystem: sync returns once a
// syncfs(2) that started after the call has finished, and callers that
// arrive while one is running share the next one. With one sync per batch
// step instead of an fsync per file and per directory, small uploads cost
// what the disk's flush costs, shared among everyone waiting.
type syncer struct {
	f *os.File // any file on the filesystem; syncfs flushes the whole filesystem

	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // number of syncs started
	done    uint64 // number of syncs finished
	running bool
	err     error              // sticky: the first failure
	syncfs  func(fd int) error // unix.Syncfs; tests may wrap it
}

// ErrSyncFailed means the filesystem failed to make writes durable. It is
// sticky: every later write fails too, until the store is reopened.
var ErrSyncFailed = errors.New("cas: filesystem sync failed")

func newSyncer(dir string) (*syncer, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("cas: open %s for sync: %w", dir, err)
	}
	s := &syncer{f: f, syncfs: unix.Syncfs}
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

func (s *syncer) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A sync already running may have started before our writes: we need
	// the next one.
	target := s.started + 1
	for s.done < target {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.started++
		gen := s.started
		s.mu.Unlock()
		err := s.syncfs(int(s.f.Fd()))
		s.mu.Lock()
		s.running = false
		s.done = gen
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("%w: syncfs: %v", ErrSyncFailed, err)
		}
		s.cond.Broadcast()
	}
	// Linux reports a writeback error to one syncfs and then forgets it, and
	// we cannot tell whose pages were lost: after one failure no sync is
	// trusted again until the store is reopened (Pebble does the same).
	return s.err
}

func (s *syncer) close() error { return s.f.Close() }
