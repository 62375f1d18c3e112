package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/mxcas/mxcas/matrix"
)

// RemoteMedia is another server's media as its server sent it.
type RemoteMedia struct {
	Body        io.ReadCloser
	ContentType string
	UploadName  string
	Size        int64 // -1 when unknown
}

// RemoteFetcher gets another server's media (over federation, in package
// matrix); errors wrapping ErrNotFound mean the remote server has no such
// media.
type RemoteFetcher interface {
	Fetch(ctx context.Context, m matrix.MXC) (RemoteMedia, error)
}

// RemoteOptions configure fetching remote media.
type RemoteOptions struct {
	Fetcher RemoteFetcher
	// MaxBytes caps a remote file (default 100 MiB): more is ErrRemoteTooLarge.
	MaxBytes int64
	// Timeout bounds one fetch (default 60 s).
	Timeout time.Duration
	// Backoff is how long a failing server is not asked again (default 60 s).
	Backoff time.Duration
	// BackoffServers caps how many failing servers are remembered
	// (default 10000): the least recently failed are forgotten first, so
	// requests naming many servers do not grow memory without bound.
	BackoffServers int
}

// Remote fetch errors.
var (
	ErrRemoteTooLarge    = errors.New("media: remote media too large")
	ErrRemoteUnavailable = errors.New("media: remote server unavailable")
	ErrRemoteDisabled    = errors.New("media: fetching remote media is not configured")
)

type remote struct {
	opts     RemoteOptions
	mu       sync.Mutex
	failed   *simplelru.LRU[string, time.Time] // server name -> backed off until
	inflight map[matrix.MXC]*fetchInFlight
}

func (o *RemoteOptions) withDefaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 100 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 60 * time.Second
	}
	if o.BackoffServers <= 0 {
		o.BackoffServers = 10000
	}
}

// FetchRemote returns the record of remote media m, fetching it from its
// server and storing it (deduplicated like any upload) on first use.
// Concurrent requests for the same media make one fetch. A server that
// just failed is not asked again for RemoteOptions.Backoff.
func (s *Store) FetchRemote(ctx context.Context, m matrix.MXC) (Media, error) {
	rec, _, err := s.FetchRemoteTo(ctx, m, nil)
	return rec, err
}

// FetchRemoteTo is FetchRemote that, when this call is the one fetching,
// also streams the bytes as they arrive: start is called once with the
// remote's metadata and returns where the bytes go (an HTTP response, so
// the first client does not wait for the whole download). streamed reports
// whether that happened; if not, the caller serves rec from the store. A
// writer that fails (a client gone) is dropped; the store still gets every
// byte.
func (s *Store) FetchRemoteTo(ctx context.Context, m matrix.MXC, start func(RemoteMedia) io.Writer) (rec Media, streamed bool, err error) {
	if rec, err := s.Stat(m); err == nil && !rec.Pending {
		return rec, false, nil
	}
	r := s.remote
	if r == nil || r.opts.Fetcher == nil {
		return Media{}, false, fmt.Errorf("%w: %s", ErrRemoteDisabled, m)
	}
	if s.local(m.Server()) {
		return Media{}, false, fmt.Errorf("%w: %s", ErrNotFound, m) // ours: never over federation
	}
	r.mu.Lock()
	if until, ok := r.failed.Get(m.Server()); ok && s.opts.Now().Before(until) {
		r.mu.Unlock()
		s.stats.remote[FetchBackoff].Add(1)
		return Media{}, false, fmt.Errorf("%w: %s failed recently; retrying after %s", ErrRemoteUnavailable, m.Server(), until.Format(time.RFC3339))
	}
	// Again under the lock: a fetch that just finished has committed.
	if rec, err := s.Stat(m); err == nil && !rec.Pending {
		r.mu.Unlock()
		return rec, false, nil
	}
	if f := r.inflight[m]; f != nil {
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return Media{}, false, ctx.Err()
		case <-f.done:
			return f.rec, false, f.err
		}
	}
	f := &fetchInFlight{done: make(chan struct{})}
	r.inflight[m] = f
	r.mu.Unlock()

	// The fetch belongs to the store, not to this request: a client that
	// leaves does not cut it short for the others.
	fctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	var sink *dropOnError
	f.rec, f.err = s.fetch(fctx, m, func(rm RemoteMedia) io.Writer {
		if start == nil {
			return nil
		}
		sink = &dropOnError{w: start(rm)}
		return sink
	})
	r.mu.Lock()
	if serverDown(f.err) {
		r.failed.Add(m.Server(), s.opts.Now().Add(r.opts.Backoff))
	}
	delete(r.inflight, m)
	r.mu.Unlock()
	s.stats.remote[fetchResult(f.err)].Add(1)
	close(f.done)
	return f.rec, sink != nil, f.err
}

// newBackoff returns the failing-server list, an LRU of size entries.
func newBackoff(size int) *simplelru.LRU[string, time.Time] {
	failed, _ := simplelru.NewLRU[string, time.Time](max(size, 1), nil)
	return failed
}

type fetchInFlight struct {
	done chan struct{}
	rec  Media
	err  error
}

// dropOnError passes writes on until one fails, then swallows the rest.
type dropOnError struct {
	w    io.Writer
	dead bool
}

func (d *dropOnError) Write(p []byte) (int, error) {
	if !d.dead {
		if _, err := d.w.Write(p); err != nil {
			d.dead = true
		}
	}
	return len(p), nil
}

func (s *Store) fetch(ctx context.Context, m matrix.MXC, start func(RemoteMedia) io.Writer) (Media, error) {
	if err := s.space.reserve(0); err != nil {
		return Media{}, err // no room to cache it: do not ask the remote
	}
	rm, err := s.remote.opts.Fetcher.Fetch(ctx, m)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRemoteTooLarge) {
			return Media{}, err
		}
		return Media{}, fmt.Errorf("%w: %s: %w", ErrRemoteUnavailable, m.Server(), err)
	}
	defer rm.Body.Close()
	max := s.remote.opts.MaxBytes
	if rm.Size > max {
		return Media{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrRemoteTooLarge, m, rm.Size, max)
	}
	if !s.claims.try(m) {
		return Media{}, fmt.Errorf("%w: %s", ErrExists, m)
	}
	defer s.claims.release(m)
	if rm.ContentType == "" {
		rm.ContentType = "application/octet-stream"
	}
	var body io.Reader = io.LimitReader(rm.Body, max+1)
	if rm.Size < 0 {
		if body, rm.Size, err = readAhead(body, m, max); err != nil {
			return Media{}, err
		}
	}
	var held *holdLast
	if w := start(rm); w != nil {
		held = &holdLast{w: w}
		body = io.TeeReader(body, held)
	}
	pins := s.newPinSet()
	defer pins.release()
	obj, man, known, err := s.writeObject(ctx, body, -1, max, m.String(), pins)
	if errors.Is(err, ErrTooLarge) {
		return Media{}, fmt.Errorf("%w: %s is over %d bytes", ErrRemoteTooLarge, m, max)
	}
	if errors.Is(err, ErrNoSpace) {
		return Media{}, err // ours, not the remote's
	}
	if err != nil {
		return Media{}, fmt.Errorf("%w: %s: %w", ErrRemoteUnavailable, m, err)
	}
	rec := Media{
		MXC: m, Object: obj, Size: man.Size, ContentType: rm.ContentType,
		UploadName: rm.UploadName, Created: s.opts.Now().UnixMilli(), Remote: true,
		RequiresAuth: s.opts.FreezeUnauthenticated, // as uploads are under the freeze
	}
	// With a shared index another node may fetch m at once: the record is
	// inserted, so the cache (and the usage counters) hold it once.
	shared := s.idx.Shared()
	err = s.quarantine.commitUnless(obj, m.Server(), true, func() error {
		return s.commitRecord(rec, man, known, nil, shared, pins)
	}, func(by string) error { return s.quarantinedFetch(m, by) })
	if shared && errors.Is(err, ErrExists) {
		// The other node's copy, of the same content: ours was not recorded.
		if won, rerr := s.readMedia(m); rerr == nil && won.Object == obj {
			rec, err = won, nil
		}
	}
	if err != nil {
		return Media{}, err // the streamed answer lacks its last byte
	}
	held.release()
	return rec, nil
}

// holdLast passes writes on but the last byte written so far, which
// release sends: the client of a streamed fetch gets a complete answer only
// once the fetched content is known not to be quarantined and is stored.
// A nil holdLast releases nothing.
type holdLast struct {
	w    io.Writer
	last []byte // 0 or 1 byte
}

func (h *holdLast) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(h.last) > 0 {
		if _, err := h.w.Write(h.last); err != nil {
			return 0, err
		}
	}
	if _, err := h.w.Write(p[:len(p)-1]); err != nil {
		return 0, err
	}
	h.last = append(h.last[:0], p[len(p)-1])
	return len(p), nil
}

func (h *holdLast) release() {
	if h != nil && len(h.last) > 0 {
		h.w.Write(h.last)
		h.last = nil
	}
}

// readAhead reads the start of m's body, of unknown length, up to limit+1
// bytes or peekLimit, so a small file's size is known and an oversized one
// refused before anything is streamed. It returns the whole body to read in
// place of body, and its size: -1 when the body is longer than what was
// read. Errors: ErrRemoteTooLarge, or ErrRemoteUnavailable when reading
// fails.
func readAhead(body io.Reader, m matrix.MXC, limit int64) (io.Reader, int64, error) {
	head := make([]byte, min(limit+1, peekLimit))
	n, err := io.ReadFull(body, head)
	head = head[:n]
	size := int64(-1)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		size = int64(n)
	case err != nil:
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrRemoteUnavailable, m, err)
	}
	if int64(n) > limit {
		return nil, 0, fmt.Errorf("%w: %s is over %d bytes", ErrRemoteTooLarge, m, limit)
	}
	return io.MultiReader(bytes.NewReader(head), body), size, nil
}

// serverDown reports whether err says the remote server itself is failing
// (unreachable, timing out, 5xx), which backs the server off; an answer
// about one media (404, 403, too large, a malformed reply) does not.
func serverDown(err error) bool {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrRemoteTooLarge) || errors.Is(err, ErrExists) ||
		errors.Is(err, matrix.ErrBadMultipart) || errors.Is(err, ErrNoSpace) || errors.Is(err, ErrFailed) ||
		errors.Is(err, ErrQuarantinedContent) {
		return false
	}
	var re *matrix.RemoteError
	if errors.As(err, &re) {
		return re.StatusCode >= 500
	}
	return true
}

// peekLimit is how much of a remote body of unknown length is read before
// the first client gets anything, so that a file over a small MaxBytes is
// refused with an error instead of a cut-off answer.
const peekLimit = 4 << 20
