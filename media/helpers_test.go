package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// smallParams give many chunks from little data, so tests stay fast.
var smallParams = chunker.Params{Min: 4096, Avg: 16384, Max: 65536}

const server = "server"

func mxc(id string) matrix.MXC { return mustMXC(server, id) }

// mustMXC is matrix.NewMXC for an ID the test knows is valid.
var mustMXC = media.MustMXC

// newClock is a controllable Options.Now. It starts at the real time, so
// chunk files (whose mtimes are real) are young until it is advanced.
func newClock() *testkit.Clock { return testkit.NewClock(time.Now()) }

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openStore opens a store with opts (Logger filled in) and closes it when
// the test ends, unless the test closed it first.
func openStore(t testing.TB, opts media.Options) *media.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := media.Open(opts)
	if err != nil {
		t.Fatalf("media.Open(%s): %v", opts.Dir, err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

// closed holds the stores closeStore has closed: closing twice panics in
// Pebble.
var closed sync.Map

// closeStore closes s unless it is already closed.
func closeStore(t testing.TB, s *media.Store) {
	t.Helper()
	if _, dup := closed.LoadOrStore(s, true); dup {
		return
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// checkUsage closes s, then reads the usage counters from its index directly
// (media has no accessor for them) and compares them with users and the
// counters of the test server.
func checkUsage(t testing.TB, s *media.Store, dir string, users map[string]index.Usage, srv index.Usage) {
	t.Helper()
	closeStore(t, s)
	idx, err := index.Open(filepath.Join(dir, "index"), index.Options{ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("index.Open: %v", err)
	}
	defer idx.Close()
	for user, want := range users {
		got, err := idx.UserUsage(user)
		if err != nil {
			t.Errorf("UserUsage(%s): %v", user, err)
		} else if got != want {
			t.Errorf("UserUsage(%s) = %+v, want %+v", user, got, want)
		}
	}
	got, err := idx.ServerUsage(server)
	if err != nil {
		t.Errorf("ServerUsage(%s): %v", server, err)
	} else if got != srv {
		t.Errorf("ServerUsage(%s) = %+v, want %+v", server, got, srv)
	}
}

// newStore opens a fresh store with small chunks and clk (nil: real time).
func newStore(t testing.TB, clk *testkit.Clock) (*media.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	opts := media.Options{Create: true, Dir: dir, Chunker: smallParams}
	if clk != nil {
		opts.Now = clk.Now
	}
	return openStore(t, opts), dir
}

// randBytes returns n deterministic pseudo-random bytes, distinct per seed.
func randBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// upload stores data as id with the exact declared size and fails the test
// on error.
func upload(t testing.TB, s *media.Store, id, user string, data []byte) media.Media {
	t.Helper()
	info := media.UploadInfo{MXC: mxc(id), ContentType: "application/octet-stream", Uploader: user, Size: int64(len(data))}
	rec, err := s.Upload(context.Background(), info, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Upload(%s, %d bytes): %v", id, len(data), err)
	}
	return rec
}

// readMedia reads the whole content of id.
func readMedia(t testing.TB, s *media.Store, id string) []byte {
	t.Helper()
	r, _, err := s.Open(mxc(id))
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return b
}

// checkContent fails unless id reads back as want.
func checkContent(t testing.TB, s *media.Store, id string, want []byte) {
	t.Helper()
	got := readMedia(t, s, id)
	if !bytes.Equal(got, want) {
		t.Errorf("%s: read back %d bytes (hash %s), want %d bytes (hash %s)",
			id, len(got), cas.Sum(got).Short(), len(want), cas.Sum(want).Short())
	}
}

// checkNotFound fails unless id has no record.
func checkNotFound(t testing.TB, s *media.Store, id string) {
	t.Helper()
	if _, err := s.Stat(mxc(id)); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("Stat(%s) = %v, want ErrNotFound", id, err)
	}
	if r, _, err := s.Open(mxc(id)); !errors.Is(err, media.ErrNotFound) {
		if r != nil {
			r.Close()
		}
		t.Errorf("Open(%s) = %v, want ErrNotFound", id, err)
	}
}

// chunkFiles returns the hashes of the chunk files under dir/cas.
func chunkFiles(t testing.TB, dir string) map[cas.Hash]int64 {
	t.Helper()
	files := make(map[cas.Hash]int64)
	err := filepath.WalkDir(filepath.Join(dir, "cas"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		h, err := cas.ParseHash(d.Name())
		if err != nil {
			t.Errorf("unexpected file %s under cas/", path)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[h] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s/cas: %v", dir, err)
	}
	return files
}

// chunkPath is where chunk h of the store in dir lives.
func chunkPath(dir string, h cas.Hash) string {
	p, err := media.ChunkPath(dir, h)
	if err != nil {
		panic(err)
	}
	return p
}

// chunksOf returns the chunk hashes of data under p, in order.
func chunksOf(t testing.TB, data []byte, p chunker.Params) []cas.Hash {
	t.Helper()
	var hs []cas.Hash
	if err := chunker.Split(data, p, func(c []byte) error {
		hs = append(hs, cas.Sum(c))
		return nil
	}); err != nil {
		t.Fatalf("Split: %v", err)
	}
	return hs
}

// fileChunksOf is chunksOf less the last chunk when a new store keeps it
// inline: the chunks of data that are chunk files.
func fileChunksOf(t testing.TB, data []byte, p chunker.Params) []cas.Hash {
	t.Helper()
	hs := chunksOf(t, data, p)
	if n := len(hs); n > 0 && lastChunkLen(data, p) <= media.MaxInline {
		hs = hs[:n-1]
	}
	return hs
}

// fileChunkBytes is the length of data's chunk files (fileChunksOf).
func fileChunkBytes(t testing.TB, data []byte, p chunker.Params) int64 {
	t.Helper()
	n := int64(len(data))
	if last := lastChunkLen(data, p); len(data) > 0 && last <= media.MaxInline {
		n -= int64(last)
	}
	return n
}

// lastChunkLen is the length of data's last chunk under p.
func lastChunkLen(data []byte, p chunker.Params) int {
	n := 0
	chunker.Split(data, p, func(c []byte) error { n = len(c); return nil })
	return n
}

// chunkSizes returns the length of every chunk of data under p.
func chunkSizes(t testing.TB, data []byte, p chunker.Params) map[cas.Hash]int64 {
	t.Helper()
	m := make(map[cas.Hash]int64)
	if err := chunker.Split(data, p, func(c []byte) error {
		m[cas.Sum(c)] = int64(len(c))
		return nil
	}); err != nil {
		t.Fatalf("Split: %v", err)
	}
	return m
}

func hashSet(hss ...[]cas.Hash) map[cas.Hash]struct{} {
	m := make(map[cas.Hash]struct{})
	for _, hs := range hss {
		for _, h := range hs {
			m[h] = struct{}{}
		}
	}
	return m
}

// checkTmpEmpty fails unless DATA/tmp holds nothing but LOCK.
func checkTmpEmpty(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatalf("read tmp: %v", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "LOCK" {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		t.Errorf("DATA/tmp holds %v, want only LOCK", names)
	}
}

// fsck runs Fsck and fails the test on an error.
func fsck(t testing.TB, s *media.Store) media.FsckReport {
	t.Helper()
	rep, err := s.Fsck(context.Background())
	if err != nil {
		t.Fatalf("Fsck: %v", err)
	}
	return rep
}

func gc(t testing.TB, s *media.Store) media.GCStats {
	t.Helper()
	st, err := s.GC(context.Background())
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	return st
}
