// Package castest is the conformance suite for cas.Storage: every
// implementation (the filesystem Store, MemStore, later object storage)
// runs Run in its tests, as perkeep's storagetest and kopia's VerifyStorage.
// It checks the contracts written in cas/storage.go and nothing
// implementation-specific (layout, temp files, crash safety stay in each
// implementation's own tests). It imports only cas.
package castest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/cas"
)

// Options adapt the suite to an implementation.
type Options struct {
	// Damage changes the stored bytes of chunk h in s (a store newStore
	// returned; h is stored and at least one byte long) so that they no
	// longer hash to h, as a failing disk would: flip a byte in the middle.
	// Nil skips the damage test.
	Damage func(t *testing.T, s cas.Storage, h cas.Hash)
	// MaxChunk is the largest chunk the suite stores (default 256 KiB,
	// chunker.DefaultParams.Max).
	MaxChunk int
}

// Run runs the suite. newStore returns a new, empty store, and closes it
// when the test ends (t.Cleanup); the suite never calls Close.
func Run(t *testing.T, newStore func(t *testing.T) cas.Storage, opts Options) {
	if opts.MaxChunk <= 0 {
		opts.MaxChunk = 256 << 10
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s cas.Storage, opts Options)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyChunk", testEmptyChunk},
		{"LargeChunk", testLargeChunk},
		{"Missing", testMissing},
		{"Uncommitted", testUncommitted},
		{"Abort", testAbort},
		{"PutCopiesData", testPutCopiesData},
		{"Duplicate", testDuplicate},
		{"ReadChunkBuffer", testReadChunkBuffer},
		{"Seek", testSeek},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"Walk", testWalk},
		{"WalkStops", testWalkStops},
		{"Damaged", testDamaged},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t), opts)
		})
	}
}

// Chunk is a test chunk: content and its hash.
type Chunk struct {
	Hash cas.Hash
	Data []byte
}

// NewChunk returns a chunk of size deterministic pseudo-random bytes,
// distinct for every (seed, size).
func NewChunk(seed uint64, size int) Chunk {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(size))
	b := make([]byte, size)
	rand.NewChaCha8(key).Read(b)
	return Chunk{cas.Sum(b), b}
}

// small returns a chunk of a seed-dependent size between 1 and 5000 bytes.
func small(seed uint64) Chunk { return NewChunk(seed, 1+int(seed*7919%5000)) }

// putCommit stores cs in one batch, failing the test on error, and returns
// what each Put reported.
func putCommit(t *testing.T, s cas.Storage, cs ...Chunk) []bool {
	t.Helper()
	b := s.BeginBatch()
	added := make([]bool, len(cs))
	for i, c := range cs {
		a, err := b.Put(c.Hash, c.Data)
		if err != nil {
			b.Abort()
			t.Fatalf("Put(%s): %v", c.Hash.Short(), err)
		}
		added[i] = a
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return added
}

// CheckChunk fails unless every read role returns c's content.
func CheckChunk(t testing.TB, s cas.Storage, c Chunk) {
	t.Helper()
	got, err := s.ReadChunk(c.Hash, nil)
	if err != nil {
		t.Errorf("ReadChunk(%s): %v", c.Hash.Short(), err)
	} else if !bytes.Equal(got, c.Data) {
		t.Errorf("ReadChunk(%s) = %d bytes, want the %d put", c.Hash.Short(), len(got), len(c.Data))
	}
	r, err := s.OpenChunk(c.Hash)
	if err != nil {
		t.Errorf("OpenChunk(%s): %v", c.Hash.Short(), err)
	} else {
		if r.Size() != int64(len(c.Data)) {
			t.Errorf("OpenChunk(%s).Size() = %d, want %d", c.Hash.Short(), r.Size(), len(c.Data))
		}
		got, err := io.ReadAll(cas.VerifyReader(r, c.Hash))
		if err != nil || !bytes.Equal(got, c.Data) {
			t.Errorf("OpenChunk(%s) then read = %d bytes, %v; want the %d put", c.Hash.Short(), len(got), err, len(c.Data))
		}
		if err := r.Close(); err != nil {
			t.Errorf("Chunk.Close: %v", err)
		}
	}
	fi, err := s.Stat(c.Hash)
	if err != nil {
		t.Errorf("Stat(%s): %v", c.Hash.Short(), err)
	} else {
		if fi.Size() != int64(len(c.Data)) {
			t.Errorf("Stat(%s).Size() = %d, want %d", c.Hash.Short(), fi.Size(), len(c.Data))
		}
		if fi.Name() != c.Hash.String() {
			t.Errorf("Stat(%s).Name() = %q, want the hash in hex", c.Hash.Short(), fi.Name())
		}
		if fi.IsDir() {
			t.Errorf("Stat(%s).IsDir() = true", c.Hash.Short())
		}
	}
}

// CheckMissing fails unless every read role reports ErrNotFound for h.
func CheckMissing(t testing.TB, s cas.Storage, h cas.Hash) {
	t.Helper()
	if r, err := s.OpenChunk(h); !errors.Is(err, cas.ErrNotFound) {
		if r != nil {
			r.Close()
		}
		t.Errorf("OpenChunk(%s) error = %v, want ErrNotFound", h.Short(), err)
	}
	if _, err := s.Stat(h); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("Stat(%s) error = %v, want ErrNotFound", h.Short(), err)
	}
	if _, err := s.ReadChunk(h, nil); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("ReadChunk(%s) error = %v, want ErrNotFound", h.Short(), err)
	}
}

// Walked returns the hashes Walk reports, sorted, failing on a repeat or on
// information that does not match the hash.
func Walked(t testing.TB, s cas.Storage) []cas.Hash {
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
	slices.SortFunc(hs, compareHash)
	for i := 1; i < len(hs); i++ {
		if hs[i] == hs[i-1] {
			t.Errorf("Walk reported %s twice", hs[i])
		}
	}
	return hs
}

func compareHash(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) }

func sortedHashes(cs ...Chunk) []cas.Hash {
	hs := make([]cas.Hash, 0, len(cs))
	for _, c := range cs {
		hs = append(hs, c.Hash)
	}
	slices.SortFunc(hs, compareHash)
	return slices.Compact(hs)
}

func testRoundTrip(t *testing.T, s cas.Storage, _ Options) {
	cs := []Chunk{small(1), small(2), small(3)}
	for i, added := range putCommit(t, s, cs...) {
		if !added {
			t.Errorf("Put of new chunk #%d: added = false, want true", i)
		}
	}
	for _, c := range cs {
		CheckChunk(t, s, c)
	}
	// A second store of the same content reads the same.
	CheckChunk(t, s, cs[0])
}

func testEmptyChunk(t *testing.T, s cas.Storage, _ Options) {
	empty := Chunk{cas.Sum(nil), nil}
	if added := putCommit(t, s, empty); !added[0] {
		t.Error("Put of the empty chunk: added = false, want true")
	}
	CheckChunk(t, s, empty)
}

func testLargeChunk(t *testing.T, s cas.Storage, opts Options) {
	c := NewChunk(10, opts.MaxChunk)
	putCommit(t, s, c)
	CheckChunk(t, s, c)
}

func testMissing(t *testing.T, s cas.Storage, _ Options) {
	CheckMissing(t, s, small(20).Hash)
	CheckMissing(t, s, cas.Hash{})
	putCommit(t, s, small(21))
	CheckMissing(t, s, small(20).Hash)
}

// testUncommitted: a Put is invisible to every read role, and to Walk,
// until its batch commits.
func testUncommitted(t *testing.T, s cas.Storage, _ Options) {
	c, d := small(30), small(31)
	b := s.BeginBatch()
	for _, x := range []Chunk{c, d} {
		if added, err := b.Put(x.Hash, x.Data); err != nil || !added {
			b.Abort()
			t.Fatalf("Put(%s) = %v, %v; want true, nil", x.Hash.Short(), added, err)
		}
	}
	CheckMissing(t, s, c.Hash)
	CheckMissing(t, s, d.Hash)
	if got := Walked(t, s); len(got) != 0 {
		t.Errorf("Walk before Commit = %v, want nothing", got)
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	CheckChunk(t, s, c)
	CheckChunk(t, s, d)
	b.Abort() // after Commit: does nothing
	CheckChunk(t, s, c)
}

func testAbort(t *testing.T, s cas.Storage, _ Options) {
	keep, drop := small(40), small(41)
	putCommit(t, s, keep)
	b := s.BeginBatch()
	if _, err := b.Put(drop.Hash, drop.Data); err != nil {
		t.Fatalf("Put: %v", err)
	}
	b.Abort()
	checkGone(t, s, drop, keep, "an aborted Put")
}

// checkGone fails unless gone is missing after what while keep is still
// stored and alone in Walk, and gone can then be stored again.
func checkGone(t *testing.T, s cas.Storage, gone, keep Chunk, what string) {
	t.Helper()
	CheckMissing(t, s, gone.Hash)
	CheckChunk(t, s, keep)
	if got, want := Walked(t, s), sortedHashes(keep); !slices.Equal(got, want) {
		t.Errorf("Walk after %s = %v, want %v", what, got, want)
	}
	if added := putCommit(t, s, gone); !added[0] {
		t.Errorf("Put after %s: added = false, want true", what)
	}
	CheckChunk(t, s, gone)
}

// testPutCopiesData: the caller may reuse data once Put returns.
func testPutCopiesData(t *testing.T, s cas.Storage, _ Options) {
	c := small(50)
	buf := bytes.Clone(c.Data)
	b := s.BeginBatch()
	if _, err := b.Put(c.Hash, buf); err != nil {
		b.Abort()
		t.Fatalf("Put: %v", err)
	}
	for i := range buf {
		buf[i] = 0xAA
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	CheckChunk(t, s, c)
}

// testDuplicate: a chunk put twice in a batch, or put again once stored, is
// stored once and reported new once.
func testDuplicate(t *testing.T, s cas.Storage, _ Options) {
	c := small(60)
	added := putCommit(t, s, c, c)
	if !added[0] || added[1] {
		t.Errorf("Put twice in one batch: added = %v, want [true false]", added)
	}
	for i := range 2 {
		if added := putCommit(t, s, c); added[0] {
			t.Errorf("Put of a stored chunk #%d: added = true, want false", i+1)
		}
	}
	CheckChunk(t, s, c)
	if got, want := Walked(t, s), sortedHashes(c); !slices.Equal(got, want) {
		t.Errorf("Walk = %v, want %v", got, want)
	}
}

// testReadChunkBuffer: ReadChunk reuses a big enough buffer, grows a small
// one, and what it returns belongs to the caller.
func testReadChunkBuffer(t *testing.T, s cas.Storage, _ Options) {
	c := small(70)
	putCommit(t, s, c)
	big := make([]byte, 0, len(c.Data)+10)
	got, err := s.ReadChunk(c.Hash, big)
	if err != nil || !bytes.Equal(got, c.Data) {
		t.Fatalf("ReadChunk(big buf) = %d bytes, %v", len(got), err)
	}
	if &got[0] != &big[:1][0] {
		t.Error("ReadChunk with a big enough buffer did not use it")
	}
	got, err = s.ReadChunk(c.Hash, make([]byte, 3))
	if err != nil || !bytes.Equal(got, c.Data) {
		t.Fatalf("ReadChunk(small buf) = %d bytes, %v", len(got), err)
	}
	for i := range got {
		got[i] ^= 0xFF
	}
	CheckChunk(t, s, c)
}

// testSeek: an opened chunk seeks from start, current and end, and ReadAt
// reads anywhere without moving the offset.
func testSeek(t *testing.T, s cas.Storage, _ Options) {
	c := NewChunk(80, 10000)
	putCommit(t, s, c)
	r, err := s.OpenChunk(c.Hash)
	if err != nil {
		t.Fatalf("OpenChunk: %v", err)
	}
	defer r.Close()
	readAt := func(whence int, off int64, wantPos int64, n int) {
		t.Helper()
		pos, err := r.Seek(off, whence)
		if err != nil || pos != wantPos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, wantPos)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("read %d bytes at %d: %v", n, wantPos, err)
		}
		if want := c.Data[wantPos : wantPos+int64(n)]; !bytes.Equal(got, want) {
			t.Errorf("read %d bytes at %d: wrong content", n, wantPos)
		}
	}
	readAt(io.SeekStart, 1234, 1234, 100)     // now at 1334
	readAt(io.SeekCurrent, 666, 2000, 50)     // now at 2050
	readAt(io.SeekCurrent, -1050, 1000, 10)   // backwards
	readAt(io.SeekEnd, -500, 9500, 500)       // the tail
	readAt(io.SeekStart, 0, 0, len(c.Data)-1) // all but the last byte
	if n, err := r.Read(make([]byte, 10)); n != 1 || (err != nil && err != io.EOF) {
		t.Errorf("read of the last byte = %d, %v; want 1", n, err)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("read at the end = %d, %v; want 0, io.EOF", n, err)
	}
	if pos, err := r.Seek(0, io.SeekEnd); err != nil || pos != int64(len(c.Data)) {
		t.Errorf("Seek(0, end) = %d, %v; want %d", pos, err, len(c.Data))
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek before the start: no error")
	}

	// ReadAt, including concurrently, leaves the offset alone.
	if _, err := r.Seek(42, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(i * 2000)
			got := make([]byte, 1500)
			if n, err := r.ReadAt(got, off); n != len(got) || err != nil {
				t.Errorf("ReadAt(%d) = %d, %v", off, n, err)
			} else if !bytes.Equal(got, c.Data[off:off+1500]) {
				t.Errorf("ReadAt(%d): wrong content", off)
			}
		}()
	}
	wg.Wait()
	got := make([]byte, 100)
	if n, err := r.ReadAt(got, int64(len(c.Data)-50)); n != 50 || err != io.EOF {
		t.Errorf("ReadAt across the end = %d, %v; want 50, io.EOF", n, err)
	}
	if pos, err := r.Seek(0, io.SeekCurrent); err != nil || pos != 42 {
		t.Errorf("offset after ReadAt = %d, %v; want 42", pos, err)
	}
}

func testDelete(t *testing.T, s cas.Storage, _ Options) {
	c, keep := small(90), small(91)
	putCommit(t, s, c, keep)
	if err := s.Delete(c.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkGone(t, s, c, keep, "Delete")
}

// testDeleteMissing: deleting a chunk that is not stored is nil (the
// contract in cas/storage.go).
func testDeleteMissing(t *testing.T, s cas.Storage, _ Options) {
	c := small(100)
	if err := s.Delete(c.Hash); err != nil {
		t.Errorf("Delete of a never-stored chunk = %v, want nil", err)
	}
	putCommit(t, s, c)
	for i := range 2 {
		if err := s.Delete(c.Hash); err != nil {
			t.Errorf("Delete #%d = %v, want nil", i+1, err)
		}
	}
	CheckMissing(t, s, c.Hash)
}

// testWalk: Walk reports exactly the committed chunks, with their sizes,
// and fn may use the store.
func testWalk(t *testing.T, s cas.Storage, _ Options) {
	if got := Walked(t, s); len(got) != 0 {
		t.Errorf("Walk of an empty store = %v, want nothing", got)
	}
	var cs []Chunk
	size := map[cas.Hash]int64{}
	for i := range 40 {
		c := small(200 + uint64(i))
		cs = append(cs, c)
		size[c.Hash] = int64(len(c.Data))
	}
	putCommit(t, s, cs[:20]...)
	putCommit(t, s, cs[20:]...)
	aborted := s.BeginBatch()
	if _, err := aborted.Put(small(999).Hash, small(999).Data); err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if got, want := Walked(t, s), sortedHashes(cs...); !slices.Equal(got, want) {
		t.Errorf("Walk reported %d hashes, want the %d committed", len(got), len(want))
	}
	err := s.Walk(func(h cas.Hash, info fs.FileInfo) error {
		if info.Size() != size[h] {
			t.Errorf("Walk: %s size %d, want %d", h.Short(), info.Size(), size[h])
		}
		if _, err := s.ReadChunk(h, nil); err != nil {
			t.Errorf("Walk reported %s, ReadChunk: %v", h.Short(), err)
		}
		return s.Delete(h) // fn may change the store
	})
	if err != nil {
		t.Errorf("Walk: %v", err)
	}
	if got := Walked(t, s); len(got) != 0 {
		t.Errorf("Walk after deleting everything = %d hashes, want none", len(got))
	}
}

func testWalkStops(t *testing.T, s cas.Storage, _ Options) {
	putCommit(t, s, small(300), small(301), small(302))
	stop := errors.New("stop")
	calls := 0
	err := s.Walk(func(cas.Hash, fs.FileInfo) error { calls++; return stop })
	if !errors.Is(err, stop) {
		t.Errorf("Walk with a failing fn = %v, want %v", err, stop)
	}
	if calls != 1 {
		t.Errorf("Walk called fn %d times after it failed, want 1", calls)
	}
}

// testDamaged: a chunk whose stored bytes changed is ErrCorrupt to
// ReadChunk and to VerifyReader over OpenChunk; other chunks are unharmed.
func testDamaged(t *testing.T, s cas.Storage, opts Options) {
	if opts.Damage == nil {
		t.Skip("no Damage hook")
	}
	c, ok := small(400), small(401)
	putCommit(t, s, c, ok)
	opts.Damage(t, s, c.Hash)
	if _, err := s.ReadChunk(c.Hash, nil); !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("ReadChunk of a damaged chunk error = %v, want ErrCorrupt", err)
	}
	if _, err := s.ReadChunk(c.Hash, make([]byte, 0, 1<<20)); !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("ReadChunk(big buf) of a damaged chunk error = %v, want ErrCorrupt", err)
	}
	r, err := s.OpenChunk(c.Hash)
	if err != nil {
		t.Fatalf("OpenChunk of a damaged chunk: %v (it is stored; only reading checks)", err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, cas.VerifyReader(r, c.Hash)); !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("VerifyReader over a damaged chunk error = %v, want ErrCorrupt", err)
	}
	CheckChunk(t, s, ok)
}

// testConcurrent: goroutines putting overlapping sets of chunks, each in
// its own batches, while others read and walk. Every chunk is stored once
// and reads back whole. Run with -race.
func testConcurrent(t *testing.T, s cas.Storage, _ Options) {
	const workers, perWorker = 6, 20
	shared := make([]Chunk, perWorker)
	for i := range shared {
		shared[i] = small(500 + uint64(i))
	}
	own := make([][]Chunk, workers)
	for w := range own {
		for i := range perWorker {
			own[w] = append(own[w], small(1000+uint64(w*perWorker+i)))
		}
	}
	var (
		wg      sync.WaitGroup
		errs    = make(chan error, workers*4)
		newMu   sync.Mutex
		newSeen = map[cas.Hash]int{}
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Interleave shared and own chunks, a few batches each.
			var mine []Chunk
			for i := range perWorker {
				mine = append(mine, shared[(i+w)%perWorker], own[w][i])
			}
			for start := 0; start < len(mine); start += 8 {
				b := s.BeginBatch()
				var added []cas.Hash
				for _, c := range mine[start:min(start+8, len(mine))] {
					a, err := b.Put(c.Hash, c.Data)
					if err != nil {
						b.Abort()
						errs <- fmt.Errorf("worker %d: Put: %w", w, err)
						return
					}
					if a {
						added = append(added, c.Hash)
					}
				}
				if err := b.Commit(); err != nil {
					errs <- fmt.Errorf("worker %d: Commit: %w", w, err)
					return
				}
				newMu.Lock()
				for _, h := range added {
					newSeen[h]++
				}
				newMu.Unlock()
				// Read back what this batch stored, and walk meanwhile.
				for _, c := range mine[start:min(start+8, len(mine))] {
					got, err := s.ReadChunk(c.Hash, nil)
					if err != nil || !bytes.Equal(got, c.Data) {
						errs <- fmt.Errorf("worker %d: ReadChunk(%s) after Commit = %d bytes, %v", w, c.Hash.Short(), len(got), err)
						return
					}
				}
				if err := s.Walk(func(cas.Hash, fs.FileInfo) error { return nil }); err != nil {
					errs <- fmt.Errorf("worker %d: Walk: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all := slices.Clone(shared)
	for _, cs := range own {
		all = append(all, cs...)
	}
	for _, c := range all {
		CheckChunk(t, s, c)
		// Batches racing on a shared chunk may each see it as new; an own
		// chunk is new exactly once.
		if newSeen[c.Hash] < 1 {
			t.Errorf("chunk %s: no Put reported it new", c.Hash.Short())
		}
	}
	for w := range own {
		for _, c := range own[w] {
			if n := newSeen[c.Hash]; n != 1 {
				t.Errorf("chunk %s put by one worker: reported new %d times, want 1", c.Hash.Short(), n)
			}
		}
	}
	if got, want := Walked(t, s), sortedHashes(all...); !slices.Equal(got, want) {
		t.Errorf("Walk after concurrent puts = %d hashes, want %d", len(got), len(want))
	}
}
