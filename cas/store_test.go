package cas_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/castest"
	"github.com/mxcas/mxcas/testkit"
)

func TestStore(t *testing.T) {
	testStore(t, func(t *testing.T) *cas.Store {
		t.Helper()
		return openStore(t, t.TempDir())
	})
}

// openStore opens the store in dir and closes it when the test ends.
func openStore(t testing.TB, dir string) *cas.Store {
	t.Helper()
	s, err := cas.Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

type chunk struct {
	h    cas.Hash
	data []byte
}

func newChunk(seed uint64) chunk {
	// Sizes vary so length bugs show; some are empty-ish, none are equal.
	c := castest.NewChunk(seed, 1+int(seed*7919%5000))
	return chunk{c.Hash, c.Data}
}

func put(t testing.TB, s *cas.Store, c chunk) bool {
	t.Helper()
	added, err := s.Put(c.h, c.data)
	if err != nil {
		t.Fatalf("Put(%s): %v", c.h.Short(), err)
	}
	return added
}

// checkChunk fails unless every read path returns c's content.
func checkChunk(t testing.TB, s *cas.Store, c chunk) {
	t.Helper()
	castest.CheckChunk(t, s, castest.Chunk{Hash: c.h, Data: c.data})
}

// checkMissing fails unless every read path reports ErrNotFound for h.
func checkMissing(t testing.TB, s *cas.Store, h cas.Hash) {
	t.Helper()
	castest.CheckMissing(t, s, h)
	if err := s.Touch(h, time.Now()); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("Touch(%s) error = %v, want ErrNotFound", h.Short(), err)
	}
}

// walked returns the hashes Walk reports, sorted, failing on a repeat.
func walked(t testing.TB, s *cas.Store) []cas.Hash {
	t.Helper()
	var hs []cas.Hash
	err := s.Walk(func(h cas.Hash, info fs.FileInfo) error {
		if info.Name() != h.String() {
			t.Errorf("Walk: info.Name() = %q for hash %s", info.Name(), h)
		}
		hs = append(hs, h)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	slices.SortFunc(hs, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(hs); i++ {
		if hs[i] == hs[i-1] {
			t.Errorf("Walk reported %s twice", hs[i])
		}
	}
	return hs
}

func sortedHashes(cs ...chunk) []cas.Hash {
	hs := make([]cas.Hash, 0, len(cs))
	for _, c := range cs {
		hs = append(hs, c.h)
	}
	slices.SortFunc(hs, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(hs)
}

// checkTempEmpty fails unless DATA/tmp holds nothing but the lock file.
func checkTempEmpty(t testing.TB, dir string) {
	t.Helper()
	if got, want := dirNames(t, filepath.Join(dir, "tmp")), []string{"LOCK"}; !slices.Equal(got, want) {
		t.Errorf("tmp holds %q, want %q", got, want)
	}
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// chunkPath is the documented layout: DATA/cas/ab/cd/<64 hex>.
func chunkPath(dir string, h cas.Hash) string {
	x := h.String()
	return filepath.Join(dir, "cas", x[0:2], x[2:4], x)
}

func inode(t testing.TB, fi fs.FileInfo) uint64 {
	t.Helper()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("FileInfo.Sys() is %T, want *syscall.Stat_t", fi.Sys())
	}
	return st.Ino
}

// testStore is the conformance suite for a chunk store; open returns a new,
// empty store that is closed when the test ends.
func testStore(t *testing.T, open func(t *testing.T) *cas.Store) {
	t.Run("PutThenRead", func(t *testing.T) {
		s := open(t)
		c := newChunk(1)
		if !put(t, s, c) {
			t.Error("Put of a new chunk: added = false, want true")
		}
		checkChunk(t, s, c)

		// ReadChunk reuses a buffer that is big enough, grows one that is not.
		big := make([]byte, 0, len(c.data)+10)
		got, err := s.ReadChunk(c.h, big)
		if err != nil || !bytes.Equal(got, c.data) {
			t.Fatalf("ReadChunk(big buf) = %d bytes, %v", len(got), err)
		}
		if &got[0] != &big[:1][0] {
			t.Error("ReadChunk with a big enough buffer did not reuse it")
		}
		got, err = s.ReadChunk(c.h, make([]byte, 3))
		if err != nil || !bytes.Equal(got, c.data) {
			t.Errorf("ReadChunk(small buf) = %d bytes, %v", len(got), err)
		}

		// An empty chunk is a chunk too.
		empty := chunk{cas.Sum(nil), nil}
		if !put(t, s, empty) {
			t.Error("Put of the empty chunk: added = false, want true")
		}
		checkChunk(t, s, empty)
	})

	t.Run("PutExisting", func(t *testing.T) {
		s := open(t)
		c := newChunk(2)
		put(t, s, c)
		// Back-date the file so a rewrite would show in the mtime.
		old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := s.Touch(c.h, old); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		before, err := s.Stat(c.h)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if !before.ModTime().Equal(old) {
			t.Fatalf("ModTime after Touch = %v, want %v", before.ModTime(), old)
		}
		for range 2 {
			if put(t, s, c) {
				t.Error("Put of a stored chunk: added = true, want false")
			}
		}
		after, err := s.Stat(c.h)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("ModTime after Put of existing = %v, want %v", after.ModTime(), before.ModTime())
		}
		if got, want := inode(t, after), inode(t, before); got != want {
			t.Errorf("inode after Put of existing = %d, want %d", got, want)
		}
		checkChunk(t, s, c)
		checkTempEmpty(t, s.Dir())
	})

	t.Run("Missing", func(t *testing.T) {
		s := open(t)
		checkMissing(t, s, newChunk(3).h)
		var zero cas.Hash
		checkMissing(t, s, zero)
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		c, keep := newChunk(4), newChunk(5)
		put(t, s, c)
		put(t, s, keep)
		if err := s.Delete(c.h); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkMissing(t, s, c.h)
		checkChunk(t, s, keep)
		if got, want := walked(t, s), sortedHashes(keep); !slices.Equal(got, want) {
			t.Errorf("Walk after Delete = %v, want %v", got, want)
		}
		// Deleted chunks can be stored again.
		if !put(t, s, c) {
			t.Error("Put after Delete: added = false, want true")
		}
		checkChunk(t, s, c)
	})

	t.Run("DeleteMissing", func(t *testing.T) {
		s := open(t)
		c := newChunk(6)
		if err := s.Delete(c.h); err != nil {
			t.Errorf("Delete of a never-stored chunk = %v, want nil", err)
		}
		put(t, s, c)
		for i := range 2 {
			if err := s.Delete(c.h); err != nil {
				t.Errorf("Delete #%d = %v, want nil", i+1, err)
			}
		}
	})

	t.Run("Walk", func(t *testing.T) {
		s := open(t)
		if got := walked(t, s); len(got) != 0 {
			t.Errorf("Walk of an empty store = %v, want nothing", got)
		}
		var cs []chunk
		for i := range 50 {
			c := newChunk(100 + uint64(i))
			put(t, s, c)
			cs = append(cs, c)
		}
		casDir := filepath.Join(s.Dir(), "cas")
		h0 := cs[0].h.String()
		// Misplaced: a valid hash under another chunk's directory.
		other := cs[1].h.String()
		if other[:4] == h0[:4] {
			t.Fatal("test chunks share a directory; pick other seeds")
		}
		junk := map[string]string{
			"README":                           "not a chunk",
			"ab/cd/notahash":                   "junk",
			"ab/cd/" + strings.Repeat("0", 63): "63 hex",
			h0[:2] + "/" + h0[2:4] + "/" + h0 + ".tmp": "suffix",
			h0[:2] + "/" + h0[2:4] + "/" + other:       "misplaced",
			other:                                      "at the top",
			h0[:2] + "/" + other:                       "one level",
			// A hash-looking name that Open can never find.
			h0[:2] + "/" + h0[2:4] + "/" + strings.ToUpper(h0):                                   "upper case",
			strings.ToUpper(h0[:2]) + "/" + strings.ToUpper(h0[2:4]) + "/" + strings.ToUpper(h0): "upper case dirs",
			"x" + h0[:2] + "/" + h0[2:4] + "/" + h0:                                              "prefixed dir",
		}
		for name, content := range junk {
			p := filepath.Join(casDir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// An empty chunk directory.
		if err := os.MkdirAll(filepath.Join(casDir, "ff", "ee"), 0o750); err != nil {
			t.Fatal(err)
		}
		got, want := walked(t, s), sortedHashes(cs...)
		if !slices.Equal(got, want) {
			t.Errorf("Walk reported %d hashes, want the %d stored", len(got), len(want))
			for _, h := range got {
				if _, ok := slices.BinarySearchFunc(want, h, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) }); !ok {
					t.Errorf("Walk reported %s, which was not stored", h)
				}
			}
		}
		// Every hash Walk reports is readable.
		err := s.Walk(func(h cas.Hash, info fs.FileInfo) error {
			if _, err := s.ReadChunk(h, nil); err != nil {
				t.Errorf("Walk reported %s, ReadChunk: %v", h.Short(), err)
			}
			return nil
		})
		if err != nil {
			t.Errorf("Walk: %v", err)
		}

		// fn's error stops the walk and is returned.
		stop := errors.New("stop")
		calls := 0
		err = s.Walk(func(cas.Hash, fs.FileInfo) error { calls++; return stop })
		if !errors.Is(err, stop) {
			t.Errorf("Walk with a failing fn = %v, want %v", err, stop)
		}
		if calls != 1 {
			t.Errorf("Walk called fn %d times after it failed, want 1", calls)
		}
	})

	t.Run("Corrupt", func(t *testing.T) {
		s := open(t)
		c, d := newChunk(7), newChunk(8)
		put(t, s, c)
		put(t, s, d)
		testkit.FlipByte(t, chunkPath(s.Dir(), c.h))
		if _, err := s.ReadChunk(c.h, nil); !errors.Is(err, cas.ErrCorrupt) {
			t.Errorf("ReadChunk of a flipped chunk error = %v, want ErrCorrupt", err)
		}
		f, err := s.OpenChunk(c.h)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(io.Discard, cas.VerifyReader(f, c.h)); !errors.Is(err, cas.ErrCorrupt) {
			t.Errorf("VerifyReader over a flipped chunk error = %v, want ErrCorrupt", err)
		}
		// A truncated chunk is corrupt too.
		if err := os.Truncate(chunkPath(s.Dir(), d.h), int64(len(d.data)-1)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadChunk(d.h, nil); !errors.Is(err, cas.ErrCorrupt) {
			t.Errorf("ReadChunk of a truncated chunk error = %v, want ErrCorrupt", err)
		}
	})

	t.Run("Layout", func(t *testing.T) {
		s := open(t)
		c := newChunk(9)
		put(t, s, c)
		x := c.h.String()
		p := filepath.Join(s.Dir(), "cas", x[0:2], x[2:4], x)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("chunk not at %s: %v", p, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() != int64(len(c.data)) {
			t.Errorf("%s: mode %v size %d, want a regular file of %d bytes", p, fi.Mode(), fi.Size(), len(c.data))
		}
		if got := s.Path(c.h); got != p {
			t.Errorf("Path = %s, want %s", got, p)
		}
		if got, want := s.TempDir(), filepath.Join(s.Dir(), "tmp"); got != want {
			t.Errorf("TempDir = %s, want %s", got, want)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		s := open(t)
		stored := newChunk(10)
		put(t, s, stored)
		b := s.NewBatch()
		var cs []chunk
		wantAdded := 0
		for i := range 200 {
			// Every chunk three times, and one already in the store.
			c := newChunk(1000 + uint64(i/3))
			if i == 100 {
				c = stored
			}
			added, err := b.Put(c.h, c.data)
			if err != nil {
				t.Fatalf("Batch.Put #%d: %v", i, err)
			}
			if want := i%3 == 0 && i != 100; added != want {
				t.Errorf("Batch.Put #%d: added = %v, want %v", i, added, want)
			}
			if added {
				wantAdded++
			}
			cs = append(cs, c)
		}
		if got := b.Len(); got != wantAdded {
			t.Errorf("Len = %d, want %d", got, wantAdded)
		}
		// Nothing is visible before Commit.
		checkMissing(t, s, cs[0].h)
		if err := b.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		b.Abort() // safe after Commit
		for _, c := range cs {
			checkChunk(t, s, c)
		}
		if got, want := walked(t, s), sortedHashes(cs...); !slices.Equal(got, want) {
			t.Errorf("Walk = %d hashes, want %d", len(got), len(want))
		}
		checkTempEmpty(t, s.Dir())

		// A batch of nothing new commits trivially.
		b = s.NewBatch()
		for _, c := range cs[:10] {
			if added, err := b.Put(c.h, c.data); err != nil || added {
				t.Errorf("Batch.Put of stored = %v, %v; want false, nil", added, err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Errorf("Commit of nothing new: %v", err)
		}
		if err := s.NewBatch().Commit(); err != nil {
			t.Errorf("Commit of an empty batch: %v", err)
		}
	})

	t.Run("BatchAbort", func(t *testing.T) {
		s := open(t)
		b := s.NewBatch()
		var cs []chunk
		for i := range 20 {
			c := newChunk(2000 + uint64(i))
			if _, err := b.Put(c.h, c.data); err != nil {
				t.Fatalf("Batch.Put: %v", err)
			}
			cs = append(cs, c)
		}
		for _, c := range cs[:3] {
			checkMissing(t, s, c.h) // staged, not yet named
		}
		b.Abort()
		b.Abort() // twice is fine
		checkTempEmpty(t, s.Dir())
		for _, c := range cs {
			checkMissing(t, s, c.h)
		}
		if got := walked(t, s); len(got) != 0 {
			t.Errorf("Walk after Abort = %d hashes, want none", len(got))
		}
		// The aborted chunks can be put later.
		for _, c := range cs[:3] {
			if !put(t, s, c) {
				t.Error("Put after Abort: added = false, want true")
			}
			checkChunk(t, s, c)
		}
	})

	t.Run("ConcurrentSamePut", func(t *testing.T) {
		s := open(t)
		c := newChunk(11)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := s.Put(c.h, c.data); err != nil {
					t.Errorf("Put: %v", err)
				}
			})
		}
		wg.Wait()
		checkOneFile(t, s, c)
		checkTempEmpty(t, s.Dir())
	})

	t.Run("ConcurrentOverlappingBatches", func(t *testing.T) {
		s := open(t)
		const workers, perBatch, distinct = 16, 24, 40
		cs := make([]chunk, distinct)
		for i := range cs {
			cs[i] = newChunk(3000 + uint64(i))
		}
		var wg sync.WaitGroup
		for g := range workers {
			wg.Go(func() {
				b := s.NewBatch()
				for j := range perBatch {
					c := cs[(g*3+j)%distinct]
					if _, err := b.Put(c.h, c.data); err != nil {
						t.Errorf("Batch.Put: %v", err)
						b.Abort()
						return
					}
				}
				if err := b.Commit(); err != nil {
					t.Errorf("Commit: %v", err)
				}
			})
		}
		wg.Wait()
		for _, c := range cs {
			checkOneFile(t, s, c)
		}
		if got, want := walked(t, s), sortedHashes(cs...); !slices.Equal(got, want) {
			t.Errorf("Walk = %d hashes, want %d", len(got), len(want))
		}
		checkTempEmpty(t, s.Dir())
	})

	t.Run("ConcurrentBatchesAndSync", func(t *testing.T) {
		s := open(t)
		const workers, perBatch = 32, 20
		var wg sync.WaitGroup
		for g := range workers {
			wg.Go(func() {
				b := s.NewBatch()
				for j := range perBatch {
					// Neighbouring workers share half their chunks.
					c := newChunk(4000 + uint64(g*perBatch/2+j))
					if _, err := b.Put(c.h, c.data); err != nil {
						t.Errorf("Batch.Put: %v", err)
						b.Abort()
						return
					}
				}
				if err := b.Commit(); err != nil {
					t.Errorf("Commit: %v", err)
				}
			})
			wg.Go(func() {
				if err := s.Sync(); err != nil {
					t.Errorf("Sync: %v", err)
				}
			})
		}
		wg.Wait()
		if err := s.Sync(); err != nil {
			t.Errorf("Sync: %v", err)
		}
		var want []chunk
		for i := range (workers + 1) * perBatch / 2 {
			want = append(want, newChunk(4000+uint64(i)))
		}
		for _, c := range want {
			checkChunk(t, s, c)
		}
		if got := walked(t, s); !slices.Equal(got, sortedHashes(want...)) {
			t.Errorf("Walk = %d hashes, want %d", len(got), len(want))
		}
		checkTempEmpty(t, s.Dir())
	})
}

// checkOneFile fails unless c is stored in exactly one file, with its
// content, in its chunk directory.
func checkOneFile(t testing.TB, s *cas.Store, c chunk) {
	t.Helper()
	p := chunkPath(s.Dir(), c.h)
	n := 0
	for _, name := range dirNames(t, filepath.Dir(p)) {
		if name == c.h.String() {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d files named %s, want 1", n, c.h.Short())
	}
	checkChunk(t, s, c)
}

// TestCrashBeforeRename simulates a crash between staging and renaming: temp
// files are left in tmp/ and must be gone, with nothing else, on reopen.
func TestCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	s, err := cas.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	committed := newChunk(20)
	if _, err := s.Put(committed.h, committed.data); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	var cs []chunk
	for i := range 10 {
		c := newChunk(5000 + uint64(i))
		if _, err := b.Put(c.h, c.data); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	// Neither Commit nor Abort: the process "dies" here.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	tmp := filepath.Join(dir, "tmp")
	// A small file's temp file, as media's small-file writes leave it when
	// killed, and a dot file that is not one.
	if err := os.WriteFile(filepath.Join(dir, ".FORMAT-12345"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".keep-me"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := os.Stat(filepath.Join(dir, ".FORMAT-12345")); err == nil {
			t.Error("a stale .FORMAT-12345 survived reopening")
		}
		if _, err := os.Stat(filepath.Join(dir, ".keep-me")); err != nil {
			t.Errorf("reopening removed .keep-me: %v", err)
		}
	}()
	// Leftovers of other kinds, as an earlier crash or another package
	// staging in TempDir might leave them.
	if err := os.WriteFile(filepath.Join(tmp, "chunk-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "upload-1", "part"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "upload-1", "part", "x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	checkTempEmpty(t, dir)
	for _, c := range cs {
		checkMissing(t, s, c.h)
	}
	checkChunk(t, s, committed)
	if got, want := walked(t, s), sortedHashes(committed); !slices.Equal(got, want) {
		t.Errorf("Walk after reopen = %v, want %v", got, want)
	}
	b = s.NewBatch()
	for _, c := range cs {
		if added, err := b.Put(c.h, c.data); err != nil || !added {
			t.Errorf("Batch.Put after reopen = %v, %v; want true, nil", added, err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit after reopen: %v", err)
	}
	for _, c := range cs {
		checkChunk(t, s, c)
	}
	checkTempEmpty(t, dir)
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s1, err := cas.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := newChunk(30)
	b := s1.NewBatch()
	if _, err := b.Put(c.h, c.data); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(s1.TempDir(), "chunk-live")
	if err := os.WriteFile(live, []byte("a live writer's temp file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s2, err := cas.Open(dir)
		if !errors.Is(err, cas.ErrLocked) {
			if err == nil {
				s2.Close()
			}
			t.Fatalf("second Open #%d error = %v, want ErrLocked", i+1, err)
		}
	}
	// The failed Open must not have cleaned up the live store's temp files
	// (named ones, as staged where O_TMPFILE is unavailable).
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a failed second Open removed the live store's temp file: %v", err)
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit after a failed second Open: %v", err)
	}
	checkChunk(t, s1, c)
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openStore(t, dir)
	checkChunk(t, s2, c)
}

// TestOpenNested checks a data directory that does not exist yet is made.
func TestOpenNested(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openStore(t, dir)
	if got := s.Dir(); got != dir {
		t.Errorf("Dir = %s, want %s", got, dir)
	}
	for _, sub := range []string{"cas", "tmp"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v, want a directory", sub, err)
		}
	}
	checkTempEmpty(t, dir)
	c := newChunk(40)
	put(t, s, c)
	checkChunk(t, s, c)
}

// TestBatchWriteErrorPoisonsBatch: a chunk that could not be written makes
// the batch fail (at a later Put or at Commit) and places nothing, so a
// caller can never commit records that refer to it.
func TestBatchWriteErrorPoisonsBatch(t *testing.T) {
	s := openStore(t, t.TempDir())
	c := newChunk(50)
	ok := newChunk(51)
	// Make staging c fail: a file where its directory should be.
	x := c.h.String()
	if err := os.MkdirAll(filepath.Join(s.Dir(), "cas", x[0:2]), 0o750); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(s.Dir(), "cas", x[0:2], x[2:4])
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	_, err1 := b.Put(c.h, c.data)
	_, err2 := b.Put(ok.h, ok.data)
	err3 := b.Commit()
	if err1 == nil && err2 == nil && err3 == nil {
		t.Fatal("a batch with an unwritable chunk committed without error")
	}
	checkTempEmpty(t, s.Dir())
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	checkMissing(t, s, c.h)
	b = s.NewBatch()
	if added, err := b.Put(c.h, c.data); err != nil || !added {
		t.Fatalf("Put after the fault is gone = %v, %v; want true, nil", added, err)
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkChunk(t, s, c)
}

// TestLockDir: LockDir takes the lock a Store takes, so each keeps the
// other out of the data directory until released.
func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // missing: LockDir makes it
	lock, err := cas.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := cas.Open(dir); !errors.Is(err, cas.ErrLocked) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open under LockDir: %v, want ErrLocked", err)
	}
	if _, err := cas.LockDir(dir); !errors.Is(err, cas.ErrLocked) {
		t.Fatalf("second LockDir: %v, want ErrLocked", err)
	}
	lock.Close()
	openStore(t, dir) // closed when the test ends
	if _, err := cas.LockDir(dir); !errors.Is(err, cas.ErrLocked) {
		t.Errorf("LockDir under Open: %v, want ErrLocked", err)
	}
}
