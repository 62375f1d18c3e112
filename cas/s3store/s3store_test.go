package s3store_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/castest"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/testkit"
)

// counter counts the requests to the object store, by method.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[r.Method]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *counter) get(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}

var prefixes atomic.Int64

// open opens a store on srv under a prefix of its own.
func open(t *testing.T, srv *testkit.S3, rt http.RoundTripper) *s3store.Store {
	t.Helper()
	s, err := s3store.Open(s3store.Options{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket, Region: "us-east-1",
		Prefix:    fmt.Sprintf("t%d", prefixes.Add(1)),
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Transport: rt,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := testkit.StartS3(t)
	castest.Run(t, func(t *testing.T) cas.Storage { return open(t, srv, nil) }, castest.Options{
		MaxChunk: 4 << 20,
		Damage: func(t *testing.T, s cas.Storage, h cas.Hash) {
			t.Helper()
			testkit.FlipByte(t, srv.ObjectPath(s.(*s3store.Store).Key(h)))
		},
	})
}

func TestOpenMissingBucket(t *testing.T) {
	srv := testkit.StartS3(t)
	_, err := s3store.Open(s3store.Options{Endpoint: srv.Endpoint, Bucket: "no-such-bucket", Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err == nil {
		t.Fatal("Open of a missing bucket succeeded")
	}
	_, err = s3store.Open(s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Region: "us-east-1",
		AccessKey: srv.AccessKey, SecretKey: "wrong"})
	if err == nil {
		t.Fatal("Open with a wrong secret succeeded")
	}
}

// TestIdenticalBatches: eight batches putting the same chunks at once
// upload each chunk once, and every batch commits.
func TestIdenticalBatches(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &counter{}
	s := open(t, srv, rt)
	chunks := make([]castest.Chunk, 10)
	for i := range chunks {
		chunks[i] = castest.NewChunk(uint64(i), 50_000)
	}
	var wg sync.WaitGroup
	var added atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := s.BeginBatch()
			for _, c := range chunks {
				ok, err := b.Put(c.Hash, c.Data)
				if err != nil {
					b.Abort()
					errs <- err
					return
				}
				if ok {
					added.Add(1)
				}
			}
			errs <- b.Commit()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range chunks {
		castest.CheckChunk(t, s, c)
	}
	if got := rt.get(http.MethodPut); got > len(chunks) {
		t.Errorf("%d PUTs for %d distinct chunks put by 8 batches", got, len(chunks))
	}
	if got := added.Load(); got < int64(len(chunks)) {
		t.Errorf("%d chunks reported new, want at least %d", got, len(chunks))
	}
}

// TestUnavailable: with the object store down, a batch fails with
// ErrUnavailable and commits nothing; once it is back, a new batch stores
// the same chunks and everything committed before is there.
func TestUnavailable(t *testing.T) {
	srv := testkit.StartS3(t)
	s := open(t, srv, nil)
	before, during := castest.NewChunk(1, 1000), castest.NewChunk(2, 1000)
	b := s.BeginBatch()
	if _, err := b.Put(before.Hash, before.Data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	b = s.BeginBatch()
	_, err := b.Put(during.Hash, during.Data)
	if err == nil {
		err = b.Commit()
	} else {
		b.Abort()
	}
	if !errors.Is(err, cas.ErrUnavailable) {
		t.Fatalf("Put/Commit with the server down: %v, want ErrUnavailable", err)
	}
	if _, err := s.ReadChunk(before.Hash, nil); !errors.Is(err, cas.ErrUnavailable) {
		t.Errorf("ReadChunk with the server down: %v, want ErrUnavailable", err)
	}
	srv.Start()
	castest.CheckChunk(t, s, before)
	castest.CheckMissing(t, s, during.Hash)
	b = s.BeginBatch()
	if _, err := b.Put(during.Hash, during.Data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	castest.CheckChunk(t, s, during)
}

// TestOpenChunkOneRequest: opening and reading a chunk is one GET, no HEAD.
func TestOpenChunkOneRequest(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &counter{}
	s := open(t, srv, rt)
	c := castest.NewChunk(7, 100_000)
	b := s.BeginBatch()
	if _, err := b.Put(c.Hash, c.Data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	heads, gets := rt.get(http.MethodHead), rt.get(http.MethodGet)
	r, err := s.OpenChunk(c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, c.Data) || r.Size() != int64(len(c.Data)) {
		t.Fatalf("read %d bytes (size %d), %v; want the chunk's %d", len(got), r.Size(), err, len(c.Data))
	}
	if h, g := rt.get(http.MethodHead)-heads, rt.get(http.MethodGet)-gets; h != 0 || g != 1 {
		t.Errorf("OpenChunk and a whole read: %d HEAD, %d GET; want 0 and 1", h, g)
	}
	if _, err := s.OpenChunk(castest.NewChunk(8, 10).Hash); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("OpenChunk of a missing chunk: %v, want ErrNotFound", err)
	}
}

// stallingBodies hands on GET responses whose body stops after 10 bytes and
// then waits for the request's context, as a stalled connection does.
type stallingBodies struct{}

func (stallingBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return resp, err
	}
	resp.Body = &stalled{ReadCloser: resp.Body, ctx: r.Context(), left: 10}
	return resp, nil
}

type stalled struct {
	io.ReadCloser
	ctx  interface{ Done() <-chan struct{} }
	left int
}

func (s *stalled) Read(p []byte) (int, error) {
	if s.left == 0 {
		<-s.ctx.Done()
		return 0, errors.New("stalled connection cut")
	}
	n, err := s.ReadCloser.Read(p[:min(len(p), s.left)])
	s.left -= n
	return n, err
}

// TestStalledRead: a GET whose body stops arriving fails the read with
// ErrUnavailable once OpTimeout passes without data, instead of hanging.
func TestStalledRead(t *testing.T) {
	srv := testkit.StartS3(t)
	w := open(t, srv, nil)
	c := castest.NewChunk(9, 100_000)
	b := w.BeginBatch()
	if _, err := b.Put(c.Hash, c.Data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	s, err := s3store.Open(s3store.Options{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Region: "us-east-1",
		Prefix: fmt.Sprintf("t%d", prefixes.Load()), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Transport: stallingBodies{}, OpTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.OpenChunk(c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, cas.ErrUnavailable) {
		t.Errorf("reading a stalled chunk: %v, want ErrUnavailable", err)
	}
}
