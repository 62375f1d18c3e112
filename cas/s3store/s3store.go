// Package s3store is a cas.Storage on S3-compatible object storage (AWS S3,
// Backblaze B2, Wasabi, MinIO, Garage, Ceph RGW, versitygw), through
// minio-go. Chunks are objects named PREFIX/cas/ab/cd/<64 hex>, the same
// layout as the filesystem store's, so a bucket synced to a directory is a
// chunk directory.
//
// Writes: a batch's Put checks whether the chunk is stored (a set of hashes
// known to be stored, else a HEAD), and starts its PUT in the background,
// at most Options.Parallel at once across the store (Put waits for a slot,
// so memory stays bounded); Commit waits for every PUT the batch needs and
// only then reports success. An uploaded chunk is hidden from every read role
// until a batch holding it commits (the contract of cas.WriteBatch); Abort
// deletes what it uploaded unless another batch holds it. Reads are GETs
// (ranged for a Chunk's Seek and ReadAt), ReadChunk verifies the content.
// Errors of the object store itself (unreachable, 5xx, timeouts) wrap
// cas.ErrUnavailable.
//
// It must never report a chunk committed before the object store
// acknowledged its PUT.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mxcas/mxcas/cas"
)

// Defaults for Options' zero fields.
const (
	DefaultParallel   = 16
	DefaultKnown      = 1 << 16
	DefaultOpTimeout  = time.Minute
	DefaultMaxRetries = 3
)

// Options configure a Store.
type Options struct {
	Endpoint  string // host:port
	Bucket    string // must exist
	Region    string
	Prefix    string // key prefix, "" or ending in "/" (added when missing)
	UseSSL    bool
	AccessKey string
	SecretKey string
	// Parallel bounds the PUTs in flight across the store (16).
	Parallel int
	// Known is how many hashes are remembered as stored, so a Put of a hot
	// chunk needs no HEAD (65536).
	Known int
	// Shared: other processes delete chunks from the bucket (the GC of
	// nodes sharing it), so what was stored may be gone: every Put of a
	// chunk not uploaded by this process asks the bucket (a HEAD), and
	// Known is not consulted.
	Shared bool
	// OpTimeout bounds each request to the object store (1 min).
	OpTimeout time.Duration
	// MaxRetries is how many times a failed request is tried (3); the
	// client backs off between tries.
	MaxRetries int
	// Transport, when set, carries the requests (tests count them).
	Transport http.RoundTripper
}

// Store is a cas.Storage in a bucket. Safe for concurrent use.
type Store struct {
	opts   Options
	client *minio.Client
	core   minio.Core // the same client, for GETs that return their headers
	prefix string     // Prefix + "cas/"
	slots  chan struct{}
	known  *lru.Cache[cas.Hash, struct{}]

	mu        sync.Mutex
	inflight  map[cas.Hash]*upload // uploaded or uploading, not yet committed
	deletions uint64               // aborted uploads deleted so far
	forgets   uint64               // Deletes begun or ended: a read older than one adds nothing to known
	probing   map[cas.Hash]*probe  // Puts asking whether h is stored

	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	uploads sync.WaitGroup // PUTs running
}

var _ cas.Storage = (*Store)(nil)

// probe is the Puts asking whether a chunk is stored; committed is set
// when a batch commits the chunk meanwhile.
type probe struct {
	n         int
	committed bool
}

// upload is a chunk some batches hold that no batch has committed yet.
// Guarded by Store.mu, except done/err, written once before done closes.
type upload struct {
	refs     int // batches holding it
	done     chan struct{}
	err      error
	cancel   context.CancelFunc
	deleting chan struct{} // non-nil once aborted: closed when its object is gone
}

// Open connects to the bucket and checks that it exists.
func Open(o Options) (*Store, error) {
	if o.Endpoint == "" || o.Bucket == "" {
		return nil, errors.New("s3store: endpoint and bucket are required")
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Known <= 0 {
		o.Known = DefaultKnown
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	client, err := minio.New(o.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure:     o.UseSSL,
		Region:     o.Region,
		Transport:  o.Transport,
		MaxRetries: o.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	known, err := lru.New[cas.Hash, struct{}](o.Known)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts: o, client: client, core: minio.Core{Client: client}, prefix: o.Prefix + "cas/",
		slots: make(chan struct{}, o.Parallel), known: known,
		inflight: make(map[cas.Hash]*upload), probing: make(map[cas.Hash]*probe), ctx: ctx, cancel: cancel,
	}
	octx, ocancel := s.op()
	defer ocancel()
	ok, err := client.BucketExists(octx, o.Bucket)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("s3store: bucket %s at %s: %w", o.Bucket, o.Endpoint, s.wrap(err))
	}
	if !ok {
		cancel()
		return nil, fmt.Errorf("s3store: bucket %s does not exist at %s", o.Bucket, o.Endpoint)
	}
	return s, nil
}

// Close ends the store's requests. Batches and chunks must be finished first.
func (s *Store) Close() error {
	s.cancel()
	s.uploads.Wait() // cancelled: they end at once
	return nil
}

// Key is the object name of chunk h.
func (s *Store) Key(h cas.Hash) string {
	x := h.String()
	return s.prefix + x[0:2] + "/" + x[2:4] + "/" + x
}

// op is the context of one request.
func (s *Store) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.opts.OpTimeout)
}

// notFound reports whether err is the object store's "no such key".
func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	// A missing bucket is the store's failure, not a missing chunk.
	return r.Code == "NoSuchKey" || (r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket")
}

// wrap makes an error of the object store wrap cas.ErrUnavailable, keeping
// it for detail.
func (s *Store) wrap(err error) error {
	if err == nil || errors.Is(err, cas.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", cas.ErrUnavailable, err)
}

// hidden reports whether h is uploaded by a batch that has not committed.
func (s *Store) hidden(h cas.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[h] != nil
}

// info is a chunk's fs.FileInfo.
type info struct {
	name string
	size int64
	mod  time.Time
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return 0o444 }
func (i info) ModTime() time.Time { return i.mod }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }

// Stat returns chunk h's size and when it was stored, or ErrNotFound.
func (s *Store) Stat(h cas.Hash) (fs.FileInfo, error) {
	if s.hidden(h) {
		return nil, fmt.Errorf("%w: %s", cas.ErrNotFound, h)
	}
	ctx, cancel := s.op()
	defer cancel()
	oi, err := s.client.StatObject(ctx, s.opts.Bucket, s.Key(h), minio.StatObjectOptions{})
	if notFound(err) {
		return nil, fmt.Errorf("%w: %s", cas.ErrNotFound, h)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return info{name: h.String(), size: oi.Size, mod: oi.LastModified}, nil
}

// OpenChunk opens chunk h with one GET, whose body the reads stream; a
// Seek away from the stream's position, or a ReadAt, is a ranged GET. Not a
// Filer.
func (s *Store) OpenChunk(h cas.Hash) (cas.Chunk, error) {
	if s.hidden(h) {
		return nil, fmt.Errorf("%w: %s", cas.ErrNotFound, h)
	}
	body, oi, err := s.get(h, 0, -1)
	if err != nil {
		return nil, err
	}
	return &chunk{s: s, h: h, size: oi.Size, body: body}, nil
}

// get GETs chunk h from off to end (inclusive; -1: the end).
func (s *Store) get(h cas.Hash, off, end int64) (io.ReadCloser, minio.ObjectInfo, error) {
	var o minio.GetObjectOptions
	var err error
	switch {
	case end >= 0:
		err = o.SetRange(off, end)
	case off > 0:
		err = o.SetRange(off, 0) // bytes=off-
	}
	if err != nil {
		return nil, minio.ObjectInfo{}, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	stall := time.AfterFunc(s.opts.OpTimeout, cancel)
	body, oi, _, err := s.core.GetObject(ctx, s.opts.Bucket, s.Key(h), o)
	stall.Stop()
	if err != nil {
		cancel()
		if notFound(err) {
			return nil, oi, fmt.Errorf("%w: %s", cas.ErrNotFound, h)
		}
		return nil, oi, s.wrap(err)
	}
	return &watchedBody{body: body, cancel: cancel, stall: s.opts.OpTimeout}, oi, nil
}

// watchedBody is a GET's body whose reads may each wait for the object
// store at most stall: a connection that stops sending fails the read
// (ErrUnavailable) instead of hanging it. Time the caller spends between
// reads (a slow client downstream) does not count.
type watchedBody struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	stall  time.Duration
}

func (w *watchedBody) Read(p []byte) (int, error) {
	t := time.AfterFunc(w.stall, w.cancel)
	n, err := w.body.Read(p)
	t.Stop()
	return n, err
}

func (w *watchedBody) Close() error {
	err := w.body.Close()
	w.cancel()
	return err
}

// chunk is an open object: body streams from pos.
type chunk struct {
	s    *Store
	h    cas.Hash
	size int64
	pos  int64
	body io.ReadCloser // nil: open a new range at pos on the next Read
}

func (c *chunk) Size() int64 { return c.size }

func (c *chunk) Close() error {
	if c.body != nil {
		err := c.body.Close()
		c.body = nil
		return err
	}
	return nil
}

func (c *chunk) Read(p []byte) (int, error) {
	if c.pos >= c.size {
		return 0, io.EOF
	}
	if c.body == nil {
		body, _, err := c.s.get(c.h, c.pos, -1)
		if err != nil {
			return 0, err
		}
		c.body = body
	}
	n, err := c.body.Read(p)
	c.pos += int64(n)
	if err == io.EOF && c.pos < c.size {
		err = io.ErrUnexpectedEOF
	} else if err != nil && err != io.EOF {
		err = c.s.wrap(err)
	}
	return n, err
}

func (c *chunk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("s3store: negative offset")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= c.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), c.size-off)
	body, _, err := c.s.get(c.h, off, off+want-1)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:want])
	if err != nil {
		return n, c.s.wrap(err)
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (c *chunk) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += c.pos
	case io.SeekEnd:
		off += c.size
	}
	if off < 0 {
		return 0, errors.New("s3store: seek before the start")
	}
	if off != c.pos && c.body != nil {
		c.body.Close()
		c.body = nil
	}
	c.pos = off
	return off, nil
}

// ReadChunk reads chunk h whole into buf (grown when too small) and checks
// that it hashes to h.
func (s *Store) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	if s.hidden(h) {
		return nil, fmt.Errorf("%w: %s", cas.ErrNotFound, h)
	}
	s.mu.Lock()
	fgen := s.forgets
	s.mu.Unlock()
	ctx, cancel := s.op()
	defer cancel()
	obj, err := s.client.GetObject(ctx, s.opts.Bucket, s.Key(h), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap(err)
	}
	defer obj.Close()
	oi, err := obj.Stat()
	if notFound(err) {
		return nil, fmt.Errorf("%w: %s", cas.ErrNotFound, h)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	if int64(cap(buf)) < oi.Size {
		buf = make([]byte, oi.Size)
	}
	buf = buf[:oi.Size]
	if _, err := io.ReadFull(obj, buf); err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%w: %s", cas.ErrNotFound, h)
		}
		return nil, s.wrap(err)
	}
	if got := cas.Sum(buf); got != h {
		return nil, fmt.Errorf("%w: chunk %s holds %s", cas.ErrCorrupt, h.Short(), got.Short())
	}
	s.mu.Lock()
	if s.forgets == fgen {
		s.known.Add(h, struct{}{})
	}
	s.mu.Unlock()
	return buf, nil
}

// Delete removes chunk h; a missing chunk is not an error.
func (s *Store) Delete(h cas.Hash) error {
	s.forget(h)
	defer s.forget(h)
	ctx, cancel := s.op()
	defer cancel()
	if err := s.client.RemoveObject(ctx, s.opts.Bucket, s.Key(h), minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return s.wrap(err)
	}
	return nil
}

// forget drops h from known, and makes reads and Puts under way not add it.
func (s *Store) forget(h cas.Hash) {
	s.mu.Lock()
	s.known.Remove(h)
	s.forgets++
	s.mu.Unlock()
}

// Walk lists the bucket under the prefix (paginated by the client) and
// calls fn for every chunk committed.
func (s *Store) Walk(fn func(h cas.Hash, fi fs.FileInfo) error) error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	for oi := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if oi.Err != nil {
			return s.wrap(oi.Err)
		}
		name := oi.Key[strings.LastIndexByte(oi.Key, '/')+1:]
		h, err := cas.ParseHash(name)
		if err != nil || s.Key(h) != oi.Key || s.hidden(h) {
			continue // not a chunk of ours, or not committed
		}
		if err := fn(h, info{name: name, size: oi.Size, mod: oi.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// BeginBatch starts a write batch.
func (s *Store) BeginBatch() cas.WriteBatch {
	return &batch{s: s, held: make(map[cas.Hash]*upload)}
}

// batch holds the uploads it needs: its own and those it joined.
type batch struct {
	s    *Store
	held map[cas.Hash]*upload
	done bool
	err  error
}

// Put stages chunk h (see the package comment). It reports whether the
// chunk is new: false when it is stored, held by this batch, or being
// uploaded by another batch (whose upload this one then waits for).
func (b *batch) Put(h cas.Hash, data []byte) (bool, error) {
	if b.err != nil {
		return false, b.err
	}
	if b.held[h] != nil {
		return false, nil
	}
	s := b.s
	for {
		s.mu.Lock()
		gen := s.deletions
		if u := s.inflight[h]; u != nil {
			if u.deleting != nil {
				s.mu.Unlock()
				<-u.deleting
				continue
			}
			u.refs++
			b.held[h] = u
			s.mu.Unlock()
			return false, nil
		}
		if !s.opts.Shared && s.known.Contains(h) {
			s.mu.Unlock()
			return false, nil
		}
		fgen := s.forgets
		p := s.probing[h]
		if p == nil {
			p = &probe{}
			s.probing[h] = p
		}
		p.n++
		s.mu.Unlock()

		stored, err := s.exists(h)
		s.mu.Lock()
		if p.n--; p.n == 0 {
			delete(s.probing, h)
		}
		if err != nil {
			s.mu.Unlock()
			b.err = err
			return false, err
		}
		if s.inflight[h] != nil || s.deletions != gen {
			s.mu.Unlock()
			continue // changed while we asked: decide again
		}
		if stored || p.committed { // committed: another batch committed it while we asked
			if s.forgets == fgen {
				s.known.Add(h, struct{}{})
			}
			s.mu.Unlock()
			return false, nil
		}
		ctx, cancel := context.WithCancel(s.ctx)
		u := &upload{refs: 1, done: make(chan struct{}), cancel: cancel}
		s.inflight[h] = u
		b.held[h] = u
		s.mu.Unlock()
		if err := s.start(ctx, h, bytes.Clone(data), u); err != nil {
			b.err = err
			return false, err
		}
		return true, nil
	}
}

// exists asks the object store whether chunk h is stored.
func (s *Store) exists(h cas.Hash) (bool, error) {
	ctx, cancel := s.op()
	defer cancel()
	_, err := s.client.StatObject(ctx, s.opts.Bucket, s.Key(h), minio.StatObjectOptions{})
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap(err)
	}
	return true, nil
}

// start uploads data as chunk h in the background once a slot is free (it
// waits for one), recording the outcome in u.
func (s *Store) start(ctx context.Context, h cas.Hash, data []byte, u *upload) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		u.err = s.wrap(ctx.Err())
		close(u.done)
		return u.err
	}
	s.uploads.Add(1)
	go func() {
		defer s.uploads.Done()
		defer func() { <-s.slots }()
		octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
		defer cancel()
		_, err := s.client.PutObject(octx, s.opts.Bucket, s.Key(h), bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
		u.err = s.wrap(err)
		close(u.done)
	}()
	return nil
}

// Commit waits for every upload the batch holds; once all succeeded, its
// chunks are visible and remembered as stored. On a failure it aborts.
func (b *batch) Commit() error {
	if b.done {
		return nil
	}
	if b.err != nil {
		b.Abort()
		return b.err
	}
	for h, u := range b.held {
		<-u.done
		if u.err != nil {
			b.err = fmt.Errorf("s3store: put chunk %s: %w", h.Short(), u.err)
			b.Abort()
			return b.err
		}
	}
	s := b.s
	s.mu.Lock()
	for h, u := range b.held {
		u.refs--
		if s.inflight[h] == u {
			delete(s.inflight, h) // committed: visible to all from now on
		}
		s.known.Add(h, struct{}{})
		if p := s.probing[h]; p != nil {
			p.committed = true
		}
	}
	s.mu.Unlock()
	b.done = true
	return nil
}

// Abort lets go of the batch's uploads; an upload no other batch holds is
// cancelled and its object, if it was stored, deleted before Abort
// returns (Shared: left to GC, another process may refer to it). A Put of
// the same chunk meanwhile waits for the deletion.
func (b *batch) Abort() {
	if b.done {
		return
	}
	b.done = true
	s := b.s
	var drop []cas.Hash
	s.mu.Lock()
	for h, u := range b.held {
		u.refs--
		if u.refs == 0 && s.inflight[h] == u {
			u.deleting = make(chan struct{})
			u.cancel()
			drop = append(drop, h)
		}
	}
	s.mu.Unlock()
	for _, h := range drop {
		u := b.held[h]
		<-u.done
		// Deleting what was never stored costs a request and is harmless.
		// An error leaves it in the bucket, unreferenced: GC takes it after its grace.
		// A shared bucket's other processes may have found it stored (a HEAD)
		// or stored it too (one key) and referred to it: it stays, for GC.
		if !s.opts.Shared {
			_ = s.Delete(h)
		}
		s.mu.Lock()
		delete(s.inflight, h)
		s.deletions++
		close(u.deleting)
		s.mu.Unlock()
	}
}
