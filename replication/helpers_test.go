package replication

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/media/mediatest"
)

// smallParams give many chunks from little data, so tests stay fast.
var smallParams = chunker.Params{Min: 4096, Avg: 16384, Max: 65536}

const server = "server"

var secret = []byte("a shared secret of enough bytes")

func mxc(id string) matrix.MXC {
	m, err := matrix.NewMXC(server, id)
	if err != nil {
		panic(err)
	}
	return m
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openStore opens (creating it if need be) the store in dir; it is
// closed when the test ends unless it was closed with the function
// returned.
func openStore(t testing.TB, dir string, opts media.Options) (*media.Store, func()) {
	t.Helper()
	opts.Dir, opts.Create, opts.Chunker = dir, true, smallParams
	opts.Logger = quietLogger()
	opts.Local = func(name string) bool { return name == server }
	s, err := media.Open(opts)
	if err != nil {
		t.Fatalf("media.Open(%s): %v", dir, err)
	}
	var once sync.Once
	closeStore := func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close(%s): %v", dir, err)
			}
		})
	}
	t.Cleanup(closeStore)
	return s, closeStore
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func upload(t testing.TB, s *media.Store, id string, data []byte) {
	t.Helper()
	info := media.UploadInfo{MXC: mxc(id), ContentType: "application/octet-stream", Uploader: "@u:server", Size: int64(len(data))}
	if _, err := s.Upload(context.Background(), info, bytes.NewReader(data)); err != nil {
		t.Fatalf("Upload(%s, %d bytes): %v", id, len(data), err)
	}
}

// uploadMany uploads n media to s, a third of them the same bytes as the
// one before, sizes from a few bytes to several chunks, and returns their
// contents by ID.
func uploadMany(t testing.TB, s *media.Store, prefix string, n int) map[string][]byte {
	t.Helper()
	want := make(map[string][]byte, n)
	var prev []byte
	for i := range n {
		data := prev
		if i%3 != 2 {
			size := 10 + int(rand.New(rand.NewPCG(uint64(i), 7)).IntN(48<<10))
			data = randBytes(uint64(i)+1000*uint64(len(prefix)), size)
		}
		id := fmt.Sprintf("%s%03d", prefix, i)
		upload(t, s, id, data)
		want[id] = data
		prev = data
	}
	return want
}

// wantContent fails unless s serves every media of want byte for byte.
func wantContent(t testing.TB, s *media.Store, want map[string][]byte) {
	t.Helper()
	for id, data := range want {
		mediatest.WantContent(t, s, mxc(id), data)
	}
}

// chunkHashes lists the chunk files of the store in dir.
// chunkFileBytes is the length of the chunk files of the store in dir: what
// a standby fetches (inline chunks come with the changes).
func chunkFileBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(dir, "cas"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := cas.ParseHash(d.Name()); err == nil && !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func chunkHashes(t testing.TB, dir string) []cas.Hash {
	t.Helper()
	var hs []cas.Hash
	err := filepath.WalkDir(filepath.Join(dir, "cas"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if h, err := cas.ParseHash(d.Name()); err == nil && !d.IsDir() {
			hs = append(hs, h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// tap wraps the primary's handler: it counts the chunks each chunk request
// asks for, can refuse chunk requests after a number of them (cut), can
// flip a byte of every chunk answer, and reports each changes request's
// after parameter on polls.
type tap struct {
	h http.Handler

	mu       sync.Mutex
	served   map[cas.Hash]int
	requests int
	cutAfter int           // refuse chunk requests after this many (0: never)
	cut      chan struct{} // closed at the first refusal
	cutOnce  sync.Once
	flip     bool
	polls    chan string
}

func newTap(h http.Handler) *tap {
	return &tap{h: h, served: make(map[cas.Hash]int), cut: make(chan struct{}), polls: make(chan string, 100)}
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case pathChanges:
		select {
		case tp.polls <- r.URL.Query().Get("after"):
		default:
		}
	case pathChunks:
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		tp.mu.Lock()
		if tp.cutAfter > 0 && tp.requests >= tp.cutAfter {
			tp.mu.Unlock()
			tp.cutOnce.Do(func() { close(tp.cut) })
			http.Error(w, "cut", http.StatusServiceUnavailable)
			return
		}
		tp.requests++
		for i := 0; i+cas.HashSize <= len(body); i += cas.HashSize {
			tp.served[cas.Hash(body[i:i+cas.HashSize])]++
		}
		flip := tp.flip
		tp.mu.Unlock()
		if flip {
			w = &flipper{ResponseWriter: w}
		}
	}
	tp.h.ServeHTTP(w, r)
}

// servedCounts returns how many times each chunk was asked for.
func (tp *tap) servedCounts() map[cas.Hash]int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return maps.Clone(tp.served)
}

func (tp *tap) setCut(n int) {
	tp.mu.Lock()
	tp.cutAfter = n
	tp.mu.Unlock()
}

// flipper flips the first byte of the first chunk's bytes.
type flipper struct {
	http.ResponseWriter
	off int
}

func (f *flipper) Write(p []byte) (int, error) {
	if i := frameHeaderLen - f.off; i >= 0 && i < len(p) {
		q := bytes.Clone(p)
		q[i] ^= 0xff
		p = q
	}
	f.off += len(p)
	return f.ResponseWriter.Write(p)
}

// newPrimary serves store's replication handler, wrapped in a tap, on a
// loopback listener.
func newPrimary(t testing.TB, store *media.Store, now func() time.Time) (*httptest.Server, *tap) {
	t.Helper()
	h, err := NewPrimary(PrimaryOptions{Store: store, Secret: secret, Logger: quietLogger(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	tp := newTap(h)
	srv := httptest.NewServer(tp)
	t.Cleanup(srv.Close)
	return srv, tp
}

// runStandby starts a Standby of store following url and returns it with
// a function that stops it and returns Run's result (also called when the
// test ends).
func runStandby(t testing.TB, store *media.Store, url string, key []byte) (*Standby, func() error) {
	t.Helper()
	s, err := NewStandby(StandbyOptions{Store: store, Primary: url, Secret: key, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() {
			cancel()
			result = <-done
		})
		return result
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

// waitHead waits until store's head reaches head.
func waitHead(t testing.TB, store *media.Store, head uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		changed := store.HeadChanged()
		if store.Head() >= head {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("standby head %d, want %d", store.Head(), head)
		}
	}
}

// waitStatus polls s's status until ok accepts it.
func waitStatus(t testing.TB, s *Standby, ok func(Status) bool) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		st := s.Status()
		if ok(st) {
			return st
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("status never as wanted: %+v", st)
		}
	}
}

// waitRun waits for a Run that should end by itself.
func waitRun(t testing.TB, stop func() error, s *Standby) error {
	t.Helper()
	waitStatus(t, s, func(st Status) bool { return st.Err != "" })
	return stop()
}
