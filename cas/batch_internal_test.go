package cas

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"
)

// TestCommitClearsRenameMarks: once a batch's names are durable, later
// batches reusing its chunks must not pay another sync for them, and the
// marks must not pile up for the life of the process.
func TestCommitClearsRenameMarks(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := s.NewBatch()
	for _, c := range []string{"a", "b", "c"} {
		if _, err := b.Put(Sum([]byte(c)), []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.renamed); n != 0 {
		t.Errorf("after Commit, %d chunks still marked as not yet durable", n)
	}
	again := s.NewBatch()
	if _, err := again.Put(Sum([]byte("a")), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if again.needSync {
		t.Error("a batch reusing a durable chunk asks for a sync")
	}
	again.Abort()
}

func openInternal(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestWriterFaultFailsBatch: an error inside a writer goroutine must reach
// the caller, and nothing of the batch may be named.
func TestWriterFaultFailsBatch(t *testing.T) {
	s := openInternal(t)
	bad := Sum([]byte("bad"))
	s.stageFault = func(h Hash) error {
		if h == bad {
			return errors.New("injected write failure")
		}
		return nil
	}
	b := s.NewBatch()
	var errs []error
	for _, c := range []string{"a", "bad", "c", "d"} {
		_, err := b.Put(Sum([]byte(c)), []byte(c))
		errs = append(errs, err)
	}
	errs = append(errs, b.Commit())
	if errors.Join(errs...) == nil {
		t.Fatal("a batch whose write failed committed without error")
	}
	for _, c := range []string{"a", "bad", "c", "d"} {
		if _, err := s.Stat(Sum([]byte(c))); !errors.Is(err, ErrNotFound) {
			t.Errorf("chunk %q of a failed batch: Stat = %v, want ErrNotFound", c, err)
		}
	}
	if n := s.openFiles.Load(); n != 0 {
		t.Errorf("%d staged files still open after a failed batch", n)
	}
}

// TestNoDescriptorLeaks: Commit and Abort close every staged file.
func TestNoDescriptorLeaks(t *testing.T) {
	s := openInternal(t)
	if !s.tmpfileOK.Load() {
		t.Skip("no O_TMPFILE here")
	}
	b := s.NewBatch()
	for i := range 50 {
		c := []byte{byte(i), 1}
		b.Put(Sum(c), c)
	}
	b.Len() // waits for the writers
	if n := s.openFiles.Load(); n != 50 {
		t.Errorf("%d files open while staging 50 chunks, want 50", n)
	}
	b.Abort()
	if n := s.openFiles.Load(); n != 0 {
		t.Errorf("%d files open after Abort, want 0", n)
	}
	b = s.NewBatch()
	for i := range 50 {
		c := []byte{byte(i), 2}
		b.Put(Sum(c), c)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := s.openFiles.Load(); n != 0 {
		t.Errorf("%d files open after Commit, want 0", n)
	}
}

// TestCommitOrder: a chunk's content is synced before it is named, and the
// name is synced before Commit returns.
func TestCommitOrder(t *testing.T) {
	s := openInternal(t)
	c := []byte("ordered")
	h := Sum(c)
	var named []bool // at each sync: does the name exist yet?
	real := s.syncer.syncfs
	s.syncer.syncfs = func(fd int) error {
		_, err := os.Lstat(s.Path(h))
		named = append(named, err == nil)
		return real(fd)
	}
	if _, err := s.Put(h, c); err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true}; !slices.Equal(named, want) {
		t.Errorf("name present at each sync = %v, want %v (sync content, name, sync name)", named, want)
	}
}

// TestSyncFailureIsSticky: after the filesystem fails a sync, no later
// commit may claim durability.
func TestSyncFailureIsSticky(t *testing.T) {
	s := openInternal(t)
	fail := true
	real := s.syncer.syncfs
	s.syncer.syncfs = func(fd int) error {
		if fail {
			fail = false
			return syscall.EIO
		}
		return real(fd)
	}
	if _, err := s.Put(Sum([]byte("x")), []byte("x")); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Put over a failing sync = %v, want ErrSyncFailed", err)
	}
	if _, err := s.Put(Sum([]byte("y")), []byte("y")); !errors.Is(err, ErrSyncFailed) {
		t.Errorf("Put after a failed sync = %v, want ErrSyncFailed (sticky)", err)
	}
}

// TestNamedTempFallback: where O_TMPFILE is unavailable, or the descriptor
// budget is spent, chunks go through named temp files in DATA/tmp and
// still end up durable under their names.
func TestNamedTempFallback(t *testing.T) {
	for name, setup := range map[string]func(s *Store){
		"no O_TMPFILE":     func(s *Store) { s.tmpfileOK.Store(false) },
		"budget exhausted": func(s *Store) { s.maxOpen = 2 },
	} {
		t.Run(name, func(t *testing.T) {
			s := openInternal(t)
			setup(s)
			b := s.NewBatch()
			var hs []Hash
			for i := range 20 {
				c := []byte{byte(i), 3}
				hs = append(hs, Sum(c))
				if _, err := b.Put(Sum(c), c); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			for i, h := range hs {
				got, err := s.ReadChunk(h, nil)
				if err != nil || !slices.Equal(got, []byte{byte(i), 3}) {
					t.Errorf("chunk %d: %q, %v", i, got, err)
				}
			}
			entries, _ := os.ReadDir(s.TempDir())
			if len(entries) != 1 {
				t.Errorf("tmp holds %d entries after Commit, want only LOCK", len(entries))
			}
			if n := s.openFiles.Load(); n != 0 {
				t.Errorf("%d files open after Commit", n)
			}
		})
	}
}
