package s3store_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/castest"
	"github.com/mxcas/mxcas/cas/s3store"
	"github.com/mxcas/mxcas/testkit"
)

// hold answers a request matching (method, key suffix) for real, then
// signals got and waits for release before returning it (once).
type hold struct {
	mu      sync.Mutex
	method  string
	suffix  string
	armed   bool
	got     chan struct{}
	release chan struct{}
	n       map[string]int
}

func (h *hold) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[r.Method]++
	match := h.armed && r.Method == h.method && strings.HasSuffix(r.URL.Path, h.suffix)
	if match {
		h.armed = false
	}
	h.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if !match || err != nil {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	close(h.got)
	<-h.release
	return resp, nil
}

func (h *hold) arm(method string, c cas.Hash) {
	h.mu.Lock()
	h.method, h.suffix, h.armed = method, c.String(), true
	h.got, h.release = make(chan struct{}), make(chan struct{})
	h.mu.Unlock()
}

func openOpts(t *testing.T, srv *testkit.S3, rt http.RoundTripper, known int) *s3store.Store {
	s, err := s3store.Open(s3store.Options{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket, Region: "us-east-1",
		Prefix:    fmt.Sprintf("r%d", prefixes.Add(1)),
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Transport: rt, Known: known,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put1(t *testing.T, s cas.BatchWriter, c castest.Chunk) {
	b := s.BeginBatch()
	if _, err := b.Put(c.Hash, c.Data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A ReadChunk racing a Delete leaves the hash in known: a later batch
// commits it without a PUT, and the chunk is not in the bucket.
func TestReadDuringDeleteNotKnown(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &hold{}
	s := openOpts(t, srv, rt, 0)
	c := castest.NewChunk(1, 1000)
	put1(t, s, c)
	// Forget it: a Delete and a fresh store would do; Delete then re-put.
	rt.arm(http.MethodGet, c.Hash)
	done := make(chan error)
	go func() { _, err := s.ReadChunk(c.Hash, nil); done <- err }()
	<-rt.got
	if err := s.Delete(c.Hash); err != nil { // GC: unreferenced
		t.Fatal(err)
	}
	close(rt.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b := s.BeginBatch()
	added, err := b.Put(c.Hash, c.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(c.Hash); err != nil {
		t.Errorf("after Put (added=%v) and Commit: Stat %v", added, err)
	}
}

// A batch whose HEAD answered "missing" before another batch's commit,
// with the hash evicted from known meanwhile, uploads again; its Abort
// deletes the chunk the other batch committed.
func TestAbortKeepsCommitted(t *testing.T) {
	srv := testkit.StartS3(t)
	rt := &hold{}
	s := openOpts(t, srv, rt, 1)
	c, other := castest.NewChunk(2, 1000), castest.NewChunk(3, 1000)
	put1(t, s, other)
	rt.arm(http.MethodHead, c.Hash)
	bB := s.BeginBatch()
	done := make(chan error)
	go func() { _, err := bB.Put(c.Hash, c.Data); done <- err }()
	<-rt.got                                                // B's HEAD: 404
	put1(t, s, c)                                           // A stores and commits c
	if _, err := s.ReadChunk(other.Hash, nil); err != nil { // evicts c from known (Known=1)
		t.Fatal(err)
	}
	close(rt.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bB.Abort()
	if _, err := s.Stat(c.Hash); err != nil {
		t.Errorf("chunk committed by A: %v", err)
	}
}

// Two processes sharing a bucket (nodes of a shared index) store one chunk
// at once: B's batch commits it (its HEAD found A's upload, or it uploaded
// it too: one key either way) and B's node records it; A's batch then
// fails (a client gone, a body too large) and aborts. The chunk B committed
// must stay: A's Abort must not delete what another process may refer to.
func TestSharedAbortKeepsOtherNodesChunk(t *testing.T) {
	srv := testkit.StartS3(t)
	prefix := fmt.Sprintf("s%d", prefixes.Add(1))
	node := func() *s3store.Store {
		s, err := s3store.Open(s3store.Options{
			Endpoint: srv.Endpoint, Bucket: srv.Bucket, Region: "us-east-1", Prefix: prefix,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Shared: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := node(), node()
	c := castest.NewChunk(4, 1000)
	bA := a.BeginBatch()
	if added, err := bA.Put(c.Hash, c.Data); err != nil || !added {
		t.Fatalf("A's Put: added %v, %v", added, err)
	}
	put1(t, b, c) // B commits c: its node's manifest now lists it
	bA.Abort()
	if _, err := b.Stat(c.Hash); err != nil {
		t.Errorf("chunk committed by node B, after node A's Abort: %v", err)
	}
	if _, err := a.Stat(c.Hash); err != nil {
		t.Errorf("chunk seen by node A after its Abort: %v", err)
	}
}
